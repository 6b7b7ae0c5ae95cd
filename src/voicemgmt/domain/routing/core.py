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
- Events follow each operator's calls: the end (or transfer) of one comes before the offer of
  the next, even when both happen in one step (no wrap-up).

Nothing here awaits, reads a clock or touches I/O: every input takes ``now`` (seconds), every
input returns a ``Step`` of events and switch commands, and ``next_wakeup`` says when
``tick`` must be called.

This module holds the inputs; ``transitions.py`` the state and what the core does on its own,
``availability.py`` the index of who can take a call, ``timers.py`` the timers, ``state.py``
the state saved and loaded whole (``export_state``, ``restore``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voicemgmt.domain.errors import InvalidCallAction, InvalidInput
from voicemgmt.domain.ivr import IvrScript, IvrSession
from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing import state
from voicemgmt.domain.routing.model import Call, GroupPolicy, OperatorState, Outcome, Presence, Side
from voicemgmt.domain.routing.transitions import (
    CONNECTED,
    DIALING_CUSTOMER,
    DIALING_OPERATOR,
    HELD,
    IDLE,
    IN_CALL,
    IN_IVR,
    OFFLINE,
    ONLINE,
    PHONE_RINGING,
    QUEUED,
    RINGING,
    WRAP_UP,
    Transitions,
)

DEFAULT_RING_TIMEOUT = 20.0


@dataclass(slots=True)
class Step:
    events: list[ev.RoutingEvent] = field(default_factory=list)
    commands: list[ev.SwitchCommand] = field(default_factory=list)


class RoutingCore(Transitions):
    """One account's ACD, driven by the inputs below (see the rules at the top)."""

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
        logged_in = operator.presence is not OFFLINE
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
                presence is not ONLINE
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
        call = Call(call_id, "in", caller, called, now, IN_IVR, group_id)
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
        if operator.presence is OFFLINE or operator.activity not in (IDLE, WRAP_UP):
            raise InvalidCallAction("the operator is offline or already on a call")
        self._timers.cancel(("wrap_up", "", operator_id))
        call = Call(
            call_id,
            "out",
            caller_id,
            number,
            now,
            DIALING_OPERATOR,
            ticket_id=ticket_id,
            operator_id=operator_id,
            # The record's operator, answered or not: their stream tells them its end.
            answered_by=operator_id,
        )
        self.calls[call_id] = call
        operator.call_id = call_id
        self._set_activity(now, operator, PHONE_RINGING, "call")
        self._events.append(ev.OutboundStarted(call_id, operator_id, number, caller_id, ticket_id))
        self._commands.append(ev.RingOperator(call_id, operator_id, shown=number))
        self._timers.set_in(now, DEFAULT_RING_TIMEOUT, ("ring", call_id, operator_id))
        return self._flush()

    def answer(self, now: float, operator_id: int, call_id: str) -> Step:
        """The operator picks up: an inbound offer, or their own leg of a click-to-call."""
        call, operator = self._call(call_id), self._operator(operator_id)
        if call.state is DIALING_OPERATOR and call.operator_id == operator_id:
            call.state = DIALING_CUSTOMER
            self._timers.cancel(("ring", call_id, operator_id))
            self._set_activity(now, operator, IN_CALL, "call")
            self._commands.append(ev.DialCustomer(call_id, call.called, call.caller))
            return self._flush()
        if call.state is not RINGING or operator_id not in call.ringing:
            raise InvalidCallAction(f"call {call_id} is not ringing for operator {operator_id}")
        freed = self._stop_ringing(now, call, keep=operator_id, reason="taken_by_other")
        self._timers.cancel(("ring", call_id, operator_id))
        call.state = CONNECTED
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
        self._set_activity(now, operator, IN_CALL, "call")
        self._events.append(ev.CallAnswered(call_id, operator_id, call.group_id, call.direction))
        self._commands.append(ev.Bridge(call_id, operator_id))
        if freed:
            self._dispatch(now, freed)
        return self._flush()

    def customer_answered(self, now: float, call_id: str) -> Step:
        call = self._call(call_id)
        if call.state is not DIALING_CUSTOMER or call.operator_id is None:
            raise InvalidCallAction(f"call {call_id} is not dialling a customer")
        call.state = CONNECTED
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
        if call.state is DIALING_OPERATOR and call.operator_id == operator_id:
            return self.hang_up(now, call_id, Side.OPERATOR, "declined")
        if call.state is not RINGING or operator_id not in call.ringing:
            raise InvalidCallAction(f"call {call_id} is not ringing for operator {operator_id}")
        self._withdraw(now, operator, "declined", count_unanswered=False)
        return self._flush()

    def hang_up(self, now: float, call_id: str, side: Side, reason: str = "normal") -> Step:
        """Either side hangs up, or the switch reports a leg failed (``side=SYSTEM``)."""
        call = self._call(call_id)
        state = call.state
        if state is IN_IVR:
            self._end(now, call, Outcome.ABANDONED, side, reason)
        elif state is QUEUED or state is RINGING:
            freed = self._stop_ringing(now, call, keep=None, reason="caller_hung_up")
            outcome = Outcome.ANSWERED if call.answered_at is not None else Outcome.ABANDONED
            self._end(now, call, outcome, side, reason)
            if freed:
                self._dispatch(now, freed)
        elif state is CONNECTED or state is HELD:
            self._end(now, call, Outcome.ANSWERED, side, reason)
        elif state is DIALING_OPERATOR:
            failed = side is Side.SYSTEM
            self._end(now, call, Outcome.FAILED if failed else Outcome.ABANDONED, side, reason)
        elif state is DIALING_CUSTOMER:
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
        call = self._connected_to(call_id, operator_id, CONNECTED)
        call.state = HELD
        call.hold_started = now
        self._stop_talk(now, call)
        self._events.append(ev.CallHeld(call_id, operator_id))
        self._commands.append(ev.Hold(call_id))
        return self._flush()

    def unhold(self, now: float, operator_id: int, call_id: str) -> Step:
        call = self._connected_to(call_id, operator_id, HELD)
        call.state = CONNECTED
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
        call = self._connected_to(call_id, operator_id, CONNECTED, HELD)
        if to_operator is not None and call.group_id not in self.groups:
            # An offer needs a group's ring timeout, and somewhere to go back if unanswered.
            raise InvalidCallAction(
                "a call outside any group (a click-to-call, or its group was deleted) can be "
                "transferred to a group only"
            )
        if to_operator is not None:
            target = self._operator(to_operator)
            if not target.available:
                raise InvalidCallAction(f"operator {to_operator} is not available")
        if to_group is not None:
            self._policy(to_group)
        self._stop_talk(now, call)
        call.operator_id = None
        # Told before the operator is released, who may be offered another call at once.
        self._events.append(ev.CallTransferred(call_id, operator_id, to_operator, to_group))
        self._release(now, self._operator(operator_id), answered=True, group=call.group_id)
        if to_operator is not None:
            call.state = QUEUED
            call.queued_at = now
            call.transfer_to = to_operator
            self._offer(now, call, [self.operators[to_operator]])
        else:
            assert to_group is not None
            self._enqueue(now, call, to_group)
        return self._flush()

    def digit(self, now: float, call_id: str, digit: str) -> Step:
        call = self._call(call_id)
        if call.state is IN_IVR and call.ivr is not None:
            self._ivr_actions(now, call, call.ivr.digit(now, digit))
        return self._flush()

    def prompt_finished(self, now: float, call_id: str) -> Step:
        call = self._call(call_id)
        if call.state is IN_IVR and call.ivr is not None:
            self._ivr_actions(now, call, call.ivr.prompt_finished(now))
        return self._flush()

    # saved and loaded whole (state.py) ---------------------------------------------------

    def export_state(self, now: float) -> dict[str, Any]:
        """The runtime state, JSON-ready and whole: calls, operators, queues, timers."""
        return state.export_state(self, now)

    def restore(self, now: float, saved: object, *, scripts: Mapping[str, IvrScript]) -> Step:
        """Load ``export_state``'s ``saved`` over this core, freshly configured from the
        directory; IVR sessions go on over ``scripts`` (by number). The step holds what the
        directory's changes since the export caused. Raises ``InvalidSavedState``, nothing
        loaded, for state it cannot load."""
        state.restore(self, now, saved, scripts)
        return self._flush()

    def re_decide_offers(self, now: float, reason: str = "taken_over") -> Step:
        """Withdraw every ringing offer and offer the calls again, as a node that took the
        account over must: it cannot know whether a ring reached the phone. Not counted as
        unanswered; a click-to-call ringing its own operator is left alone."""
        state.re_decide_offers(self, now, reason)
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
            if operator.activity is WRAP_UP:
                operator.wrap_up_until = None
                self._set_activity(now, operator, IDLE, "wrap_up")
                self._dispatch(now, operator.groups)
            return
        call = self.calls.get(call_id)
        if call is None:
            return
        if kind == "ring":
            if call.state is RINGING and operator_id in call.ringing:
                self._withdraw(now, self.operators[operator_id], "timeout", count_unanswered=True)
            elif call.state is DIALING_OPERATOR:
                self._end(now, call, Outcome.FAILED, Side.SYSTEM, "operator_no_answer")
        elif kind == "max_wait" and (call.state is QUEUED or call.state is RINGING):
            self._leave_queue(now, call, "max_wait")
        elif kind == "tier" and call.state is QUEUED and call.group_id is not None:
            self._dispatch(now, (call.group_id,))
        elif kind == "ivr" and call.state is IN_IVR and call.ivr is not None:
            self._ivr_actions(now, call, call.ivr.timeout(now))

    def _flush(self) -> Step:
        step = Step(self._events, self._commands)
        self._events, self._commands = [], []
        return step
