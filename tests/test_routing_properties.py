"""Invariants of the routing core under any sequence of inputs (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicemgmt.domain.errors import InvalidCallAction, NoSuchCall
from voicemgmt.domain.ivr import parse_ivr
from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.core import RoutingCore, Step
from voicemgmt.domain.routing.model import (
    Activity,
    CallState,
    GroupPolicy,
    Presence,
    Side,
    Strategy,
    WhenEmpty,
)
from voicemgmt.services.events import operators_concerned
from voicemgmt.services.live_state import event_json

OPERATORS = (1, 2, 3, 4)
GROUPS = (10, 20)

policies = st.builds(
    GroupPolicy,
    group_id=st.just(0),
    strategy=st.sampled_from(Strategy),
    ring_timeout=st.sampled_from([5.0, 15.0, 30.0]),
    wrap_up=st.sampled_from([0.0, 5.0]),
    max_no_answer=st.integers(0, 3),
    max_wait=st.sampled_from([None, 40.0, 200.0]),
    overflow_group=st.sampled_from([None, 10, 20]),
    when_empty=st.sampled_from(WhenEmpty),
    tier_delay=st.sampled_from([None, 10.0]),
)
memberships = st.dictionaries(st.sampled_from(GROUPS), st.integers(1, 2), min_size=1)

operation = st.one_of(
    st.tuples(st.just("call"), st.sampled_from(GROUPS)),
    st.tuples(st.just("presence"), st.sampled_from(OPERATORS), st.sampled_from(Presence)),
    st.tuples(st.just("answer"), st.integers(0, 7)),
    st.tuples(st.just("decline"), st.integers(0, 7)),
    st.tuples(st.just("hangup"), st.integers(0, 7), st.sampled_from(Side)),
    st.tuples(st.just("hold"), st.integers(0, 7)),
    st.tuples(st.just("unhold"), st.integers(0, 7)),
    st.tuples(st.just("transfer"), st.integers(0, 7), st.sampled_from(OPERATORS + GROUPS)),
    st.tuples(st.just("outbound"), st.sampled_from(OPERATORS)),
    st.tuples(st.just("customer"), st.integers(0, 7), st.booleans()),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 4.0, 11.0, 31.0])),
    st.tuples(st.just("ivr_call"), st.sampled_from(GROUPS)),
    st.tuples(st.just("digit"), st.integers(0, 7), st.sampled_from("0123456789#*")),
    st.tuples(st.just("prompt_finished"), st.integers(0, 7)),
)

IVR = parse_ivr(
    {
        "start": "menu",
        "steps": {
            "menu": {
                "type": "menu",
                "prompt": {"text": "1 for sales, 2 for an order, 0 to leave"},
                "options": {"1": {"group": 10}, "2": {"step": "order"}, "0": {"hangup": True}},
                "timeout": 3,
                "attempts": 2,
                "on_failure": {"group": 20},
            },
            "order": {
                "type": "collect",
                "variable": "order_number",
                "min_length": 2,
                "max_length": 4,
                "next": {"group": 20},
            },
        },
    }
)


@dataclass
class Run:
    core: RoutingCore = field(default_factory=RoutingCore)
    now: float = 0.0
    log: list[ev.RoutingEvent] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    presence: dict[int, Presence] = field(default_factory=dict)
    activity: dict[int, Activity] = field(default_factory=dict)
    before_ringing: dict[int, tuple[Presence, Activity]] = field(default_factory=dict)

    def take(self, step: Step) -> None:
        for event in step.events:
            self.check_event(event)
            self.log.append(event)
        self.check_state()

    def check_event(self, event: ev.RoutingEvent) -> None:
        if isinstance(event, ev.OperatorStatusChanged):
            if event.activity is Activity.RINGING:
                previous = (
                    self.presence.get(event.id_op, Presence.OFFLINE),
                    self.activity.get(event.id_op, Activity.IDLE),
                )
                self.before_ringing[event.id_op] = previous
            self.presence[event.id_op] = event.presence
            self.activity[event.id_op] = event.activity
        if isinstance(event, ev.CallOffered):
            # No call is offered to an operator who was not available just before.
            assert self.before_ringing[event.id_op] in ((Presence.ONLINE, Activity.IDLE),), (
                event,
                self.before_ringing[event.id_op],
            )
            assert self.presence[event.id_op] is Presence.ONLINE

    def check_state(self) -> None:
        holders: dict[int, list[str]] = {}
        for call in self.core.calls.values():
            assert call.state is not CallState.ENDED
            people = set(call.ringing)
            if call.operator_id is not None:
                people.add(call.operator_id)
            if call.state in (CallState.QUEUED, CallState.IVR):
                assert not call.ringing
            for operator_id in people:
                holders.setdefault(operator_id, []).append(call.id)
        for operator in self.core.operators.values():
            held = holders.get(operator.id, [])
            # An operator never holds two calls.
            assert len(held) <= 1, (operator.id, held)
            if operator.activity in (Activity.RINGING, Activity.IN_CALL):
                assert operator.call_id is not None
                assert held == [operator.call_id], (operator, held)
            else:
                assert operator.call_id is None
                assert held == []

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        calls = sorted(self.core.calls)
        ringing = sorted((c.id, o) for c in self.core.calls.values() for o in c.ringing) + sorted(
            (c.id, c.operator_id)
            for c in self.core.calls.values()
            if c.state is CallState.DIALING_OPERATOR and c.operator_id is not None
        )
        connected = sorted(
            (c.id, c.operator_id)
            for c in self.core.calls.values()
            if c.operator_id is not None and c.state in (CallState.CONNECTED, CallState.HELD)
        )
        try:
            if kind == "call":
                call_id = f"c{len(self.created)}"
                self.created.append(call_id)
                self.take(self.core.inbound(self.now, call_id, "336", "331", op[1]))
            elif kind == "ivr_call":
                call_id = f"c{len(self.created)}"
                self.created.append(call_id)
                self.take(self.core.inbound(self.now, call_id, "336", "331", op[1], IVR))
            elif kind == "digit" and calls:
                self.take(self.core.digit(self.now, calls[op[1] % len(calls)], op[2]))
            elif kind == "prompt_finished" and calls:
                self.take(self.core.prompt_finished(self.now, calls[op[1] % len(calls)]))
            elif kind == "presence":
                self.take(self.core.set_presence(self.now, op[1], op[2]))
            elif kind in ("answer", "decline") and ringing:
                call_id, operator_id = ringing[op[1] % len(ringing)]
                act = self.core.answer if kind == "answer" else self.core.decline
                self.take(act(self.now, operator_id, call_id))
            elif kind == "hangup" and calls:
                self.take(self.core.hang_up(self.now, calls[op[1] % len(calls)], op[2]))
            elif kind in ("hold", "unhold") and connected:
                call_id, operator_id = connected[op[1] % len(connected)]
                act = self.core.hold if kind == "hold" else self.core.unhold
                self.take(act(self.now, operator_id, call_id))
            elif kind == "transfer" and connected:
                call_id, operator_id = connected[op[1] % len(connected)]
                target = op[2]
                if target in GROUPS:
                    self.take(self.core.transfer(self.now, operator_id, call_id, to_group=target))
                else:
                    self.take(
                        self.core.transfer(self.now, operator_id, call_id, to_operator=target)
                    )
            elif kind == "outbound":
                call_id = f"o{len(self.created)}"
                self.created.append(call_id)
                try:
                    self.take(self.core.outbound(self.now, call_id, op[1], "336", "331"))
                except InvalidCallAction:
                    self.created.pop()
            elif kind == "customer" and calls:
                call_id = calls[op[1] % len(calls)]
                if op[2]:
                    self.take(self.core.customer_answered(self.now, call_id))
                else:
                    self.take(self.core.hang_up(self.now, call_id, Side.SYSTEM, "busy"))
            elif kind == "wait":
                self.wait(op[1])
        except (InvalidCallAction, NoSuchCall):
            self.check_state()  # a refused input changes nothing that breaks the rules

    def wait(self, seconds: float) -> None:
        end = self.now + seconds
        while (wake := self.core.next_wakeup) is not None and wake <= end:
            self.now = max(self.now, wake)
            self.take(self.core.tick(self.now))
        self.now = end

    def finish(self) -> None:
        for call_id in sorted(self.core.calls):
            self.take(self.core.hang_up(self.now, call_id, Side.CALLER))
        self.wait(10_000)


def build(group_policies: list[GroupPolicy], members: list[dict[int, int]]) -> Run:
    run = Run()
    for group_id, policy in zip(GROUPS, group_policies, strict=True):
        overflow = policy.overflow_group if policy.overflow_group != group_id else None
        run.core.configure_group(
            GroupPolicy(**{**_fields(policy), "group_id": group_id, "overflow_group": overflow})
        )
    for operator_id, groups in zip(OPERATORS, members, strict=True):
        run.core.configure_operator(operator_id, groups)
    return run


def _fields(policy: GroupPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in GroupPolicy.__dataclass_fields__}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(policies, min_size=2, max_size=2),
    st.lists(memberships, min_size=4, max_size=4),
    st.lists(operation, max_size=60),
)
def test_the_rules_hold_whatever_happens(
    group_policies: list[GroupPolicy], members: list[dict[int, int]], ops: list[Any]
) -> None:
    run = build(group_policies, members)
    for op in ops:
        run.apply(op)
    run.finish()
    # Each call ends exactly once, with exactly one record.
    ended = [e.record for e in run.log if isinstance(e, ev.CallEnded)]
    assert sorted(r.id_call for r in ended) == sorted(run.created)
    for record in ended:  # variables always satisfy the IVR's rules
        assert set(record.variables) <= {"order_number"}
        assert all(2 <= len(v) <= 4 and v.isdigit() for v in record.variables.values())
    assert not run.core.calls
    for operator in run.core.operators.values():
        assert operator.activity is Activity.IDLE
    assert run.core.next_wakeup is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(policies, min_size=2, max_size=2),
    st.lists(memberships, min_size=4, max_size=4),
    st.lists(operation.filter(lambda op: op[0] != "transfer"), max_size=60),
)
def test_calls_are_offered_in_their_order_of_arrival(
    group_policies: list[GroupPolicy], members: list[dict[int, int]], ops: list[Any]
) -> None:
    """Without transfers every call has the same priority: first queued, first offered."""
    run = build(group_policies, members)
    for op in ops:
        run.apply(op)
    queued: dict[int, list[str]] = {}
    gone: dict[str, int] = {}
    first_offer: dict[tuple[int, str], int] = {}
    for index, event in enumerate(run.log):
        if isinstance(event, ev.CallQueued):
            queued.setdefault(event.id_group, []).append(event.id_call)
        elif isinstance(event, ev.CallOffered):
            first_offer.setdefault((event.id_group, event.id_call), index)
        elif isinstance(event, ev.CallEnded | ev.CallOverflowed):
            call_id = event.record.id_call if isinstance(event, ev.CallEnded) else event.id_call
            gone.setdefault(call_id, index)
    for group_id, order in queued.items():
        for position, later in enumerate(order):
            offered_at = first_offer.get((group_id, later))
            if offered_at is None:
                continue
            for earlier in order[:position]:
                served = first_offer.get((group_id, earlier), 2**62)
                left = gone.get(earlier, 2**62)
                assert min(served, left) < offered_at, (group_id, earlier, later)


class CallLives:
    """Each operator's view of their calls, checked event by event: what their stream shows
    follows a call's life (offered or dialled → answered → held/resumed → ended, transferred
    or withdrawn) and holds one call at a time."""

    def __init__(self, operator: int | None = None) -> None:
        self.operator = operator  # one operator's own stream, or the account's (None)
        self.current: dict[int, tuple[str, str]] = {}  # operator → (call, "offered"|"talking")
        self.ended: set[str] = set()

    def see(self, event: ev.RoutingEvent) -> None:
        current = self.current
        if isinstance(event, ev.CallEnded):
            ended = event.record.id_call
            for operator_id, (held, _) in list(current.items()):
                if held == ended:
                    del current[operator_id]
            self.ended.add(ended)
            return
        assert getattr(event, "id_call", None) not in self.ended, ("after the end", event)
        if isinstance(event, ev.OperatorStatusChanged):
            if event.activity in (Activity.IDLE, Activity.WRAP_UP):
                # Shown free while the stream still shows them a call: the end comes later.
                assert event.id_op not in current, (event, current[event.id_op])
        elif isinstance(event, ev.CallOffered | ev.OutboundStarted):
            # Never a new call before the previous one's end (or withdrawal, or transfer).
            assert event.id_op not in current, (event, current[event.id_op])
            current[event.id_op] = (event.id_call, "offered")
        elif isinstance(event, ev.OfferWithdrawn):
            assert current.get(event.id_op) == (event.id_call, "offered"), event
            del current[event.id_op]
        elif isinstance(event, ev.CallAnswered):
            assert current.get(event.id_op) == (event.id_call, "offered"), event
            current[event.id_op] = (event.id_call, "talking")
        elif isinstance(event, ev.CallHeld | ev.CallResumed):
            assert current.get(event.id_op) == (event.id_call, "talking"), event
        elif isinstance(event, ev.CallTransferred):
            if self.operator not in (None, event.from_op):
                return  # the target's stream: it never showed them the transferring one's call
            assert current.get(event.from_op) == (event.id_call, "talking"), event
            del current[event.from_op]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(policies, min_size=2, max_size=2),
    st.lists(memberships, min_size=4, max_size=4),
    st.lists(operation, max_size=60),
)
def test_each_operator_sees_their_calls_in_the_order_of_their_lives(
    group_policies: list[GroupPolicy], members: list[dict[int, int]], ops: list[Any]
) -> None:
    """Within a step too: the end of a call comes before the offer of the next one, so a CRM
    never hears of a new call while it still thinks the operator is in the last one."""
    run = build(group_policies, members)
    for operator_id in OPERATORS:  # at work from the start: more calls get answered
        run.apply(("presence", operator_id, Presence.ONLINE))
    for op in ops:
        run.apply(op)
    run.finish()
    lives = CallLives()
    for event in run.log:
        lives.see(event)
    assert not lives.current
    # Each operator's own stream (the account's, filtered) tells them the end of every call
    # it showed them.
    for operator_id in OPERATORS:
        own = CallLives(operator_id)
        for event in run.log:
            if operator_id in operators_concerned(event.kind, event_json(event)):
                own.see(event)
        assert operator_id not in own.current, (operator_id, own.current)
