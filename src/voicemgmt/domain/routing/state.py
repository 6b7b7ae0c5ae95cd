"""The routing core's runtime state, saved and loaded whole: how a node that takes an account
over rebuilds its core (issue 13). Nothing here awaits or reads a clock.

``export_state`` gives JSON-ready values::

    {"format": 1, "exported_at": <now>,
     "sequence": <the next arrival or offer number (Call.arrival, last_offer)>,
     "calls": [<full trace (full_trace.py): the Call and its IVR session>, ...],
     "operators": [{"id", "presence", "presence_since", "activity", "call_id", "idle_since",
                    "wrap_up_until", "calls_taken", "unanswered_in_row", "last_offer"}, ...],
     "queues": [{"group": <id>, "heap": [[-priority, arrival, call id], ...]}, ...],
     "timers": [[deadline, kind, call id, operator id], ...]}     in the order they fire

A queue's heap is kept as it is, with the entries of calls that left it: which of two groups
an operator serves first depends on it. Groups, policies and memberships are configuration:
``restore`` loads the state over a core freshly configured from the directory
(``configure_group``, ``configure_operator``). It then decides exactly as the exported core
would have (same ``next_wakeup``, same steps for the same inputs) unless the directory
changed meanwhile; what such changes cause is done at once, in the step ``restore`` returns:

- a call waiting or ringing in a group that is gone ends ``missed``, reason ``group_gone``;
  a connected call stays connected (its operator then gets the default wrap-up);
- a call in an IVR whose number has no IVR any more, or no longer its step, goes to its
  number's group with the variables it collected, as if the IVR had routed it there (and
  ends ``ivr_group_gone`` if that group is gone too);
- an operator who is gone (deleted) goes offline, reason ``deleted``, as deletion does live.

The state is checked whole before anything changes: bad state raises ``InvalidSavedState``
and leaves the core as it was.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voicemgmt.domain import saved as read
from voicemgmt.domain.errors import InvalidCallAction
from voicemgmt.domain.ivr import IvrScript, RouteToGroup
from voicemgmt.domain.routing.full_trace import LoadedCall, call_from_full_trace, full_trace_of
from voicemgmt.domain.routing.model import (
    Activity,
    CallState,
    OperatorState,
    Outcome,
    Presence,
    Side,
)
from voicemgmt.domain.routing.timers import TimerKey

if TYPE_CHECKING:
    from voicemgmt.domain.routing.core import RoutingCore

STATE_FORMAT = 1  # the version of export_state's shape; restore refuses another
GROUP_GONE = "group_gone"  # the disconnect_reason of a waiting call whose group was deleted
_FIELDS = frozenset({"format", "exported_at", "sequence", "calls", "operators", "queues", "timers"})
_OPERATOR_FIELDS = frozenset(
    {"id", "presence", "presence_since", "activity", "call_id", "idle_since", "wrap_up_until"}
    | {"calls_taken", "unanswered_in_row", "last_offer"}
)
_CALL_TIMERS = frozenset({"ring", "max_wait", "tier", "ivr"})
_HOLDING = (Activity.RINGING, Activity.IN_CALL)  # activities with a call


def export_state(core: RoutingCore, now: float) -> dict[str, Any]:
    """The core's runtime state as JSON-ready values (the shape at the top)."""
    sequence = next(core._sequence)
    core._sequence = itertools.count(sequence)  # reading the counter took a number: put it back
    return {
        "format": STATE_FORMAT,
        "exported_at": now,
        "sequence": sequence,
        "calls": [full_trace_of(call) for call in core.calls.values()],
        "operators": [
            {
                "id": o.id,
                "presence": o.presence.value,
                "presence_since": o.presence_since,
                "activity": o.activity.value,
                "call_id": o.call_id,
                "idle_since": o.idle_since,
                "wrap_up_until": o.wrap_up_until,
                "calls_taken": o.calls_taken,
                "unanswered_in_row": o.unanswered_in_row,
                "last_offer": o.last_offer,
            }
            for o in core.operators.values()
        ],
        "queues": [
            {"group": group_id, "heap": [list(entry) for entry in heap]}
            for group_id, heap in core._queues.items()
        ],
        "timers": [[at, *key] for at, key in core._timers.pending()],
    }


