"""The routing core's state saved and loaded whole (``export_state``, ``restore``), and the
offers a node taking an account over decides again (``re_decide_offers``)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.routing_support import Desk
from tests.test_routing_properties import (
    IVR,
    OPERATORS,
    CallLives,
    Run,
    build,
    memberships,
    operation,
    policies,
)
from voicemgmt.domain.errors import InvalidCallAction, InvalidSavedState
from voicemgmt.domain.ivr import parse_ivr
from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.core import RoutingCore, Step
from voicemgmt.domain.routing.durable import call_of, trace_of
from voicemgmt.domain.routing.full_trace import call_from_full_trace, full_trace_of
from voicemgmt.domain.routing.model import (
    Activity,
    CallState,
    GroupPolicy,
    Outcome,
    Presence,
    Side,
    Strategy,
)

SCRIPTS = {"331": IVR}  # the number the property tests' calls dial


def json_round_trip(value: Any) -> Any:
    return json.loads(json.dumps(value, allow_nan=False))


@dataclass
class Recorded(Run):
    """A property-test run that keeps each step whole (commands too)."""

    steps: list[Step] = field(default_factory=list)

    def take(self, step: Step) -> None:
        self.steps.append(step)
        super().take(step)

    def apply(self, op: tuple[Any, ...]) -> None:
        if op[0] == "re_decide":
            self.take(self.core.re_decide_offers(self.now))
        else:
            super().apply(op)


def recorded(group_policies: list[GroupPolicy], members: list[dict[int, int]]) -> Recorded:
    run = build(group_policies, members)
    return Recorded(core=run.core)


def export(run: Run) -> Any:
    return json_round_trip(run.core.export_state(run.now))


def restored_from(
    original: Recorded, configuration: Any, steps: list[Step] | None = None
) -> Recorded:
    """A run on a freshly configured core, loaded from ``original``'s state through JSON."""
    group_policies, members = configuration
    saved = export(original)
    twin = recorded(group_policies, members)
    twin.steps = steps if steps is not None else []
    assert twin.core.restore(original.now, saved, scripts=SCRIPTS) == Step()
    # The run's own bookkeeping (call names, what each operator was last shown) goes along.
    twin.now, twin.created = original.now, list(original.created)
    twin.presence, twin.activity = dict(original.presence), dict(original.activity)
    twin.before_ringing = dict(original.before_ringing)
    return twin


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(policies, min_size=2, max_size=2),
    st.lists(memberships, min_size=4, max_size=4),
    st.lists(operation, min_size=1, max_size=60),
    st.data(),
    st.booleans(),
)
def test_a_restored_core_decides_exactly_as_the_original(
    group_policies: list[GroupPolicy],
    members: list[dict[int, int]],
    ops: list[Any],
    data: st.DataObject,
    at_work: bool,
) -> None:
    """Saved at any moments, through JSON, into a core configured afresh each time: the
    same inputs then give the same steps, to the last event, record and command."""
    every = set(range(len(ops)))
    hops = data.draw(st.just(every) | st.sets(st.sampled_from(sorted(every))), label="hops")
    original = recorded(group_policies, members)
    if at_work:  # more calls get offered and answered
        for operator_id in OPERATORS:
            original.apply(("presence", operator_id, Presence.ONLINE))
    hopping = restored_from(original, (group_policies, members))
    original.steps.clear()
    for index, op in enumerate(ops):
        if index in hops:
            hopping = restored_from(hopping, (group_policies, members), hopping.steps)
            assert hopping.core.next_wakeup == original.core.next_wakeup
            assert export(hopping) == export(original)
        original.apply(op)
        hopping.apply(op)
    original.finish()
    hopping.finish()
    assert hopping.steps == original.steps  # every event (records included) and command


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(policies, min_size=2, max_size=2),
    st.lists(memberships, min_size=4, max_size=4),
    st.lists(st.one_of(operation, st.just(("re_decide",))), max_size=60),
)
def test_the_rules_hold_when_offers_are_decided_again(
    group_policies: list[GroupPolicy], members: list[dict[int, int]], ops: list[Any]
) -> None:
    """Re-deciding at any moment: each call still ends once, nobody is offered a call while
    not available, each operator's stream still follows their calls' lives."""
    run = recorded(group_policies, members)
    for operator_id in OPERATORS:
        run.apply(("presence", operator_id, Presence.ONLINE))
    for op in ops:
        run.apply(op)
    run.finish()
    ended = [e.record.id_call for e in run.log if isinstance(e, ev.CallEnded)]
    assert sorted(ended) == sorted(run.created)
    lives = CallLives()
    for event in run.log:
        lives.see(event)
    assert not lives.current
    assert not run.core.calls
    assert run.core.next_wakeup is None


