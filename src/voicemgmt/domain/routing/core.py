"""The routing core (ACD) of one account: an I/O-free state machine.

Rules, in the order they are applied:

- A call offered to operators is *ringing*; an operator takes it by ``answer``. Each offer has
  its group's ``ring_timeout``; an unanswered offer goes to the next operator, and
  ``max_no_answer`` unanswered offers in a row put the operator on break.
- An operator gets offers only when ``online`` and idle: not ringing, not in a call, not in
  the wrap-up that follows each answered call (``wrap_up`` of the call's group).
- Within a group, calls are served by priority, then by order of arrival. The operator is
  chosen by the group's strategy among the first *tier* (priority 1 before 2 ...) that has an
  available operator; with ``tier_delay``, tier *n* is only tried after ``(n-1) * tier_delay``
  seconds of waiting. Ring-all offers to every available operator of that tier at once.
- A call waits at most ``max_wait``; then it overflows (to a group, or forwarded to a number)
  or ends missed. Joining a group with nobody logged in follows ``when_empty``.
- Every call ends exactly once, with one ``CallEnded`` event carrying its record.

Nothing here awaits, reads a clock or touches I/O: every input takes ``now`` (seconds), every
input returns a ``Step`` of events and switch commands, and ``next_wakeup`` says when
``tick`` must be called.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from voicemgmt.domain.errors import InvalidCallAction, InvalidInput, NoSuchCall, NotFound
from voicemgmt.domain.ivr import IvrAction, IvrScript, IvrSession, RouteToGroup
from voicemgmt.domain.ivr import Outcome as IvrOutcome
from voicemgmt.domain.ivr import PlayPrompt as IvrPlayPrompt
from voicemgmt.domain.ivr import StopPrompt as IvrStopPrompt
from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.availability import Availability
from voicemgmt.domain.routing.model import (
    Activity,
    Call,
    CallRecord,
    CallState,
    GroupPolicy,
    OperatorState,
    Outcome,
    Presence,
    Side,
    WhenEmpty,
)
from voicemgmt.domain.routing.timers import TimerQueue

DEFAULT_WRAP_UP_OUTBOUND = 0.0
DEFAULT_RING_TIMEOUT = 20.0

# Enum members, read once: on Python 3.11 ``CallState.QUEUED`` goes through the slow path of
# EnumType.__getattr__ (about 0.2 µs, ten times a global), and the core reads them dozens of
# times per call.
_IN_IVR = CallState.IVR
_QUEUED = CallState.QUEUED
_RINGING = CallState.RINGING
_CONNECTED = CallState.CONNECTED
_HELD = CallState.HELD
_DIALING_OPERATOR = CallState.DIALING_OPERATOR
_DIALING_CUSTOMER = CallState.DIALING_CUSTOMER
_ENDED = CallState.ENDED
_IDLE = Activity.IDLE
_PHONE_RINGING = Activity.RINGING
_IN_CALL = Activity.IN_CALL
_WRAP_UP = Activity.WRAP_UP
_ONLINE = Presence.ONLINE
_OFFLINE = Presence.OFFLINE
_WAIT = WhenEmpty.WAIT


@dataclass(slots=True)
class Step:
    events: list[ev.RoutingEvent] = field(default_factory=list)
    commands: list[ev.SwitchCommand] = field(default_factory=list)


class RoutingCore:
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

    # configuration -----------------------------------------------------------------------

    def configure_group(self, policy: GroupPolicy) -> None:
        self.groups[policy.group_id] = policy
        self._available.set_strategy(policy.group_id, policy.strategy)
        self._queues.setdefault(policy.group_id, [])

    def configure_operator(self, operator_id: int, groups: dict[int, int]) -> None:
        """Add an operator, or change their memberships (group → priority tier)."""
        operator = self.operators.get(operator_id)
        if operator is None:
            operator = self.operators[operator_id] = OperatorState(operator_id, {})
        for group_id in groups:
            self._policy(group_id)
        index = self._available
        available = operator.available
        logged_in = operator.presence is not _OFFLINE
        if available:
            index.unavailable(operator)
        index.leave(operator, logged_in=logged_in)
        operator.groups = dict(groups)
        index.join(operator, logged_in=logged_in)
        if available:
            index.available(operator)

    # inputs ------------------------------------------------------------------------------

    def set_presence(
        self, now: float, operator_id: int, presence: Presence, reason: str = "operator"
    ) -> Step:
        operator = self._operator(operator_id)
        if operator.presence is not presence:
            self._change_presence(now, operator, presence, reason)
            offer = self.calls.get(operator.call_id) if operator.call_id else None
            if (
                presence is not _ONLINE
                and offer is not None
                and operator.id in offer.ringing  # an inbound offer, not their own click-to-call
            ):
                self._withdraw(now, operator, "status_changed", count_unanswered=False)
            if operator.available:
                self._dispatch(now, operator.groups)
        return self._flush()

    def inbound(
        self,
        now: float,
        call_id: str,
        caller: str,
        called: str,
        group_id: int,
        ivr: IvrScript | None = None,
    ) -> Step:
        """A call reaches a number routed to ``group_id``, through ``ivr`` if it has one."""
        if call_id in self.calls:
            raise InvalidCallAction(f"call {call_id} exists already")
        self._policy(group_id)
        call = Call(call_id, "in", caller, called, now, _IN_IVR, group_id)
        self.calls[call_id] = call
        self._events.append(ev.CallArrived(call_id, caller, called))
        self._commands.append(ev.AnswerCaller(call_id))
        if ivr is None:
            self._enqueue(now, call, group_id)
        else:
            session = call.ivr = IvrSession(ivr, call_id)
            call.ivr_started = now
            self._ivr_actions(now, call, session.start(now))
        return self._flush()

    def outbound(
        self,
        now: float,
        call_id: str,
        operator_id: int,
        number: str,
        caller_id: str,
        ticket_id: str | None = None,
    ) -> Step:
        """Click-to-call: ring the operator's own line first, then dial the customer."""
        if call_id in self.calls:
            raise InvalidCallAction(f"call {call_id} exists already")
        operator = self._operator(operator_id)
        if operator.presence is _OFFLINE or operator.activity not in (_IDLE, _WRAP_UP):
            raise InvalidCallAction("the operator is offline or already on a call")
        self._timers.cancel(("wrap_up", "", operator_id))
        call = Call(
            call_id,
            "out",
            caller_id,
            number,
            now,
            _DIALING_OPERATOR,
            ticket_id=ticket_id,
            operator_id=operator_id,
        )
        self.calls[call_id] = call
        operator.call_id = call_id
        self._set_activity(now, operator, _PHONE_RINGING, "call")
        self._events.append(ev.OutboundStarted(call_id, operator_id, number, caller_id, ticket_id))
        self._commands.append(ev.RingOperator(call_id, operator_id))
        self._timers.set_in(now, DEFAULT_RING_TIMEOUT, ("ring", call_id, operator_id))
        return self._flush()

    def answer(self, now: float, operator_id: int, call_id: str) -> Step:
        """The operator picks up: an inbound offer, or their own leg of a click-to-call."""
        call, operator = self._call(call_id), self._operator(operator_id)
        if call.state is _DIALING_OPERATOR and call.operator_id == operator_id:
            call.state = _DIALING_CUSTOMER
            self._timers.cancel(("ring", call_id, operator_id))
            self._set_activity(now, operator, _IN_CALL, "call")
            self._commands.append(ev.DialCustomer(call_id, call.called, call.caller))
            return self._flush()
        if call.state is not _RINGING or operator_id not in call.ringing:
            raise InvalidCallAction(f"call {call_id} is not ringing for operator {operator_id}")
        freed = self._stop_ringing(now, call, keep=operator_id, reason="taken_by_other")
        self._timers.cancel(("ring", call_id, operator_id))
        call.state = _CONNECTED
        call.operator_id = call.answered_by = operator_id
        call.transfer_to = None
        call.wait_seconds += now - (call.queued_at or now)
        call.queued_at = None
        call.answered_at = call.answered_at if call.answered_at is not None else now
        call.talk_started = now
        self._timers.cancel(("max_wait", call_id, 0))
        operator.call_id = call_id
        operator.calls_taken += 1
        operator.unanswered_in_row = 0
        self._set_activity(now, operator, _IN_CALL, "call")
        self._events.append(ev.CallAnswered(call_id, operator_id, call.group_id, call.direction))
        self._commands.append(ev.Bridge(call_id, operator_id))
        if freed:
            self._dispatch(now, freed)
        return self._flush()

    def customer_answered(self, now: float, call_id: str) -> Step:
        call = self._call(call_id)
        if call.state is not _DIALING_CUSTOMER or call.operator_id is None:
            raise InvalidCallAction(f"call {call_id} is not dialling a customer")
        call.state = _CONNECTED
        call.answered_at = call.talk_started = now
        call.answered_by = call.operator_id
        self._operator(call.operator_id).calls_taken += 1
        self._events.append(
            ev.CallAnswered(call_id, call.operator_id, call.group_id, call.direction)
        )
        self._commands.append(ev.Bridge(call_id, call.operator_id))
        return self._flush()

    def decline(self, now: float, operator_id: int, call_id: str) -> Step:
        call, operator = self._call(call_id), self._operator(operator_id)
        if call.state is _DIALING_OPERATOR and call.operator_id == operator_id:
            return self.hang_up(now, call_id, Side.OPERATOR, "declined")
        if call.state is not _RINGING or operator_id not in call.ringing:
            raise InvalidCallAction(f"call {call_id} is not ringing for operator {operator_id}")
        self._withdraw(now, operator, "declined", count_unanswered=False)
        return self._flush()

    def hang_up(self, now: float, call_id: str, side: Side, reason: str = "normal") -> Step:
        """Either side hangs up, or the switch reports a leg failed (``side=SYSTEM``)."""
        call = self._call(call_id)
        state = call.state
        if state is _IN_IVR:
            self._end(now, call, Outcome.ABANDONED, side, reason)
        elif state is _QUEUED or state is _RINGING:
            freed = self._stop_ringing(now, call, keep=None, reason="caller_hung_up")
            outcome = Outcome.ANSWERED if call.answered_at is not None else Outcome.ABANDONED
            self._end(now, call, outcome, side, reason)
            if freed:
                self._dispatch(now, freed)
        elif state is _CONNECTED or state is _HELD:
            self._end(now, call, Outcome.ANSWERED, side, reason)
        elif state is _DIALING_OPERATOR:
            failed = side is Side.SYSTEM
            self._end(now, call, Outcome.FAILED if failed else Outcome.ABANDONED, side, reason)
        elif state is _DIALING_CUSTOMER:
            outcome = Outcome.ABANDONED if side is Side.OPERATOR else Outcome.FAILED
            self._end(now, call, outcome, side, reason)
        return self._flush()

    def abort(self, now: float, call_id: str, reason: str) -> Step:
        """The platform ends the call itself (shutting down, say): failed unless answered."""
        call = self._call(call_id)
        freed = self._stop_ringing(now, call, keep=None, reason="ended")
        outcome = Outcome.ANSWERED if call.answered_at is not None else Outcome.FAILED
        self._end(now, call, outcome, Side.SYSTEM, reason)
        if freed:
            self._dispatch(now, freed)
        return self._flush()

    def hold(self, now: float, operator_id: int, call_id: str) -> Step:
        call = self._connected_to(call_id, operator_id, _CONNECTED)
        call.state = _HELD
        call.hold_started = now
        self._stop_talk(now, call)
        self._events.append(ev.CallHeld(call_id, operator_id))
        self._commands.append(ev.Hold(call_id))
        return self._flush()

    def unhold(self, now: float, operator_id: int, call_id: str) -> Step:
        call = self._connected_to(call_id, operator_id, _HELD)
        call.state = _CONNECTED
        call.hold_seconds += now - (call.hold_started or now)
        call.hold_started = None
        call.talk_started = now
        self._events.append(ev.CallResumed(call_id, operator_id))
        self._commands.append(ev.Unhold(call_id))
        return self._flush()

    def transfer(
        self,
        now: float,
        operator_id: int,
        call_id: str,
        *,
        to_operator: int | None = None,
        to_group: int | None = None,
    ) -> Step:
        """Blind transfer to one operator or to a group's queue."""
        if (to_operator is None) == (to_group is None):
            raise InvalidInput("transfer to exactly one of an operator or a group")
        call = self._connected_to(call_id, operator_id, _CONNECTED, _HELD)
        if to_operator is not None:
            target = self._operator(to_operator)
            if not target.available:
                raise InvalidCallAction(f"operator {to_operator} is not available")
        if to_group is not None:
            self._policy(to_group)
        self._stop_talk(now, call)
        self._release(now, self._operator(operator_id), answered=True, group=call.group_id)
        call.operator_id = None
        self._events.append(ev.CallTransferred(call_id, operator_id, to_operator, to_group))
        if to_operator is not None:
            call.state = _QUEUED
            call.queued_at = now
            call.transfer_to = to_operator
            self._offer(now, call, [self.operators[to_operator]])
        else:
            assert to_group is not None
            self._enqueue(now, call, to_group)
        return self._flush()

    def digit(self, now: float, call_id: str, digit: str) -> Step:
        call = self._call(call_id)
        if call.state is _IN_IVR and call.ivr is not None:
            self._ivr_actions(now, call, call.ivr.digit(now, digit))
        return self._flush()

    def prompt_finished(self, now: float, call_id: str) -> Step:
        call = self._call(call_id)
        if call.state is _IN_IVR and call.ivr is not None:
            self._ivr_actions(now, call, call.ivr.prompt_finished(now))
        return self._flush()

    @property
    def next_wakeup(self) -> float | None:
        return self._timers.next_deadline

    def tick(self, now: float) -> Step:
        """Fire every timer due at ``now``."""
        pop_due = self._timers.pop_due
        while (key := pop_due(now)) is not None:
            self._fire(now, *key)
        return self._flush()

    # timers ------------------------------------------------------------------------------

    def _fire(self, now: float, kind: str, call_id: str, operator_id: int) -> None:
        if kind == "wrap_up":
            operator = self.operators[operator_id]
            if operator.activity is _WRAP_UP:
                operator.wrap_up_until = None
                self._set_activity(now, operator, _IDLE, "wrap_up")
                self._dispatch(now, operator.groups)
            return
        call = self.calls.get(call_id)
        if call is None:
            return
        if kind == "ring":
            if call.state is _RINGING and operator_id in call.ringing:
                self._withdraw(now, self.operators[operator_id], "timeout", count_unanswered=True)
            elif call.state is _DIALING_OPERATOR:
                self._end(now, call, Outcome.FAILED, Side.SYSTEM, "operator_no_answer")
        elif kind == "max_wait" and (call.state is _QUEUED or call.state is _RINGING):
            self._leave_queue(now, call, "max_wait")
        elif kind == "tier" and call.state is _QUEUED and call.group_id is not None:
            self._dispatch(now, (call.group_id,))
        elif kind == "ivr" and call.state is _IN_IVR and call.ivr is not None:
            self._ivr_actions(now, call, call.ivr.timeout(now))

    # queueing and offering --------------------------------------------------------------

    def _enqueue(self, now: float, call: Call, group_id: int) -> None:
        policy = self._policy(group_id)
        call.state = _QUEUED
        call.group_id = group_id
        call.queued_at = now
        call.arrival = next(self._sequence)
        self._events.append(ev.CallQueued(call.id, group_id, dict(call.variables)))
        if policy.when_empty is not _WAIT and not self._available.anyone_logged_in(group_id):
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
            if call is None or call.state is not _QUEUED or call.group_id != group_id:
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
        call.state = _RINGING
        call.ring_started = now
        wait = int(now - (call.queued_at or now))
        for operator in operators:
            operator.call_id = call.id
            operator.last_offer = next(self._sequence)
            self._set_activity(now, operator, _PHONE_RINGING, "call")
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
        self._set_activity(now, operator, _IDLE, reason)
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
            call.state = _QUEUED
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
                self._set_activity(now, operator, _IDLE, reason)
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
        if state is _ENDED:
            return
        if state is _IN_IVR:
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
        answered_by = call.operator_id
        if answered_by is not None:
            operator = self.operators[answered_by]
            cancel(("ring", call.id, answered_by))
            if operator.call_id == call.id:
                self._release(
                    now, operator, answered=call.answered_at is not None, group=call.group_id
                )
        call.state = _ENDED
        call.ended_at, call.outcome, call.ended_by, call.reason = now, outcome, side, reason
        del self.calls[call.id]
        self._events.append(ev.CallEnded(_record(call)))
        if hang_up:
            self._commands.append(ev.HangUp(call.id, reason))

    def _release(
        self, now: float, operator: OperatorState, *, answered: bool, group: int | None
    ) -> None:
        """The operator's call is over: wrap-up, then available again."""
        operator.call_id = None
        operator.idle_since = now
        wrap_up = self.groups[group].wrap_up if group is not None else DEFAULT_WRAP_UP_OUTBOUND
        if answered and wrap_up > 0:
            operator.wrap_up_until = now + wrap_up
            self._set_activity(now, operator, _WRAP_UP, "call")
            self._timers.set_in(now, wrap_up, ("wrap_up", "", operator.id))
        else:
            self._set_activity(now, operator, _IDLE, "call")
            self._dispatch(now, operator.groups)

    # helpers -----------------------------------------------------------------------------

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
        was_logged_in = operator.presence is not _OFFLINE
        operator.presence = presence
        operator.presence_since = now
        if presence is _ONLINE:
            operator.unanswered_in_row = 0
            operator.idle_since = now if operator.activity is _IDLE else operator.idle_since
        available = operator.available
        if available is not was_available:
            if available:
                self._available.available(operator)
            else:
                self._available.unavailable(operator)
        if was_logged_in is (presence is _OFFLINE):
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
        if presence is _ONLINE:  # available when idle: did that change?
            if activity is _IDLE:
                self._available.available(operator)
            elif was is _IDLE:
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

    def _flush(self) -> Step:
        step = Step(self._events, self._commands)
        self._events, self._commands = [], []
        return step


def _record(call: Call) -> CallRecord:
    ended = call.ended_at if call.ended_at is not None else call.created_at
    assert call.outcome is not None
    assert call.ended_by is not None
    # Positional, in the order of CallRecord's fields: 21 keywords cost 1.5 µs more per call.
    return CallRecord(
        call.id,  # id_call
        call.direction,
        call.caller,  # caller_number
        call.called,  # service_number
        call.group_id,  # id_group
        call.outcome,
        call.ended_by,
        call.reason or "normal",  # disconnect_reason
        call.created_at,  # started_at
        ended,  # ended_at
        call.answered_by,  # id_op
        tuple(call.offered_to),  # operators_offered
        tuple(call.overflowed_from),
        call.ticket_id,
        dict(call.variables),
        ended - call.created_at,  # duration
        call.ring_seconds,  # duration_ring
        call.ivr_seconds,  # duration_svi
        call.wait_seconds,  # duration_wait
        call.talk_seconds,  # duration_comm
        call.hold_seconds,  # duration_hold
    )
