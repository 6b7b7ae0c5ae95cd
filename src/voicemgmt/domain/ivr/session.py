"""One call going through an IVR script: a pure state machine.

The session never awaits, reads a clock or touches I/O: the routing core feeds it events
stamped with ``now`` (seconds, never decreasing), carries out the actions each event returns
through the telephony port, and calls ``timeout`` once ``deadline`` has passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from voicemgmt.domain import saved as read
from voicemgmt.domain.errors import InvalidInput, NoSuchIvrStep
from voicemgmt.domain.ivr.parsing import MAX_ATTEMPTS, MAX_DIGITS, MAX_GROUP_ID, parse_prompt
from voicemgmt.domain.ivr.script import (
    DIGITS,
    CollectStep,
    GroupTarget,
    IvrScript,
    MenuStep,
    PlayStep,
    Prompt,
    Step,
    StepTarget,
    Target,
)

SAVED_FORMAT = 1  # the version of ``IvrSession.save``'s shape; ``load`` refuses another
_KINDS: dict[type, str] = {PlayStep: "play", MenuStep: "menu", CollectStep: "collect"}
_SAVED_FIELDS = frozenset(
    {"format", "step", "kind", "prompts", "deadline", "failures", "typed", "variables"}
    | {"path", "started_at", "outcome"}
)


class HangUpReason(StrEnum):
    SCRIPT = "ivr_hangup"  # a {"hangup": true} target reached normally
    FAILURE = "ivr_failure"  # attempts or retries exhausted
    TIMEOUT = "ivr_timeout"  # max_duration reached


@dataclass(frozen=True, slots=True)
class RouteToGroup:
    group_id: int
    variables: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class HangUp:
    variables: Mapping[str, str]
    reason: HangUpReason


Outcome = RouteToGroup | HangUp


@dataclass(frozen=True, slots=True)
class PlayPrompt:
    """Play ``prompt``, then report ``prompt_finished``; a digit may interrupt it if allowed."""

    prompt: Prompt
    interruptible: bool


@dataclass(frozen=True, slots=True)
class StopPrompt:
    """Stop the prompt playing now; its end is not to be reported."""


@dataclass(frozen=True, slots=True)
class Finished:
    """The IVR is over: route or hang up as ``outcome`` says."""

    outcome: Outcome


IvrAction = PlayPrompt | StopPrompt | Finished


class IvrSession:
    """One call going through a script: feed it events, carry out the actions it returns.

    Events before ``start`` or after the outcome return ``[]``. Any other event first fires
    the timeout due at ``now``, if any, so events apply in time order: an event that is itself
    ignored (a non-DTMF key, a digit during a ``play`` step, ``prompt_finished`` while nothing
    plays) may still return that timeout's actions. At most one prompt plays at a time;
    ``prompt_finished`` reports the end of the last ``PlayPrompt`` not stopped by ``StopPrompt``.
    """

    __slots__ = (
        "_deadline",
        "_failures",
        "_outcome",
        "_path",
        "_prompts",
        "_script",
        "_started_at",
        "_step",
        "_typed",
        "_variables",
        "call_id",
    )

    def __init__(self, script: IvrScript, call_id: str) -> None:
        self._script = script
        self.call_id = call_id
        self._started_at: float | None = None
        self._step: Step = script.steps[script.start]
        self._prompts: list[Prompt] = []  # the first is playing
        self._deadline: float | None = None  # for input; max_duration is added by `deadline`
        self._failures = 0
        self._typed = ""
        self._variables: dict[str, str] = {}
        self._path: list[str] = []
        self._outcome: Outcome | None = None

    @property
    def deadline(self) -> float | None:
        """When ``timeout`` is due next; None before ``start`` and after the outcome."""
        if self._started_at is None or self._outcome is not None:
            return None
        cap = self._started_at + self._script.max_duration
        return cap if self._deadline is None else min(cap, self._deadline)

    @property
    def outcome(self) -> Outcome | None:
        return self._outcome

    @property
    def variables(self) -> Mapping[str, str]:
        return MappingProxyType(dict(self._variables))

    @property
    def path(self) -> tuple[str, ...]:
        """Step ids in the order entered (a step entered again appears again)."""
        return tuple(self._path)

    # saved and loaded ---------------------------------------------------------------------

    def save(self) -> dict[str, Any]:
        """The session as JSON-ready values, without its script (the caller keeps that).

        ``step`` and ``kind``: where the caller stands; ``prompts``: still to play, the first
        playing; ``deadline``: of the input awaited (``max_duration`` is the script's);
        ``failures``, ``typed``, ``variables``, ``path``, ``started_at``; ``outcome``: null
        while it runs, else ``{"group": id}`` or ``{"hangup": reason}``.
        """
        outcome = self._outcome
        return {
            "format": SAVED_FORMAT,
            "step": self._step.id,
            "kind": _KINDS[type(self._step)],
            "prompts": [prompt.to_json() for prompt in self._prompts],
            "deadline": self._deadline,
            "failures": self._failures,
            "typed": self._typed,
            "variables": dict(self._variables),
            "path": list(self._path),
            "started_at": self._started_at,
            "outcome": (
                None
                if outcome is None
                else {"group": outcome.group_id}
                if isinstance(outcome, RouteToGroup)
                else {"hangup": outcome.reason.value}
            ),
        }

    @classmethod
    def load(cls, script: IvrScript, call_id: str, saved: object) -> IvrSession:
        """The session ``save`` returned, going on through ``script`` (reloaded by the caller).

        Raises ``InvalidSavedState`` for a value ``save`` cannot have written, and
        ``NoSuchIvrStep`` if the script has no step of that id and kind any more (the number's
        IVR was edited): the routing core's ``restore`` then sends the call to its number's
        group with the variables collected so far (``saved_variables``), as if the IVR had
        routed it there, rather than hang up on a caller because of an edit.
        """
        fields = cls._read(saved)
        step = script.steps.get(fields["step"])
        if step is None or _KINDS[type(step)] != fields["kind"]:
            raise NoSuchIvrStep(
                f"the IVR has no {fields['kind']} step {fields['step'][:64]!r} any more",
                step=fields["step"][:64],
            )
        session = cls(script, call_id)
        session._step = step
        session._prompts = fields["prompts"]
        session._deadline = fields["deadline"]
        session._failures = fields["failures"]
        session._typed = fields["typed"]
        session._variables = fields["variables"]
        session._path = fields["path"]
        session._started_at = fields["started_at"]
        session._outcome = fields["outcome"]
        return session

    @classmethod
    def saved_variables(cls, saved: object) -> dict[str, str]:
        """The variables a saved session had collected; raises ``InvalidSavedState``."""
        variables: dict[str, str] = cls._read(saved)["variables"]
        return variables

    @staticmethod
    def _read(saved: object) -> dict[str, Any]:
        where = "ivr"
        raw = read.record(saved, where, _SAVED_FIELDS)
        read.version(raw, where, SAVED_FORMAT)
        kind = read.text(raw["kind"], f"{where}.kind")
        if kind not in _KINDS.values():
            raise read.invalid(f"{where}.kind", "must be play, menu or collect")
        prompts: list[Prompt] = []
        for i, prompt in enumerate(read.items(raw["prompts"], f"{where}.prompts")[:3]):
            try:
                prompts.append(parse_prompt(prompt))
            except InvalidInput as exc:
                raise read.invalid(f"{where}.prompts[{i}]", exc.message) from exc
        if len(raw["prompts"]) > 2:  # a notice, then the step's own prompt, at most
            raise read.invalid(f"{where}.prompts", "holds more than two prompts")
        typed = read.text(raw["typed"], f"{where}.typed")
        if len(typed) > MAX_DIGITS or not set(typed) <= DIGITS:
            raise read.invalid(f"{where}.typed", f"must be at most {MAX_DIGITS} digits")
        variables = read.text_map(raw["variables"], f"{where}.variables")
        outcome: Outcome | None = None
        if raw["outcome"] is not None:
            shape = raw["outcome"]
            if not isinstance(shape, dict):
                raise read.invalid(f"{where}.outcome", "must be a JSON object or null")
            if shape.keys() == {"group"}:
                group = read.count(shape["group"], f"{where}.outcome.group", 1, MAX_GROUP_ID)
                outcome = RouteToGroup(group, dict(variables))
            elif shape.keys() == {"hangup"}:
                reason = read.choice(shape["hangup"], f"{where}.outcome.hangup", HangUpReason)
                outcome = HangUp(dict(variables), reason)
            else:
                raise read.invalid(f"{where}.outcome", 'must be {"group": id} or {"hangup": …}')
        path = read.items(raw["path"], f"{where}.path")
        for i, step_id in enumerate(path):
            read.text(step_id, f"{where}.path[{i}]")
        return {
            "step": read.text(raw["step"], f"{where}.step"),
            "kind": kind,
            "prompts": prompts,
            "deadline": read.optional_time(raw["deadline"], f"{where}.deadline"),
            "failures": read.count(raw["failures"], f"{where}.failures", 0, MAX_ATTEMPTS + 1),
            "typed": typed,
            "variables": variables,
            "path": list(path),
            "started_at": read.optional_time(raw["started_at"], f"{where}.started_at"),
            "outcome": outcome,
        }

    # events --------------------------------------------------------------------------------

    def start(self, now: float) -> list[IvrAction]:
        if self._started_at is not None:
            return []
        self._started_at = now
        return self._enter(self._step, now)

    def prompt_finished(self, now: float) -> list[IvrAction]:
        if not self._prompts:
            return self._catch_up(now)  # nothing was playing: only time passes
        actions = self._catch_up(now)  # while prompting, only max_duration can be due
        if self._outcome is not None:
            return actions
        self._prompts.pop(0)
        if self._prompts:
            return [*actions, PlayPrompt(self._prompts[0], interruptible=True)]
        if isinstance(self._step, PlayStep):
            return actions + self._go(self._step.next, now)
        self._deadline = now + self._step.timeout
        return actions

    def digit(self, now: float, digit: str) -> list[IvrAction]:
        actions = self._catch_up(now)
        step = self._step
        if digit not in DIGITS or self.deadline is None or isinstance(step, PlayStep):
            return actions  # deadline is None before start and after the outcome
        if self._prompts:  # barge-in
            self._prompts = []
            actions.append(StopPrompt())
        if isinstance(step, MenuStep):
            target = step.options.get(digit)
            if target is None:
                return actions + self._fail(step.invalid_prompt, now)
            return actions + self._go(target, now)
        if digit != step.terminator:
            self._typed += digit
            self._deadline = now + step.inter_digit_timeout
        if digit == step.terminator or len(self._typed) >= step.max_length:
            return actions + self._end_collect(step, now)
        return actions

    def timeout(self, now: float) -> list[IvrAction]:
        return self._catch_up(now)

    def _catch_up(self, now: float) -> list[IvrAction]:
        actions: list[IvrAction] = []
        # Each pass ends the IVR or moves the input deadline past `now`: at most two passes.
        while (deadline := self.deadline) is not None and deadline <= now:
            assert self._started_at is not None  # deadline is None before start
            if now >= self._started_at + self._script.max_duration:
                return actions + self._finish(HangUp(dict(self._variables), HangUpReason.TIMEOUT))
            self._deadline = None
            step = self._step
            if isinstance(step, MenuStep):
                actions += self._fail(step.timeout_prompt, now)
            elif isinstance(step, CollectStep):
                actions += self._end_collect(step, now)
        return actions

    def _enter(self, step: Step, now: float) -> list[IvrAction]:
        self._step, self._failures, self._typed, self._deadline = step, 0, "", None
        self._path.append(step.id)
        if isinstance(step, PlayStep):
            self._prompts = [step.prompt]
            return [PlayPrompt(step.prompt, interruptible=False)]
        return self._ask([step.prompt], now)

    def _ask(self, prompts: list[Prompt | None], now: float) -> list[IvrAction]:
        """Play the prompts of a menu or collect step, then wait for input."""
        assert not isinstance(self._step, PlayStep)
        self._typed = ""
        self._prompts = [p for p in prompts if p is not None]
        if not self._prompts:
            self._deadline = now + self._step.timeout
            return []
        self._deadline = None
        return [PlayPrompt(self._prompts[0], interruptible=True)]

    def _fail(self, notice: Prompt | None, now: float) -> list[IvrAction]:
        step = self._step
        assert not isinstance(step, PlayStep)
        self._failures += 1
        allowed = step.attempts if isinstance(step, MenuStep) else step.retries + 1
        if self._failures >= allowed:
            return self._go(step.on_failure, now, HangUpReason.FAILURE)
        return self._ask([notice, step.prompt], now)

    def _end_collect(self, step: CollectStep, now: float) -> list[IvrAction]:
        value, self._typed, self._deadline = self._typed, "", None
        if not step.accepts(value):
            return self._fail(step.retry_prompt, now)
        self._variables[step.variable] = value
        return self._go(step.next, now)

    def _go(
        self, target: Target, now: float, reason: HangUpReason = HangUpReason.SCRIPT
    ) -> list[IvrAction]:
        if isinstance(target, StepTarget):
            return self._enter(self._script.steps[target.step_id], now)
        if isinstance(target, GroupTarget):
            return self._finish(RouteToGroup(target.group_id, dict(self._variables)))
        return self._finish(HangUp(dict(self._variables), reason))

    def _finish(self, outcome: Outcome) -> list[IvrAction]:
        actions: list[IvrAction] = [StopPrompt()] if self._prompts else []
        self._outcome, self._prompts, self._deadline = outcome, [], None
        return [*actions, Finished(outcome)]