# --- unit: what a restore does --------------------------------------------------------------

NUMBER = "33170200200"  # the number Desk.call dials
MENU_IVR: dict[str, Any] = {
    "start": "order",
    "steps": {
        "order": {
            "type": "collect",
            "variable": "order_number",
            "min_length": 2,
            "max_length": 6,
            "next": {"step": "confirm"},
        },
        "confirm": {"type": "menu", "options": {"1": {"group": 2}}, "on_failure": {"group": 2}},
    },
}


def restore_into(
    desk: Desk,
    groups: dict[int, dict[str, Any]],
    members: dict[int, dict[int, int]],
    scripts: dict[str, Any] | None = None,
) -> tuple[Desk, Step]:
    """``desk``'s state, through JSON, into a desk configured with ``groups`` and ``members``
    (the directory as the node taking over reads it)."""
    saved = json_round_trip(desk.core.export_state(desk.now))
    twin = Desk(now=desk.now)
    for group_id, policy in groups.items():
        twin.group(group_id, **policy)
    for operator_id, groups_of in members.items():
        twin.core.configure_operator(operator_id, groups_of)
    step = twin.take(twin.core.restore(twin.now, saved, scripts=scripts or {}))
    return twin, step


def test_equal_deadlines_fire_in_the_original_order_after_a_restore() -> None:
    """Ring-all: three offers time out at the same instant, withdrawn in their order."""
    desk = Desk()
    policy = {"strategy": Strategy.RING_ALL, "ring_timeout": 10}
    desk.group(1, **policy)
    for operator_id in (9, 7, 8):
        desk.operator(operator_id)
    desk.call("c1")
    twin, _ = restore_into(desk, {1: policy}, {9: {1: 1}, 7: {1: 1}, 8: {1: 1}})
    assert twin.core.next_wakeup == desk.core.next_wakeup
    assert twin.wait(10) == desk.wait(10)
    withdrawn = [e.id_op for e in desk.of(ev.OfferWithdrawn)]
    assert withdrawn[:3] == [7, 8, 9]


def test_a_queued_call_keeps_its_place_and_wait_time() -> None:
    desk = Desk()
    desk.group(1, wrap_up=0)
    desk.operator(7)
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.call("c2")
    desk.now += 30
    desk.call("c3")
    desk.now += 30
    twin, step = restore_into(desk, {1: {"wrap_up": 0}}, {7: {1: 1}})
    assert step == Step()
    twin.now += 5
    twin.take(twin.core.hang_up(twin.now, "c1", Side.CALLER))
    assert twin.offered("c2") == [7]  # c2 came first
    twin.take(twin.core.answer(twin.now, 7, "c2"))
    twin.take(twin.core.hang_up(twin.now, "c2", Side.CALLER))
    assert twin.record("c2").duration_wait == 65.0  # counted from its arrival on the old node
    assert twin.record("c1").outcome is Outcome.ANSWERED
    assert twin.offered("c3") == [7]


def test_a_call_whose_ivr_step_is_gone_goes_to_its_numbers_group() -> None:
    desk = Desk()
    desk.group(1)
    desk.group(2)
    desk.operator(7, {1: 1})
    script = parse_ivr(MENU_IVR)
    desk.take(desk.core.inbound(desk.now, "c1", "336", NUMBER, 1, script))
    for digit in "42#":
        desk.take(desk.core.digit(desk.now, "c1", digit))
    assert desk.core.calls["c1"].ivr is not None
    edited = {**MENU_IVR, "steps": {"order": MENU_IVR["steps"]["order"]}}
    edited["steps"]["order"] = {**edited["steps"]["order"], "next": {"group": 2}}
    _, step = restore_into(desk, {1: {}, 2: {}}, {7: {1: 1}}, {NUMBER: parse_ivr(edited)})
    # The session stood at "confirm", which is gone: its number's group (1) takes the call.
    assert [type(e) for e in step.events][:2] == [ev.IvrVariableCollected, ev.CallQueued]
    assert step.events[1] == ev.CallQueued("c1", 1, {"order_number": "42"})
    # With no IVR on the number any more, the same.
    _, step = restore_into(desk, {1: {}, 2: {}}, {7: {1: 1}}, {})
    assert step.events[1] == ev.CallQueued("c1", 1, {"order_number": "42"})


