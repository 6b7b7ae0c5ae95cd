"""What pages read of the routing core: live operators, calls and queues, and events as JSON.

Pure functions of the core's state (no I/O): the routing service calls them under the
account's lock.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from voicemgmt.domain.phone import display_number
from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.core import RoutingCore
from voicemgmt.domain.routing.model import Call, CallState, OperatorState, Presence
from voicemgmt.services.call_records import record_json


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


_NUMBER_FIELDS = ("caller_id_num", "e164_in", "e164_out")


def event_json(event: ev.RoutingEvent) -> dict[str, Any]:
    if isinstance(event, ev.CallEnded):
        return {"record": record_json(event.record)}
    data = event.data()
    if isinstance(event, ev.CallArrived | ev.CallOffered | ev.OutboundStarted):
        data["display"] = _display(data)
    return data


def _display(data: dict[str, Any]) -> dict[str, str]:
    """The numbers of an event as people read them (a banner shows both forms)."""
    return {name: display_number(data[name]) for name in _NUMBER_FIELDS if name in data}


def by_id(operator: OperatorState) -> int:
    return operator.id


def live_operator(
    operator: OperatorState, shown_since: dict[int, tuple[str, float]]
) -> dict[str, Any]:
    """One operator as pages show them; ``shown_since``: when their shown status began."""
    status = operator.shown_status.value
    shown = shown_since.get(operator.id)
    since = shown[1] if shown is not None and shown[0] == status else operator.presence_since
    return {
        "id_op": operator.id,
        "status": status,
        "presence": operator.presence.value,
        "activity": operator.activity.value,
        "since": iso(operator.presence_since),
        "status_since": iso(since),
        "wrap_up_until": (
            iso(operator.wrap_up_until) if operator.wrap_up_until is not None else None
        ),
        "id_call": operator.call_id,
        "calls_taken": operator.calls_taken,
        "groups": operator.groups,
    }


def queue_of(core: RoutingCore, group_id: int, now: float) -> dict[str, Any]:
    """One group at a glance: calls waiting (queued or ringing) and its operators' statuses."""
    waits = [
        now - call.queued_at
        for call in core.calls.values()
        if call.group_id == group_id
        and call.queued_at is not None
        and call.state in (CallState.QUEUED, CallState.RINGING)
    ]
    statuses = Counter(
        operator.shown_status.value
        for operator in core.operators.values()
        if group_id in operator.groups
    )
    return {
        "id_group": group_id,
        "waiting": len(waits),
        "longest_wait": int(max(waits)) if waits else 0,
        "operators": {s.value: statuses.get(s.value, 0) for s in Presence},
    }


def live_call(call: Call, now: float) -> dict[str, Any]:
    return {
        "id_call": call.id,
        "direction": call.direction,
        "state": call.state.value,
        "caller_id_num": call.caller,
        "e164": call.called,
        "id_group": call.group_id,
        "id_op": call.operator_id,
        "ringing": sorted(call.ringing),
        "started_at": iso(call.created_at),
        # waiting so far, or what it waited before it was answered
        "wait": int(now - call.queued_at) if call.queued_at is not None else int(call.wait_seconds),
        "variables": dict(call.variables),
        "ticket_id": call.ticket_id,
        "display": {
            "caller_id_num": display_number(call.caller),
            "e164": display_number(call.called),
        },
        "answered_at": iso(call.answered_at) if call.answered_at is not None else None,
        "held": call.state is CallState.HELD,
    }


def live_snapshot(
    core: RoutingCore, shown_since: dict[int, tuple[str, float]], now: float, seq: int
) -> dict[str, Any]:
    """Live operators, calls and queues of one core, as of stream position ``seq``."""
    operators = [live_operator(o, shown_since) for o in sorted(core.operators.values(), key=by_id)]
    calls = [live_call(c, now) for c in core.calls.values()]
    return {
        "seq": seq,
        "now": iso(now),
        "operators": operators,
        "queues": [queue_of(core, group_id, now) for group_id in sorted(core.groups)],
        "calls": sorted(calls, key=lambda c: c["started_at"]),
    }
