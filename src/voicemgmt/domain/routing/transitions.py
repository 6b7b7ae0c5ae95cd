"""The routing core's transitions: what it does on its own once an input arrived.

Queueing, choosing and offering, withdrawing offers, the IVR's end, ending calls and operator
statuses, over the state that ``RoutingCore`` (``core.py``, where the rules are written down)
exposes. Events and commands are collected here and handed out by each input as its ``Step``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable

from voicemgmt.domain.errors import InvalidCallAction, NoSuchCall, NotFound
from voicemgmt.domain.ivr import IvrAction, RouteToGroup
from voicemgmt.domain.ivr import Outcome as IvrOutcome
from voicemgmt.domain.ivr import PlayPrompt as IvrPlayPrompt
from voicemgmt.domain.ivr import StopPrompt as IvrStopPrompt
from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.availability import Availability
from voicemgmt.domain.routing.model import (
    Activity,
    Call,
    CallState,
    GroupPolicy,
    OperatorState,
    Outcome,
    Presence,
    Side,
    WhenEmpty,
    record_of,
)
from voicemgmt.domain.routing.timers import TimerQueue

DEFAULT_WRAP_UP_OUTBOUND = 0.0
DEFAULT_WRAP_UP_GROUP_GONE = GroupPolicy(0).wrap_up  # after a call whose group was deleted

# Enum members, read once: on Python 3.11 ``CallState.QUEUED`` goes through the slow path of
# EnumType.__getattr__ (about 0.2 µs, ten times a global), and the core reads them dozens of
# times per call.
IN_IVR = CallState.IVR
QUEUED = CallState.QUEUED
RINGING = CallState.RINGING
CONNECTED = CallState.CONNECTED
HELD = CallState.HELD
DIALING_OPERATOR = CallState.DIALING_OPERATOR
DIALING_CUSTOMER = CallState.DIALING_CUSTOMER
ENDED = CallState.ENDED
IDLE = Activity.IDLE
PHONE_RINGING = Activity.RINGING
IN_CALL = Activity.IN_CALL
WRAP_UP = Activity.WRAP_UP
ONLINE = Presence.ONLINE
OFFLINE = Presence.OFFLINE
WAIT = WhenEmpty.WAIT


class Transitions:
    """An account's routing state and the transitions over it; ``RoutingCore`` adds inputs."""

    def __init__(self) -> None:
        self.groups: dict[int, GroupPolicy] = {}
        self.operators: dict[int, OperatorState] = {}
        self.calls: dict[str, Call] = {}
        self._available = Availability(self.operators)  # who could take a call, per group
        self._queues: dict[int, list[tuple[int, int, str]]] = {}
        self._timers = TimerQueue()
        self._sequence = itertools.count(1)
        self._events: list[ev.RoutingEvent] = []  # of the input being handled
        self._commands: list[ev.SwitchCommand] = []

    # queueing and offering --------------------------------------------------------------

    def _enqueue(self, now: float, call: Call, group_id: int) -> None:
        policy = self._policy(group_id)
        call.state = QUEUED
        call.group_id = group_id
        call.queued_at = now
        call.arrival = next(self._sequence)
        self._events.append(ev.CallQueued(call.id, group_id, dict(call.variables)))
        if policy.when_empty is not WAIT and not self._available.anyone_logged_in(group_id):
            self._leave_queue(now, call, "nobody_logged_in")
            return
        self._commands.append(ev.PlayQueueMusic(call.id))
        heapq.heappush(self._queues[group_id], (-call.priority, call.arrival, call.id))
        if policy.max_wait is not None:
            self._timers.set_in(now, policy.max_wait, ("max_wait", call.id, 0))
        self._serve(now, group_id)

    def _leave_queue(self, now: float, call: Call, reason: str) -> None:
        """Max wait reached, or nobody to answer: overflow if the group says so, else missed."""
        assert call.group_id is not None
        policy = self.groups[call.group_id]
        freed = self._stop_ringing(now, call, keep=None, reason="ended")
        call.wait_seconds += now - (call.queued_at or now)
        call.queued_at = None
        self._timers.cancel(("max_wait", call.id, 0))
        target = policy.overflow_group
        if target is not None and target not in call.overflowed_from and target in self.groups:
            call.overflowed_from.append(call.group_id)
            self._events.append(ev.CallOverflowed(call.id, call.group_id, target, None))
            self._enqueue(now, call, target)
        elif policy.overflow_number is not None:
            call.overflowed_from.append(call.group_id)
            self._events.append(
                ev.CallOverflowed(call.id, call.group_id, None, policy.overflow_number)
            )
            self._commands.append(ev.Forward(call.id, policy.overflow_number))
            self._end(now, call, Outcome.OVERFLOWED, Side.SYSTEM, reason, hang_up=False)
        else:
            self._end(now, call, Outcome.MISSED, Side.SYSTEM, reason)
        if freed:
            self._dispatch(now, freed)

    def _dispatch(self, now: float, group_ids: Iterable[int]) -> None:
        """Offer waiting calls of these groups to available operators, oldest first."""
        queues = self._queues
        waiting = [group_id for group_id in group_ids if queues[group_id]]
        if len(waiting) > 1:
            waiting.sort(key=lambda group_id: queues[group_id][0][:2])
        for group_id in waiting:
            self._serve(now, group_id)

    def _serve(self, now: float, group_id: int) -> None:
        """Offer the group's waiting calls, first first, while someone can take them."""
        queue = self._queues[group_id]
        calls = self.calls
        while queue:
            call = calls.get(queue[0][2])
            if call is None or call.state is not QUEUED or call.group_id != group_id:
                heapq.heappop(queue)  # stale: a call that rings is queued again if unanswered
                continue
            chosen = self._choose(now, call, group_id)
            if not chosen:
                break
            heapq.heappop(queue)
            self._offer(now, call, chosen)

    def _choose(self, now: float, call: Call, group_id: int) -> list[OperatorState]:
        available = self._available
        best = available.first_tier(group_id)
        if best is None:
            return []
        tier_delay = self.groups[group_id].tier_delay
        if tier_delay is not None:
            unlock_at = (call.queued_at or now) + available.rank(group_id, best) * tier_delay
            if now < unlock_at:
                self._timers.set_at(unlock_at, ("tier", call.id, 0))
                return []
        return available.choose(group_id, best)

    def _offer(self, now: float, call: Call, operators: list[OperatorState]) -> None:
        group_id = call.group_id
        assert group_id is not None
        ring_timeout = self.groups[group_id].ring_timeout
        call.state = RINGING
        call.ring_started = now
        wait = int(now - (call.queued_at or now))
        for operator in operators:
            operator.call_id = call.id
            operator.last_offer = next(self._sequence)
            self._set_activity(now, operator, PHONE_RINGING, "call")
            call.ringing.add(operator.id)
            call.offered_to.append(operator.id)
            self._timers.set_in(now, ring_timeout, ("ring", call.id, operator.id))
            self._events.append(
                ev.CallOffered(
                    call.id,
                    operator.id,
                    group_id,
                    call.caller,
                    call.called,
                    wait,
                    dict(call.variables),
                )
            )
            self._commands.append(ev.RingOperator(call.id, operator.id))

    def _withdraw(
        self, now: float, operator: OperatorState, reason: str, *, count_unanswered: bool
    ) -> None:
        """End one operator's offer; the call goes back to the queue if nobody else rings."""
        call = self.calls[operator.call_id] if operator.call_id else None
        assert call is not None
        call.ringing.discard(operator.id)
        self._timers.cancel(("ring", call.id, operator.id))
        self._events.append(ev.OfferWithdrawn(call.id, operator.id, reason))
        self._commands.append(ev.CancelRing(call.id, operator.id))
        operator.call_id = None
        operator.idle_since = now
        self._set_activity(now, operator, IDLE, reason)
        policy = self.groups[call.group_id] if call.group_id is not None else None
        if count_unanswered:
            operator.unanswered_in_row += 1
            limit = policy.max_no_answer if policy else 0
            if limit and operator.unanswered_in_row >= limit:
                operator.unanswered_in_row = 0
                self._change_presence(now, operator, Presence.BREAK, "no_answer")
        if not call.ringing:
            call.ring_seconds += now - (call.ring_started or now)
            call.ring_started = None
            call.state = QUEUED
            if call.transfer_to is None and call.group_id is not None:
                heapq.heappush(self._queues[call.group_id], (-call.priority, call.arrival, call.id))
            if call.transfer_to is not None:  # a transfer nobody took: back to its group
                call.transfer_to = None
                call.priority += 1
                assert call.group_id is not None
                group_id = call.group_id
                call.queued_at = None
                self._enqueue(now, call, group_id)
                return
        groups = set(operator.groups) | ({call.group_id} if call.group_id else set())
        self._dispatch(now, groups)

    def _stop_ringing(self, now: float, call: Call, *, keep: int | None, reason: str) -> set[int]:
        """Withdraw every offer of ``call`` but ``keep``'s; return the freed operators' groups."""
        freed: set[int] = set()
        ringing = call.ringing
        if ringing and (len(ringing) > 1 or keep not in ringing):
            for operator_id in sorted(ringing):
                if operator_id == keep:
                    continue
                operator = self.operators[operator_id]
                self._timers.cancel(("ring", call.id, operator_id))
                self._events.append(ev.OfferWithdrawn(call.id, operator_id, reason))
                self._commands.append(ev.CancelRing(call.id, operator_id))
                operator.call_id = None
                self._set_activity(now, operator, IDLE, reason)
                freed.update(operator.groups)
        if call.ring_started is not None:
            call.ring_seconds += now - call.ring_started
            call.ring_started = None
        ringing.clear()
        return freed

    # the IVR -----------------------------------------------------------------------------

    def _ivr_actions(self, now: float, call: Call, actions: Iterable[IvrAction]) -> None:
        session = call.ivr
        assert session is not None
        for action in actions:
            if isinstance(action, IvrPlayPrompt):
                self._commands.append(
                    ev.PlayPrompt(call.id, action.prompt.to_json(), action.interruptible)
                )
            elif isinstance(action, IvrStopPrompt):
                self._commands.append(ev.StopPrompt(call.id))
            else:
                self._finish_ivr(now, call, action.outcome)
                return
        self._timers.cancel(("ivr", call.id, 0))
        if session.deadline is not None:
            self._timers.set_at(session.deadline, ("ivr", call.id, 0))

    def _finish_ivr(self, now: float, call: Call, outcome: IvrOutcome) -> None:
        for name, value in outcome.variables.items():
            if call.variables.get(name) != value:
                self._events.append(ev.IvrVariableCollected(call.id, name, value))
        call.variables.update(outcome.variables)
        call.ivr_seconds += now - (call.ivr_started or now)
        call.ivr = None
        self._timers.cancel(("ivr", call.id, 0))
        if isinstance(outcome, RouteToGroup) and outcome.group_id in self.groups:
            self._enqueue(now, call, outcome.group_id)
        elif isinstance(outcome, RouteToGroup):  # the group was deleted since the IVR was set
            self._end(now, call, Outcome.MISSED, Side.SYSTEM, "ivr_group_gone")
        else:
            self._end(now, call, Outcome.MISSED, Side.SYSTEM, outcome.reason.value)

    # endings -----------------------------------------------------------------------------

    def _end(
        self,
        now: float,
        call: Call,
        outcome: Outcome,
        side: Side,
        reason: str,
        *,
        hang_up: bool = True,
    ) -> None:
        """Close the call: durations, operator released, one record, legs torn down."""
        state = call.state
        if state is ENDED:
            return
        if state is IN_IVR:
            call.ivr_seconds += now - (call.ivr_started or now)
        if call.queued_at is not None:
            call.wait_seconds += now - call.queued_at
            call.queued_at = None
        if call.hold_started is not None:
            call.hold_seconds += now - call.hold_started
            call.hold_started = None
        self._stop_talk(now, call)
        cancel = self._timers.cancel
        cancel(("max_wait", call.id, 0))
        cancel(("ivr", call.id, 0))
        cancel(("tier", call.id, 0))
        operator_id = call.operator_id
        operator = self.operators[operator_id] if operator_id is not None else None
        releasing = operator is not None and operator.call_id == call.id
        answered = call.answered_at is not None
        if releasing:  # the record tells the wrap-up its operator is given
            call.wrap_up_seconds = self._wrap_up(answered, call.group_id)
        call.state = ENDED
        call.ended_at, call.outcome, call.ended_by, call.reason = now, outcome, side, reason
        del self.calls[call.id]
        self._events.append(ev.CallEnded(record_of(call)))
        if hang_up:
            self._commands.append(ev.HangUp(call.id, reason))
        # The operator is released after the end is told: with no wrap-up they may be offered
        # the next call in this same step, and its offer must not come before this end.
        if operator is not None:
            cancel(("ring", call.id, operator.id))
            if releasing:
                self._release(now, operator, answered=answered, group=call.group_id)

    def _release(
        self, now: float, operator: OperatorState, *, answered: bool, group: int | None
    ) -> None:
        """The operator's call is over: wrap-up, then available again."""
        operator.call_id = None
        operator.idle_since = now
        wrap_up = self._wrap_up(answered, group)
        if wrap_up > 0:
            operator.wrap_up_until = now + wrap_up
            self._set_activity(now, operator, WRAP_UP, "call")
            self._timers.set_in(now, wrap_up, ("wrap_up", "", operator.id))
            return
        self._set_activity(now, operator, IDLE, "call")
        self._dispatch(now, operator.groups)

    # helpers -----------------------------------------------------------------------------

    def _wrap_up(self, answered: bool, group: int | None) -> float:
        """The wrap-up an operator is given after a call (none after an unanswered one)."""
        if not answered:
            return 0.0
        if group is None:
            return DEFAULT_WRAP_UP_OUTBOUND
        policy = self.groups.get(group)  # none: deleted while its call was connected
        return policy.wrap_up if policy is not None else DEFAULT_WRAP_UP_GROUP_GONE

    def _stop_talk(self, now: float, call: Call) -> None:
        if call.talk_started is not None:
            call.talk_seconds += now - call.talk_started
            call.talk_started = None

    def _connected_to(self, call_id: str, operator_id: int, *states: CallState) -> Call:
        call = self._call(call_id)
        self._operator(operator_id)
        if call.operator_id != operator_id or call.state not in states:
            raise InvalidCallAction(
                f"call {call_id} is not {' or '.join(s.value for s in states)} "
                f"with operator {operator_id}"
            )
        return call

    def _change_presence(
        self, now: float, operator: OperatorState, presence: Presence, reason: str
    ) -> None:
        was_available = operator.available
        was_logged_in = operator.presence is not OFFLINE
        operator.presence = presence
        operator.presence_since = now
        if presence is ONLINE:
            operator.unanswered_in_row = 0
            operator.idle_since = now if operator.activity is IDLE else operator.idle_since
        available = operator.available
        if available is not was_available:
            if available:
                self._available.available(operator)
            else:
                self._available.unavailable(operator)
        if was_logged_in is (presence is OFFLINE):
            self._available.logged(operator, -1 if was_logged_in else 1)
        self._status_event(operator, reason)

    def _set_activity(
        self, now: float, operator: OperatorState, activity: Activity, reason: str
    ) -> None:
        was = operator.activity
        if was is activity:
            return
        operator.activity = activity
        presence = operator.presence
        if presence is ONLINE:  # available when idle: did that change?
            if activity is IDLE:
                self._available.available(operator)
            elif was is IDLE:
                self._available.unavailable(operator)
        self._events.append(  # _status_event, inlined: this is the core's busiest path
            ev.OperatorStatusChanged(operator.id, operator.shown_status, presence, activity, reason)
        )

    def _status_event(self, operator: OperatorState, reason: str) -> None:
        self._events.append(
            ev.OperatorStatusChanged(
                operator.id, operator.shown_status, operator.presence, operator.activity, reason
            )
        )

    def _policy(self, group_id: int) -> GroupPolicy:
        policy = self.groups.get(group_id)
        if policy is None:
            raise NotFound(f"no group {group_id} in the routing core")
        return policy

    def _operator(self, operator_id: int) -> OperatorState:
        operator = self.operators.get(operator_id)
        if operator is None:
            raise NotFound(f"no operator {operator_id} in the routing core")
        return operator

    def _call(self, call_id: str) -> Call:
        call = self.calls.get(call_id)
        if call is None:
            raise NoSuchCall(f"no live call {call_id}")
        return call
