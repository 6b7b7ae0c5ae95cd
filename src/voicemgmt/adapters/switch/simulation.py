"""What the simulated switch is told, holds and shows: a simulated caller, the timing of prompts
and keys, how a dialled customer behaves, a call as the switch holds it (its legs, timers and
queue of reports) and its snapshot (``simulated.py`` runs them). What users give is checked
when made: the simulation API hands it their input."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from voicemgmt.domain.errors import InvalidInput

DTMF = frozenset("0123456789*#")
MAX_DTMF = 100


def _seconds(value: float, name: str) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise InvalidInput(f"{name} must be a number of seconds, 0 or more", field=name)


@dataclass(frozen=True, slots=True)
class SimulatedCall:
    """A simulated caller: who calls which number, what they key, when they give up."""

    caller: str  # E.164 digits
    called: str  # E.164 digits, one of the platform's numbers
    dtmf: str = ""  # keyed once an interruptible prompt plays: 0-9 * #
    hangup_after: float | None = None  # seconds after arrival, if the call is still up

    def __post_init__(self) -> None:
        for name in ("caller", "called"):
            number = getattr(self, name)
            if not (isinstance(number, str) and number.isascii() and number.isdigit()):
                raise InvalidInput(f"{name} must be E.164 digits", field=name)
            if len(number) > 15:
                raise InvalidInput(f"{name} has more than 15 digits", field=name)
        if not isinstance(self.dtmf, str) or not set(self.dtmf) <= DTMF:
            raise InvalidInput("dtmf keys are 0-9, * and #", field="dtmf")
        if len(self.dtmf) > MAX_DTMF:
            raise InvalidInput(f"dtmf holds at most {MAX_DTMF} keys", field="dtmf")
        if self.hangup_after is not None:
            _seconds(self.hangup_after, "hangup_after")


@dataclass(frozen=True, slots=True)
class SimulationTiming:
    prompt_seconds: float = 2.0  # how long any prompt plays
    digit_interval: float = 0.3  # between two keyed digits
    customer_answer_after: float = 3.0  # for Answer() without a delay of its own

    def __post_init__(self) -> None:
        for name in ("prompt_seconds", "digit_interval", "customer_answer_after"):
            _seconds(getattr(self, name), name)


@dataclass(frozen=True, slots=True)
class Answer:
    after: float | None = None  # None: SimulationTiming.customer_answer_after

    def __post_init__(self) -> None:
        if self.after is not None:
            _seconds(self.after, "after")


@dataclass(frozen=True, slots=True)
class Busy:
    pass


@dataclass(frozen=True, slots=True)
class NoAnswer:
    after: float = 30.0

    def __post_init__(self) -> None:
        _seconds(self.after, "after")


@dataclass(frozen=True, slots=True)
class Invalid:
    pass


CustomerBehaviour = Answer | Busy | NoAnswer | Invalid


class LegState(StrEnum):
    RINGING = "ringing"  # a caller not yet answered, an operator's phone ringing
    ANSWERED = "answered"  # off-hook, not bridged
    MUSIC = "music"  # a caller hearing the queue's music
    BRIDGED = "bridged"
    HELD = "held"  # the caller or customer, put on hold by the operator
    DIALING = "dialing"  # a customer being dialled
    FAILED = "failed"  # a customer who could not be reached


@dataclass(frozen=True, slots=True)
class LiveCall:
    """One call as the switch holds it, for diagnostics."""

    call_id: str
    direction: str  # "in": a simulated caller; "out": a click-to-call
    account_id: int | None  # from the first command about the call
    caller_leg: LegState | None  # inbound calls
    customer_leg: LegState | None  # click-to-calls, once the customer is dialled
    operator_legs: Mapping[int, LegState]
    prompt_playing: bool
    in_ivr: bool
    dtmf_left: str


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    deliver: Callable[[], Awaitable[None]]
    due: Callable[[], bool]  # checked just before delivery


def always() -> bool:
    return True


@dataclass(eq=False, slots=True)
class HeldCall:
    """One call as the switch holds it: its legs, timers and ordered reports."""

    id: str
    direction: str
    caller_leg: LegState | None = None
    customer_leg: LegState | None = None
    operator_legs: dict[int, LegState] = field(default_factory=dict)
    account_id: int | None = None
    in_ivr: bool = False
    dtmf: str = ""  # still to key
    keying: bool = False
    prompt: int | None = None  # token of the prompt playing
    ended: bool = False
    announcing: bool = False  # inbound_call not yet delivered: hold the other reports
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    reports: deque[Report] = field(default_factory=deque)
    reporter: asyncio.Task[None] | None = None

    @property
    def remote_leg(self) -> LegState | None:
        return self.caller_leg if self.direction == "in" else self.customer_leg

    @remote_leg.setter
    def remote_leg(self, state: LegState) -> None:
        """Change the caller's or the customer's leg, if it is up."""
        if self.direction == "in" and self.caller_leg is not None:
            self.caller_leg = state
        elif self.direction == "out" and self.customer_leg is not None:
            self.customer_leg = state

    def snapshot(self) -> LiveCall:
        return LiveCall(
            self.id,
            self.direction,
            self.account_id,
            self.caller_leg,
            self.customer_leg,
            MappingProxyType(dict(self.operator_legs)),
            self.prompt is not None,
            self.in_ivr,
            self.dtmf if self.in_ivr else "",
        )
