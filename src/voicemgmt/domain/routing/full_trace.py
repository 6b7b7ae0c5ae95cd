"""A live call saved with its IVR session: what a node taking an account over resumes.

``durable.trace_of`` leaves the IVR session out (an orphan is closed, not resumed). A *full
trace* is that trace with one more field, ``ivr``: the session's ``IvrSession.save()``, or
null when the call is not in an IVR. It keeps ``durable.FORMAT`` (a full trace is a trace:
``call_of`` reads it, leaving the session out); the ``ivr`` value carries its own ``format``
(``IvrSession.SAVED_FORMAT``).

``call_of`` trusts its database; ``call_from_full_trace`` checks every field (type, range,
a live call's state) and raises ``InvalidSavedState`` naming the first wrong one. Nothing
here awaits or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from voicemgmt.domain import saved as read
from voicemgmt.domain.errors import InvalidSavedState, NoSuchIvrStep
from voicemgmt.domain.ivr import IvrScript, IvrSession
from voicemgmt.domain.routing.durable import FORMAT, UnreadableTrace, call_of, trace_of
from voicemgmt.domain.routing.model import Call, CallState

_MAX_PRIORITY = 2**31 - 1


def _direction(raw: object, where: str) -> str:
    if raw != "in" and raw != "out":
        raise read.invalid(where, "must be 'in' or 'out'")
    return raw


def _live_state(raw: object, where: str) -> CallState:
    state = read.choice(raw, where, CallState)
    if state is CallState.ENDED:
        raise read.invalid(where, "is 'ended': a live call's state is not")
    return state


def _none(raw: object, where: str) -> None:
    if raw is not None:
        raise read.invalid(where, "must be null while the call lives")


def _ids(raw: object, where: str) -> list[int]:
    return read.counts(raw, where)


def _unique_ids(raw: object, where: str) -> list[int]:
    ids = read.counts(raw, where)
    if len(set(ids)) != len(ids):
        raise read.invalid(where, "names an operator twice")
    return ids


def _priority(raw: object, where: str) -> int:
    return read.count(raw, where, 0, _MAX_PRIORITY)


_READERS: dict[str, Callable[[object, str], object]] = {
    "id": read.text,
    "direction": _direction,
    "caller": read.text,
    "called": read.text,
    "created_at": read.time,
    "state": _live_state,
    "group_id": read.optional_count,
    "ticket_id": read.optional_text,
    "priority": _priority,
    "variables": read.text_map,
    "ivr_started": read.optional_time,
    "ivr_seconds": read.time,
    "queued_at": read.optional_time,
    "arrival": read.count,
    "wait_seconds": read.time,
    "ring_started": read.optional_time,
    "ring_seconds": read.time,
    "ringing": _unique_ids,
    "offered_to": _ids,
    "operator_id": read.optional_count,
    "answered_by": read.optional_count,
    "answered_at": read.optional_time,
    "talk_started": read.optional_time,
    "talk_seconds": read.time,
    "hold_started": read.optional_time,
    "hold_seconds": read.time,
    "transfer_to": read.optional_count,
    "overflowed_from": _ids,
    "ended_at": _none,
    "outcome": _none,
    "ended_by": _none,
    "reason": _none,
    "wrap_up_seconds": read.time,
}
assert set(_READERS) == {f.name for f in fields(Call)} - {"ivr"}, "a Call field has no reader"
_FULL_FIELDS = frozenset({"format", "ivr", *_READERS})


def full_trace_of(call: Call) -> dict[str, Any]:
    """``call`` as JSON-ready values, its IVR session included."""
    trace = trace_of(call)
    trace["ivr"] = None if call.ivr is None else call.ivr.save()
    return trace


@dataclass(slots=True)
class LoadedCall:
    """A call read back; ``ivr_lost`` holds the variables its IVR had collected when the
    session could not be resumed (its number has no IVR any more, or no longer that step)."""

    call: Call
    ivr_lost: dict[str, str] | None = None


def call_from_full_trace(
    trace: object, scripts: Mapping[str, IvrScript], where: str = "call"
) -> LoadedCall:
    """The live call a full trace was taken of, its IVR session going on over the script of
    the number it called (``scripts``, by number, as the directory has them now)."""
    raw = read.record(trace, where, _FULL_FIELDS)
    read.version(raw, where, FORMAT)
    for name, reader in _READERS.items():
        reader(raw[name], f"{where}.{name}")
    in_ivr = raw["state"] == CallState.IVR.value
    if in_ivr != (raw["ivr"] is not None):
        raise read.invalid(f"{where}.ivr", "must be given exactly when the call is in the IVR")
    if raw["ringing"] and raw["state"] != CallState.RINGING.value:
        raise read.invalid(f"{where}.ringing", "must be empty unless the call is ringing")
    try:
        call = call_of(raw)
    except UnreadableTrace as exc:  # checked above: only a change of durable.py lands here
        raise read.invalid(where, str(exc)) from exc
    if not in_ivr:
        return LoadedCall(call)
    script = scripts.get(call.called)
    try:
        if script is None:
            return LoadedCall(call, IvrSession.saved_variables(raw["ivr"]))
        call.ivr = IvrSession.load(script, call.id, raw["ivr"])
    except NoSuchIvrStep:
        return LoadedCall(call, IvrSession.saved_variables(raw["ivr"]))
    except InvalidSavedState as exc:  # name the call in the place it points at
        place = f"{where}.{exc.details.get('field', 'ivr')}"
        message = exc.message.replace("saved state: ", f"saved state: {where}.", 1)
        raise InvalidSavedState(message, field=place) from exc
    return LoadedCall(call)
