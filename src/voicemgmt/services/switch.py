"""The telephony port: what the routing core needs from a phone system, and what it hears back.

The routing service sends each account's ``SwitchCommand``s (``domain/routing/events.py``:
answer the caller, play a prompt, ring an operator, bridge, hold, dial a customer, forward,
hang up) to a ``Switch``. The switch reports what happens on its lines to a ``SwitchReports``
(the routing service). The simulated switch and the SIP driver are both ``Switch``es; neither
the routing core nor the service knows which one runs.

Reports carry the platform's call id, which the switch receives with the inbound call it
announces (``inbound_call``) or with the first command about an outbound call (``RingOperator``
of a click-to-call).
"""

from __future__ import annotations

import secrets
import time
from typing import Protocol

from voicemgmt.domain.routing.events import SwitchCommand


def new_call_id() -> str:
    """A call's id, made by whoever brings the call in (a switch, a click-to-call): unique and
    roughly time-ordered — milliseconds, then 40 random bits (21 characters or fewer)."""
    return f"{int(time.time() * 1000):x}{secrets.token_hex(5)}"


class SwitchReports(Protocol):
    """What a phone system tells the platform. Unknown or finished calls are ignored."""

    async def inbound_call(self, call_id: str, caller: str, called: str) -> None:
        """A call reached one of the platform's numbers (E.164 digits)."""

    async def caller_hung_up(self, call_id: str) -> None: ...

    async def digit(self, call_id: str, digit: str) -> None:
        """One DTMF digit from the caller (RFC 4733 on SIP)."""

    async def prompt_finished(self, call_id: str) -> None:
        """The prompt last asked for played to its end (not reported for a stopped prompt)."""

    async def operator_answered(self, call_id: str, operator_id: int) -> None:
        """The operator picked up on their own phone (a SIP device); the banner does the same."""

    async def operator_rejected(self, call_id: str, operator_id: int, reason: str) -> None:
        """The operator's phone refused the call (busy, declined, unreachable)."""

    async def operator_hung_up(self, call_id: str, operator_id: int) -> None: ...

    async def customer_answered(self, call_id: str) -> None:
        """The customer of a click-to-call picked up."""

    async def customer_failed(self, call_id: str, reason: str) -> None:
        """The customer of a click-to-call could not be reached (busy, no_answer, invalid)."""

    async def media_timeout(self, call_id: str) -> None:
        """No RTP came from one side of an answered call for too long: the switch hung up
        every leg (the record's ``disconnect_reason`` is ``media_timeout``)."""


class Switch(Protocol):
    async def start(self, reports: SwitchReports) -> None:
        """Begin reporting to ``reports``; called once before any command."""

    async def execute(self, account_id: int, command: SwitchCommand) -> None:
        """Carry out one command; must not raise for a call that has already ended."""

    async def dial_refusal(self, account_id: int, number: str) -> str | None:
        """Why this switch would not dial ``number`` (E.164 digits) for the account's
        click-to-call (its dial-out rules, no trunk), or None: asked before any phone rings."""

    async def close(self) -> None: ...