def test_a_full_trace_carries_the_ivr_session_and_is_still_a_trace() -> None:
    desk = Desk()
    desk.group(1)
    script = parse_ivr(MENU_IVR)
    desk.take(desk.core.inbound(desk.now, "c1", "336", NUMBER, 1, script))
    desk.take(desk.core.digit(desk.now, "c1", "4"))
    call = desk.core.calls["c1"]
    trace = json_round_trip(full_trace_of(call))
    assert call.ivr is not None
    assert trace["ivr"] == json_round_trip(call.ivr.save())
    loaded = call_from_full_trace(trace, {NUMBER: script})
    assert loaded.ivr_lost is None
    assert full_trace_of(loaded.call) == full_trace_of(call)
    assert trace_of(call_of(trace)) == trace_of(call)  # the crash-recovery reader reads it too
    assert call_from_full_trace(trace, {}).ivr_lost == {}  # the number lost its IVR


def test_a_call_in_the_ivr_goes_on_over_the_same_script() -> None:
    desk = Desk()
    desk.group(1)
    desk.group(2)
    script = parse_ivr(MENU_IVR)
    desk.take(desk.core.inbound(desk.now, "c1", "336", NUMBER, 1, script))
    desk.take(desk.core.digit(desk.now, "c1", "4"))
    twin, step = restore_into(desk, {1: {}, 2: {}}, {}, {NUMBER: script})
    assert step == Step()
    for digit in "2#1":
        twin.take(twin.core.digit(twin.now, "c1", digit))
    assert twin.of(ev.CallQueued) == [ev.CallQueued("c1", 2, {"order_number": "42"})]


def test_an_ivr_edited_since_keeps_its_new_deadlines() -> None:
    desk = Desk()
    desk.group(1)
    slow = {**MENU_IVR, "steps": {**MENU_IVR["steps"]}}
    slow["steps"]["order"] = {**MENU_IVR["steps"]["order"], "timeout": 60}
    desk.take(desk.core.inbound(desk.now, "c1", "336", NUMBER, 1, parse_ivr(slow)))
    assert desk.core.next_wakeup == desk.now + 60
    shorter = parse_ivr({**slow, "max_duration": 10})  # callers now stay 10 s at most
    twin, step = restore_into(desk, {1: {}}, {}, {NUMBER: shorter})
    assert step == Step()
    assert twin.core.next_wakeup == desk.now + 10
    twin.wait(10)
    assert twin.record("c1").disconnect_reason == "ivr_timeout"


def test_calls_waiting_in_a_deleted_group_end_missed_and_connected_ones_go_on() -> None:
    desk = Desk()
    desk.group(1, wrap_up=5)
    desk.group(2, wrap_up=5)
    desk.operator(7, {2: 1})
    desk.operator(8, {2: 1})
    desk.operator(9, {1: 1})
    desk.call("talking", 2)
    desk.take(desk.core.answer(desk.now, 7, "talking"))
    desk.call("ringing", 2)
    assert desk.offered("ringing") == [8]
    desk.call("queued", 2)
    twin, step = restore_into(desk, {1: {"wrap_up": 5}}, {7: {}, 8: {}, 9: {1: 1}})
    ended = {e.record.id_call: e.record for e in twin.of(ev.CallEnded, step.events)}
    assert set(ended) == {"ringing", "queued"}
    for record in ended.values():
        assert (record.outcome, record.disconnect_reason) == (Outcome.MISSED, "group_gone")
    assert ev.OfferWithdrawn("ringing", 8, "ended") in step.events
    assert ev.CancelRing("ringing", 8) in step.commands
    assert twin.core.operators[8].activity is Activity.IDLE
    # The connected call stays; it cannot be offered to one operator (no ring timeout) ...
    with pytest.raises(InvalidCallAction):
        twin.core.transfer(twin.now, 7, "talking", to_operator=9)
    twin.now += 60
    twin.take(twin.core.hang_up(twin.now, "talking", Side.CALLER))
    record = twin.record("talking")
    assert (record.outcome, record.id_group, record.id_op) == (Outcome.ANSWERED, 2, 7)
    assert record.post_appel == GroupPolicy(0).wrap_up  # the default: its group is gone
    assert twin.core.operators[7].activity is Activity.WRAP_UP