@dataclass(slots=True)
class _State:
    sequence: int
    calls: dict[str, LoadedCall]
    operators: dict[int, OperatorState]  # runtime values only: no memberships
    queues: dict[int, list[tuple[int, int, str]]]
    timers: list[tuple[float, TimerKey]]


def restore(core: RoutingCore, now: float, saved: object, scripts: Mapping[str, IvrScript]) -> None:
    """Load ``saved`` over a freshly configured ``core``; events and commands of what the
    directory's changes caused are left in the core's step (see the top)."""
    if core.calls or len(core._timers) or any(core._queues.values()):
        raise InvalidCallAction("restore loads into a freshly configured core: this one runs")
    if any(o.presence is not Presence.OFFLINE or o.call_id for o in core.operators.values()):
        raise InvalidCallAction("restore loads into a freshly configured core: operators work")
    state = _read(saved, scripts)
    core._sequence = itertools.count(state.sequence)
    for loaded in state.calls.values():
        core.calls[loaded.call.id] = loaded.call
    deleted: list[OperatorState] = []
    for operator_id, values in state.operators.items():
        operator = core.operators.get(operator_id)
        if operator is None:
            core.configure_operator(operator_id, {})
            operator = core.operators[operator_id]
            deleted.append(operator)
        for name in _OPERATOR_FIELDS - {"id"}:
            setattr(operator, name, getattr(values, name))
        if operator.presence is not Presence.OFFLINE:
            core._available.logged(operator, 1)
        if operator.available:  # keyed now: its strategy's key is final while available
            core._available.available(operator)
    for group_id, heap in state.queues.items():
        if group_id in core._queues:
            core._queues[group_id] = heap
    deadlines = {key: at for at, key in state.timers}
    for at, key in state.timers:
        core._timers.set_at(at, key)
    for loaded in state.calls.values():  # an IVR edited since: its deadlines may have moved
        session, key = loaded.call.ivr, ("ivr", loaded.call.id, 0)
        if session is not None and session.deadline != deadlines.get(key):
            core._timers.cancel(key)
            if session.deadline is not None:
                core._timers.set_at(session.deadline, key)
    _follow_the_directory(core, now, state, deleted)


def _follow_the_directory(
    core: RoutingCore, now: float, state: _State, deleted: list[OperatorState]
) -> None:
    """What the directory's changes since the export cause (see the top)."""
    for loaded in state.calls.values():
        call = loaded.call
        if loaded.ivr_lost is not None:
            assert call.group_id is not None  # checked by _read
            core._finish_ivr(now, call, RouteToGroup(call.group_id, loaded.ivr_lost))
        elif call.state in (CallState.QUEUED, CallState.RINGING) and call.group_id not in (
            core.groups
        ):
            freed = core._stop_ringing(now, call, keep=None, reason="ended")
            core._end(now, call, Outcome.MISSED, Side.SYSTEM, GROUP_GONE)
            if freed:
                core._dispatch(now, freed)
    for operator in deleted:
        if operator.presence is Presence.OFFLINE:
            continue
        core._change_presence(now, operator, Presence.OFFLINE, "deleted")
        offer = core.calls.get(operator.call_id) if operator.call_id else None
        if offer is not None and operator.id in offer.ringing:
            core._withdraw(now, operator, "status_changed", count_unanswered=False)


