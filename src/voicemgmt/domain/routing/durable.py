"""A live call's durable form, and the record of a call whose node died.

While a call lives, the routing service keeps a copy of its ``Call`` in the database (the
*trace*, see ``services/live_calls.py``), written in the same transaction as the records of the
step that changed it, before the step's events are published and before the caller is told
anything. If the process then dies (kill -9, power loss), what the platform acknowledged is
still known: the trace is read back and the call is closed with ``orphan_record``.

A trace holds every field of ``Call`` but the IVR session's position (an orphan is closed,
not resumed): its durations and the variables collected so far are kept.

Nothing here awaits or reads a clock.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from voicemgmt.domain.routing.model import (
    Call,
    CallRecord,
    CallState,
    Outcome,
    Side,
    record_of,
)

FORMAT = 1  # the version of a trace's shape; a reader refuses another
NODE_DIED = "node_died"  # the disconnect_reason of a call whose node stopped without ending it

_SETS = frozenset({"ringing"})
_LISTS = frozenset({"offered_to", "overflowed_from"})
_ENUMS: dict[str, Any] = {"state": CallState, "outcome": Outcome, "ended_by": Side}
_SKIPPED = frozenset({"ivr"})
_FIELDS = tuple(f.name for f in fields(Call) if f.name not in _SKIPPED)


class UnreadableTrace(ValueError):
    """A stored trace that this version cannot read (another format, a missing field)."""


def trace_of(call: Call) -> dict[str, Any]:
    """``call`` as JSON-ready values: what is stored while it lives."""
    trace: dict[str, Any] = {"format": FORMAT}
    for name in _FIELDS:
        value = getattr(call, name)
        if name in _SETS:
            value = sorted(value)
        elif name in _LISTS:
            value = list(value)
        elif name == "variables":
            value = dict(value)
        elif value is not None and name in _ENUMS:
            value = value.value
        trace[name] = value
    return trace


def call_of(trace: dict[str, Any]) -> Call:
    """The call a trace was taken of (without its IVR session)."""
    if trace.get("format") != FORMAT:
        raise UnreadableTrace(f"trace format {trace.get('format')!r}, expected {FORMAT}")
    values: dict[str, Any] = {}
    try:
        for name in _FIELDS:
            value = trace[name]
            if name in _SETS:
                value = set(value)
            elif name in _LISTS:
                value = list(value)
            elif name == "variables":
                value = {str(k): str(v) for k, v in value.items()}
            elif value is not None and name in _ENUMS:
                value = _ENUMS[name](value)
            values[name] = value
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnreadableTrace(f"unreadable trace: {exc!r}") from exc
    return Call(**values)


def orphan_record(call: Call, at: float, reason: str = NODE_DIED) -> CallRecord:
    """The record of a live call whose node stopped at ``at`` without ending it.

    Every span still running (IVR, queue, ringing, talk, hold) is closed at ``at`` (never
    before the call's last known change); the call ends ``failed``, or ``answered`` if an
    operator had answered it, by the system, with ``reason``. No wrap-up is counted: the
    operator's node died with the call.
    """
    at = max(at, call.created_at)
    if call.state is CallState.IVR:
        call.ivr_seconds += max(0.0, at - (call.ivr_started or at))
    if call.queued_at is not None:
        call.wait_seconds += max(0.0, at - call.queued_at)
        call.queued_at = None
    if call.ring_started is not None:
        call.ring_seconds += max(0.0, at - call.ring_started)
        call.ring_started = None
    if call.hold_started is not None:
        call.hold_seconds += max(0.0, at - call.hold_started)
        call.hold_started = None
    if call.talk_started is not None:
        call.talk_seconds += max(0.0, at - call.talk_started)
        call.talk_started = None
    call.ringing.clear()
    call.ivr = None
    call.state = CallState.ENDED
    call.ended_at = at
    call.outcome = Outcome.ANSWERED if call.answered_at is not None else Outcome.FAILED
    call.ended_by = Side.SYSTEM
    call.reason = reason
    call.wrap_up_seconds = 0.0
    return record_of(call)