def test_a_deleted_operator_goes_offline_and_their_offer_goes_to_another() -> None:
    desk = Desk()
    desk.group(1)
    desk.operator(7)
    desk.operator(8)
    desk.call("c1")
    assert desk.offered("c1") == [7]
    twin, step = restore_into(desk, {1: {}}, {8: {1: 1}})
    assert step.events[0] == ev.OperatorStatusChanged(
        7, Presence.OFFLINE, Presence.OFFLINE, Activity.RINGING, "deleted"
    )
    assert ev.OfferWithdrawn("c1", 7, "status_changed") in step.events
    assert twin.offered("c1") == [8]
    assert twin.core.operators[7].groups == {}


def test_restore_loads_only_into_a_fresh_core() -> None:
    desk = Desk()
    desk.group(1)
    desk.operator(7)
    with pytest.raises(InvalidCallAction):
        desk.core.restore(desk.now, desk.core.export_state(desk.now), scripts={})


# --- unit: re-deciding the offers -------------------------------------------------------------


def test_re_deciding_withdraws_every_offer_and_offers_again() -> None:
    desk = Desk()
    desk.group(1, ring_timeout=15, max_no_answer=1)
    desk.operator(7)
    desk.operator(8)
    desk.call("c1")
    desk.call("c2")
    desk.call("c3")
    desk.now += 10
    step = desk.take(desk.core.re_decide_offers(desk.now))
    withdrawn = [(e.id_call, e.id_op, e.reason) for e in desk.of(ev.OfferWithdrawn, step.events)]
    assert withdrawn == [("c1", 7, "taken_over"), ("c2", 8, "taken_over")]
    cancelled = [c for c in step.commands if isinstance(c, ev.CancelRing)]
    assert cancelled == [ev.CancelRing("c1", 7), ev.CancelRing("c2", 8)]
    # Offered again in their order, to the same operators (nobody worked meanwhile) ...
    offers = [(e.id_call, e.id_op, e.wait) for e in desk.of(ev.CallOffered, step.events)]
    assert offers == [("c1", 7, 10), ("c2", 8, 10)]
    # ... not counted as unanswered (max_no_answer 1 would put them on break) ...
    assert {o.presence for o in desk.core.operators.values()} == {Presence.ONLINE}
    assert desk.core.calls["c3"].state is CallState.QUEUED
    # ... each with a full ring timeout from now.
    assert desk.core.next_wakeup == desk.now + 15


def test_re_deciding_rings_a_transfer_target_again() -> None:
    desk = Desk()
    desk.group(1)
    desk.operator(7)
    desk.operator(8)
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.take(desk.core.transfer(desk.now, 7, "c1", to_operator=8))
    step = desk.take(desk.core.re_decide_offers(desk.now))
    assert ev.OfferWithdrawn("c1", 8, "taken_over") in step.events
    assert [e.id_op for e in desk.of(ev.CallOffered, step.events)] == [8]


def test_re_deciding_leaves_a_click_to_call_alone() -> None:
    desk = Desk()
    desk.group(1)
    desk.operator(7)
    desk.take(desk.core.outbound(desk.now, "o1", 7, "33612345678", NUMBER))
    assert desk.core.re_decide_offers(desk.now) == Step()


# --- unit: saved state that cannot be loaded ----------------------------------------------------

CONFIGURATION: tuple[dict[int, dict[str, Any]], dict[int, dict[int, int]]] = (
    {1: {"wrap_up": 5, "max_wait": 300}, 2: {}},
    {7: {1: 1}, 8: {1: 1}, 9: {2: 1}},
)