def re_decide_offers(core: RoutingCore, now: float, reason: str) -> None:
    """Withdraw every ringing offer (not counted as unanswered) and offer the calls again,
    each keeping its place in its queue; a transfer to one operator rings them again."""
    ringing = sorted(
        (call for call in core.calls.values() if call.state is CallState.RINGING),
        key=lambda call: (-call.priority, call.arrival, call.id),
    )
    groups: set[int] = set()
    for call in ringing:  # every offer withdrawn first: then all decided afresh
        groups |= core._stop_ringing(now, call, keep=None, reason=reason)
        call.state = CallState.QUEUED
    for call in ringing:
        assert call.group_id is not None  # a ringing call is in a group
        target = core.operators[call.transfer_to] if call.transfer_to is not None else None
        if target is not None and target.available:
            core._offer(now, call, [target])
        elif target is not None:  # as when a transfer is not taken: back to its group
            call.transfer_to = None
            call.priority += 1
            call.queued_at = None
            core._enqueue(now, call, call.group_id)
        else:
            heapq.heappush(core._queues[call.group_id], (-call.priority, call.arrival, call.id))
            groups.add(call.group_id)
    core._dispatch(now, sorted(groups))


# reading ---------------------------------------------------------------------------------


def _read(saved: object, scripts: Mapping[str, IvrScript]) -> _State:
    raw = read.record(saved, "state", _FIELDS)
    read.version(raw, "state", STATE_FORMAT)
    read.time(raw["exported_at"], "state.exported_at")
    sequence = read.count(raw["sequence"], "state.sequence", 1)
    calls: dict[str, LoadedCall] = {}
    for i, trace in enumerate(read.items(raw["calls"], "state.calls")):
        where = f"state.calls[{i}]"
        loaded = call_from_full_trace(trace, scripts, where)
        call = loaded.call
        if call.id in calls:
            raise read.invalid(f"{where}.id", "names a call already given")
        if call.arrival >= sequence:
            raise read.invalid(f"{where}.arrival", "is not below the state's sequence")
        if call.state is CallState.IVR and call.group_id is None:
            raise read.invalid(f"{where}.group_id", "is needed by a call in the IVR")
        calls[call.id] = loaded
    operators: dict[int, OperatorState] = {}
    for i, raw_operator in enumerate(read.items(raw["operators"], "state.operators")):
        operator = _read_operator(raw_operator, f"state.operators[{i}]", sequence)
        if operator.id in operators:
            raise read.invalid(f"state.operators[{i}].id", "names an operator already given")
        operators[operator.id] = operator
    _check_references(calls, operators)
    queues = _read_queues(raw["queues"], sequence, calls)
    return _State(sequence, calls, operators, queues, _read_timers(raw["timers"], operators))


def _read_operator(raw: object, where: str, sequence: int) -> OperatorState:
    values = read.record(raw, where, _OPERATOR_FIELDS)
    operator = OperatorState(
        read.count(values["id"], f"{where}.id"),
        {},
        read.choice(values["presence"], f"{where}.presence", Presence),
        read.time(values["presence_since"], f"{where}.presence_since"),
        read.choice(values["activity"], f"{where}.activity", Activity),
        read.optional_text(values["call_id"], f"{where}.call_id"),
        read.time(values["idle_since"], f"{where}.idle_since"),
        read.optional_time(values["wrap_up_until"], f"{where}.wrap_up_until"),
        read.count(values["calls_taken"], f"{where}.calls_taken"),
        read.count(values["unanswered_in_row"], f"{where}.unanswered_in_row"),
        read.count(values["last_offer"], f"{where}.last_offer", -read.MAX_COUNT, sequence - 1),
    )
    if (operator.activity in _HOLDING) != (operator.call_id is not None):
        raise read.invalid(f"{where}.call_id", "must be given exactly when ringing or in a call")
    return operator