def busy_desk() -> Desk:
    """Calls in every state: talking, ringing, queued, in the IVR, a click-to-call."""
    desk = Desk()
    groups, members = CONFIGURATION
    for group_id, policy in groups.items():
        desk.group(group_id, **policy)
    for operator_id, groups_of in members.items():
        desk.operator(operator_id, groups_of)
    desk.call("talking")
    desk.take(desk.core.answer(desk.now, 7, "talking"))
    desk.call("ringing")
    desk.call("queued")
    desk.take(desk.core.inbound(desk.now, "menu", "336", NUMBER, 1, parse_ivr(MENU_IVR)))
    desk.take(desk.core.digit(desk.now, "menu", "4"))
    desk.take(desk.core.outbound(desk.now, "out", 9, "33612345678", NUMBER))
    return desk


def fresh_core() -> RoutingCore:
    core = RoutingCore()
    groups, members = CONFIGURATION
    for group_id, policy in groups.items():
        core.configure_group(GroupPolicy(group_id, **policy))
    for operator_id, groups_of in members.items():
        core.configure_operator(operator_id, groups_of)
    return core


BUSY = json_round_trip(busy_desk().core.export_state(2000.0))


def at(saved: Any, *path: Any) -> Any:
    for key in path:
        saved = saved[key]
    return saved


def call_index(call_id: str) -> int:
    return next(i for i, c in enumerate(BUSY["calls"]) if c["id"] == call_id)


def set_(value: Any, *path: Any) -> Callable[[Any], None]:
    def change(saved: Any) -> None:
        at(saved, *path[:-1])[path[-1]] = value

    return change


def drop(*path: Any) -> Callable[[Any], None]:
    def change(saved: Any) -> None:
        del at(saved, *path[:-1])[path[-1]]

    return change


def duplicate(*path: Any) -> Callable[[Any], None]:
    def change(saved: Any) -> None:
        items = at(saved, *path)
        items.append(copy.deepcopy(items[0]))

    return change


TALKING, RINGING, MENU = call_index("talking"), call_index("ringing"), call_index("menu")
HOSTILE_STATES: dict[str, Callable[[Any], None]] = {
    "another format": set_(2, "format"),
    "no format": drop("format"),
    "an unknown field": set_([], "accounts"),
    "a negative export time": set_(-1, "exported_at"),
    "sequence zero": set_(0, "sequence"),
    "sequence as text": set_("12", "sequence"),
    "sequence huge": set_(2**60, "sequence"),
    "calls not a list": set_({}, "calls"),
    "a call without its state": drop("calls", TALKING, "state"),
    "a live call that ended": set_("ended", "calls", TALKING, "state"),
    "a call of an unknown state": set_("parked", "calls", TALKING, "state"),
    "a call's time not a number": set_(float("nan"), "calls", TALKING, "created_at"),
    "a call's duration negative": set_(-3.0, "calls", TALKING, "talk_seconds"),
    "a call's time huge": set_(1e300, "calls", TALKING, "talk_started"),
    "a call's direction sideways": set_("sideways", "calls", TALKING, "direction"),
    "a call's priority a boolean": set_(True, "calls", TALKING, "priority"),
    "a call's variables of numbers": set_({"a": 1}, "calls", TALKING, "variables"),
    "a call of another trace format": set_(7, "calls", TALKING, "format"),
    "a call ended with an outcome": set_("answered", "calls", TALKING, "outcome"),
    "a call given twice": duplicate("calls"),
    "a call's arrival past the sequence": set_(2**40, "calls", RINGING, "arrival"),
    "ringing ids as text": set_(["8"], "calls", RINGING, "ringing"),
    "ringing an operator twice": set_([8, 8], "calls", RINGING, "ringing"),
    "ringing an operator not ringing": set_([7], "calls", RINGING, "ringing"),
    "ringing nobody": set_([], "calls", RINGING, "ringing"),
    "a call's operator unknown": set_(99, "calls", TALKING, "operator_id"),
    "a transfer to an unknown operator": set_(99, "calls", TALKING, "transfer_to"),
    "a call in the IVR without its session": set_(None, "calls", MENU, "ivr"),
    "a session of another format": set_(9, "calls", MENU, "ivr", "format"),
    "a session with letters typed": set_("abc", "calls", MENU, "ivr", "typed"),
    "a call in the IVR without a group": set_(None, "calls", MENU, "group_id"),
    "an operator's call unknown": set_("nobody", "operators", 0, "call_id"),
    "an operator in a call without one": set_(None, "operators", 0, "call_id"),
    "an operator idle with a call": set_("idle", "operators", 0, "activity"),
    "an operator of an unknown presence": set_("asleep", "operators", 0, "presence"),
    "an operator's count negative": set_(-1, "operators", 0, "calls_taken"),
    "an operator's last offer past the sequence": set_(2**50, "operators", 0, "last_offer"),
    "an operator given twice": duplicate("operators"),
    "an operator with an unknown field": set_(1, "operators", 0, "mood"),
    "an operator not an object": set_([7], "operators", 0),
    "a queue given twice": duplicate("queues"),
    "a queue entry too short": set_([[0, 1]], "queues", 0, "heap"),
    "a queue entry's priority positive": set_([[5, 1, "queued"]], "queues", 0, "heap"),
    "a queue out of heap order": set_([[0, 4, "x"], [0, 1, "y"]], "queues", 0, "heap"),
    "a queued call in no queue": set_([], "queues", 0, "heap"),
    "a timer of an unknown kind": set_([1.0, "alarm", "talking", 0], "timers", 0),
    "a timer too short": set_([1.0, "ring"], "timers", 0),
    "a timer for an unknown operator": set_([1.0, "wrap_up", "", 99], "timers", 0),
    "a timer set twice": duplicate("timers"),
    "timers out of firing order": set_([1e9, "tier", "queued", 0], "timers", 0),
}


@pytest.mark.parametrize("change", HOSTILE_STATES.values(), ids=HOSTILE_STATES.keys())
def test_saved_state_that_cannot_be_loaded_is_refused_and_changes_nothing(
    change: Callable[[Any], None],
) -> None:
    bad = copy.deepcopy(BUSY)
    change(bad)
    core = fresh_core()
    before = core.export_state(2000.0)
    with pytest.raises(InvalidSavedState) as raised:
        core.restore(2000.0, bad, scripts={NUMBER: parse_ivr(MENU_IVR)})
    assert raised.value.error_id == "invalid_saved_state"
    assert raised.value.details["field"]
    assert core.export_state(2000.0) == before
    assert core.next_wakeup is None
    # Nothing half loaded: the good state still loads.
    core.restore(2000.0, copy.deepcopy(BUSY), scripts={NUMBER: parse_ivr(MENU_IVR)})
    assert json_round_trip(core.export_state(2000.0)) == BUSY


@pytest.mark.parametrize("saved", [None, [], "state", 1, {}, {"format": 1}], ids=repr)
def test_saved_state_that_is_no_state_is_refused(saved: object) -> None:
    with pytest.raises(InvalidSavedState):
        fresh_core().restore(0.0, saved, scripts={})


def paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*path, index))
    return found


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.sampled_from(["talking", "ringing", "queued", "menu", "out", "ring", "wrap_up"])
    | st.sampled_from(["online", "offline", "in_call", "ringing", "ivr", "connected", "held"])
    | st.sampled_from([0, 1, 2, 7, 8, 9, 99, 0.0, 1000.0, 1010.0, 2000.0, []]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
BUSY_PATHS = paths(BUSY)[1:]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(BUSY_PATHS), json_values), min_size=1, max_size=3))
def test_damaged_state_is_refused_or_loads_into_a_core_that_keeps_working(
    damage: list[tuple[tuple[Any, ...], Any]],
) -> None:
    """Whatever the damage: InvalidSavedState and nothing changed, or a core that goes on
    deciding (every call can still end, every timer fire) without any other exception."""
    bad = copy.deepcopy(BUSY)
    for path, value in damage:
        try:
            set_(value, *path)(bad)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed that place
    core = fresh_core()
    before = core.export_state(2000.0)
    try:
        core.restore(2000.0, bad, scripts={NUMBER: parse_ivr(MENU_IVR)})
    except InvalidSavedState:
        assert core.export_state(2000.0) == before
        return
    now = 2000.0
    for call_id in sorted(core.calls):
        core.hang_up(now, call_id, Side.CALLER)
    while (wake := core.next_wakeup) is not None:
        now = max(now, wake)
        core.tick(now)
    assert not core.calls