def _check_references(calls: dict[str, LoadedCall], operators: dict[int, OperatorState]) -> None:
    """Every call and operator the state names is in it, and they agree on who holds what."""
    for operator in operators.values():
        if operator.call_id is not None and operator.call_id not in calls:
            raise read.invalid(f"operator {operator.id}'s call_id", "names no call of the state")
    for position, loaded in enumerate(calls.values()):
        call, where = loaded.call, f"state.calls[{position}]"
        for name in ("operator_id", "transfer_to"):
            operator_id = getattr(call, name)
            if operator_id is not None and operator_id not in operators:
                raise read.invalid(f"{where}.{name}", "names no operator of the state")
        for operator_id in call.ringing:
            ringing = operators.get(operator_id)
            if ringing is None or ringing.call_id != call.id:
                raise read.invalid(f"{where}.ringing", f"names {operator_id}, not ringing for it")
            if ringing.activity is not Activity.RINGING:
                raise read.invalid(f"{where}.ringing", f"names {operator_id}, not ringing")
        if call.state is CallState.RINGING and not call.ringing:
            raise read.invalid(f"{where}.ringing", "is empty while the call rings")


def _read_queues(
    raw: object, sequence: int, calls: dict[str, LoadedCall]
) -> dict[int, list[tuple[int, int, str]]]:
    queues: dict[int, list[tuple[int, int, str]]] = {}
    for i, raw_queue in enumerate(read.items(raw, "state.queues")):
        where = f"state.queues[{i}]"
        queue = read.record(raw_queue, where, frozenset({"group", "heap"}))
        group_id = read.count(queue["group"], f"{where}.group")
        if group_id in queues:
            raise read.invalid(f"{where}.group", "names a queue already given")
        heap: list[tuple[int, int, str]] = []
        for j, raw_entry in enumerate(read.items(queue["heap"], f"{where}.heap")):
            at = f"{where}.heap[{j}]"
            entry = read.items(raw_entry, at)
            if len(entry) != 3:
                raise read.invalid(at, "must be [-priority, arrival, call id]")
            heap.append(
                (
                    read.count(entry[0], f"{at}[0]", -(2**31 - 1), 0),
                    read.count(entry[1], f"{at}[1]", 0, sequence - 1),
                    read.text(entry[2], f"{at}[2]"),
                )
            )
        if any(heap[(j - 1) // 2] > heap[j] for j in range(1, len(heap))):
            raise read.invalid(f"{where}.heap", "is not in heap order")
        queues[group_id] = heap
    waiting = {entry for heap in queues.values() for entry in heap}
    for loaded in calls.values():
        call = loaded.call
        queued = call.state is CallState.QUEUED and call.transfer_to is None
        if (
            queued
            and call.group_id in queues
            and (-call.priority, call.arrival, call.id) not in (waiting)
        ):
            raise read.invalid(f"call {call.id[:64]!r}", "waits in no queue")
    return queues


def _read_timers(raw: object, operators: dict[int, OperatorState]) -> list[tuple[float, TimerKey]]:
    timers: list[tuple[float, TimerKey]] = []
    keys: set[TimerKey] = set()
    for i, raw_timer in enumerate(read.items(raw, "state.timers")):
        where = f"state.timers[{i}]"
        timer = read.items(raw_timer, where)
        if len(timer) != 4:
            raise read.invalid(where, "must be [deadline, kind, call id, operator id]")
        at = read.time(timer[0], f"{where}[0]")
        kind = read.text(timer[1], f"{where}[1]")
        key = (kind, read.text(timer[2], f"{where}[2]"), read.count(timer[3], f"{where}[3]"))
        if kind not in _CALL_TIMERS and kind != "wrap_up":
            raise read.invalid(f"{where}[1]", f"is not a timer's kind ({kind[:32]!r})")
        if kind in ("ring", "wrap_up") and key[2] not in operators:
            raise read.invalid(f"{where}[3]", "names no operator of the state")
        if key in keys:
            raise read.invalid(where, "sets a timer already set")
        if timers and at < timers[-1][0]:
            raise read.invalid(f"{where}[0]", "comes before the timer above: not in firing order")
        keys.add(key)
        timers.append((at, key))
    return timers
