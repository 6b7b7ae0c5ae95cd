"""The routing core (ACD), driven directly with a fake clock."""

from __future__ import annotations

import pytest

from tests.routing_support import Desk
from voicemgmt.domain.errors import InvalidCallAction, InvalidInput, NoSuchCall
from voicemgmt.domain.ivr import parse_ivr
from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.model import (
    Activity,
    GroupPolicy,
    Outcome,
    Presence,
    Side,
    Strategy,
    WhenEmpty,
)


@pytest.fixture
def desk() -> Desk:
    d = Desk()
    d.group(1, ring_timeout=15, wrap_up=5, max_wait=120)
    return d


# the basic path


def test_a_call_is_offered_answered_and_recorded(desk: Desk) -> None:
    desk.operator(7)
    desk.call("c1")
    assert desk.offered("c1") == [7]
    desk.now += 4
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.now += 60
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    record = desk.record("c1")
    assert record.outcome is Outcome.ANSWERED
    assert (record.id_op, record.ended_by, record.id_group) == (7, Side.CALLER, 1)
    assert (record.duration_ring, record.duration_wait, record.duration_comm) == (4, 4, 60)
    assert record.duration == 64
    assert desk.commands_of(ev.Bridge) == [ev.Bridge("c1", 7)]
    assert ev.HangUp("c1", "normal") in desk.commands


def test_the_offer_carries_the_screen_pop_fields(desk: Desk) -> None:
    desk.operator(7)
    desk.call("c1", caller="33612345678")
    (offer,) = desk.of(ev.CallOffered)
    assert (offer.id_call, offer.id_op, offer.id_group) == ("c1", 7, 1)
    assert (offer.caller_id_num, offer.e164_in, offer.wait) == ("33612345678", "33170200200", 0)


def test_wrap_up_follows_a_call_before_the_next_offer(desk: Desk) -> None:
    desk.operator(7)
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.take(desk.core.hang_up(desk.now, "c1", Side.OPERATOR))
    assert desk.core.operators[7].activity is Activity.WRAP_UP
    desk.call("c2")
    assert desk.offered("c2") == []
    desk.wait(5)
    assert desk.offered("c2") == [7]


def test_an_operator_in_a_call_shows_busy(desk: Desk) -> None:
    desk.operator(7)
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    last = desk.of(ev.OperatorStatusChanged)[-1]
    assert (last.status, last.presence, last.activity) == (
        Presence.BUSY,
        Presence.ONLINE,
        Activity.IN_CALL,
    )


# offers that are not answered


def test_an_unanswered_offer_goes_to_the_next_operator(desk: Desk) -> None:
    desk.operator(7)
    desk.operator(8)
    desk.call("c1")
    desk.wait(15)
    assert desk.offered("c1") == [7, 8]
    withdrawn = desk.of(ev.OfferWithdrawn)
    assert [(w.id_op, w.reason) for w in withdrawn] == [(7, "timeout")]


def test_a_declined_offer_goes_to_the_next_operator(desk: Desk) -> None:
    desk.operator(7)
    desk.operator(8)
    desk.call("c1")
    desk.take(desk.core.decline(desk.now, 7, "c1"))
    assert desk.offered("c1") == [7, 8]
    assert desk.core.operators[7].presence is Presence.ONLINE


def test_unanswered_offers_in_a_row_put_the_operator_on_break() -> None:
    desk = Desk()
    desk.group(1, ring_timeout=10, max_no_answer=2, max_wait=None)
    desk.operator(7)
    desk.call("c1")
    desk.wait(10)
    desk.wait(10)
    assert desk.offered("c1") == [7, 7]
    status = desk.of(ev.OperatorStatusChanged)[-1]
    assert (status.id_op, status.presence, status.reason) == (7, Presence.BREAK, "no_answer")
    desk.wait(60)
    assert desk.offered("c1") == [7, 7]


def test_an_answer_resets_the_unanswered_count() -> None:
    desk = Desk()
    desk.group(1, ring_timeout=10, max_no_answer=2, wrap_up=0)
    desk.operator(7)
    desk.call("c1")
    desk.wait(10)
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    desk.call("c2")
    desk.wait(10)
    assert desk.core.operators[7].presence is Presence.ONLINE


# strategies


def test_longest_idle_gets_the_call(desk: Desk) -> None:
    for operator_id in (7, 8, 9):
        desk.operator(operator_id)
    desk.call("c1")
    assert desk.offered("c1") == [7]


def test_round_robin_rotates() -> None:
    desk = Desk()
    desk.group(1, strategy=Strategy.ROUND_ROBIN, wrap_up=0)
    for operator_id in (7, 8, 9):
        desk.operator(operator_id)
    taken = []
    for n in range(4):
        desk.call(f"c{n}")
        operator = desk.offered(f"c{n}")[0]
        taken.append(operator)
        desk.take(desk.core.answer(desk.now, operator, f"c{n}"))
        desk.take(desk.core.hang_up(desk.now, f"c{n}", Side.CALLER))
    assert taken == [7, 8, 9, 7]


def test_fewest_calls_gets_the_call() -> None:
    desk = Desk()
    desk.group(1, strategy=Strategy.FEWEST_CALLS, wrap_up=0)
    desk.operator(7)
    desk.call("c0")
    desk.take(desk.core.answer(desk.now, 7, "c0"))
    desk.take(desk.core.hang_up(desk.now, "c0", Side.CALLER))
    desk.operator(8)
    desk.now += 100
    desk.call("c1")
    assert desk.offered("c1") == [8]


def test_ring_all_rings_everyone_and_the_first_answer_wins() -> None:
    desk = Desk()
    desk.group(1, strategy=Strategy.RING_ALL)
    for operator_id in (7, 8, 9):
        desk.operator(operator_id)
    desk.call("c1")
    assert sorted(desk.offered("c1")) == [7, 8, 9]
    desk.take(desk.core.answer(desk.now, 8, "c1"))
    withdrawn = {(w.id_op, w.reason) for w in desk.of(ev.OfferWithdrawn)}
    assert withdrawn == {(7, "taken_by_other"), (9, "taken_by_other")}
    assert {c.operator_id for c in desk.commands_of(ev.CancelRing)} == {7, 9}
    with pytest.raises(InvalidCallAction):
        desk.core.answer(desk.now, 7, "c1")


# priority tiers


def test_a_lower_tier_gets_calls_only_when_the_higher_is_busy(desk: Desk) -> None:
    desk.operator(7, {1: 1})
    desk.operator(8, {1: 2})
    desk.call("c1")
    desk.call("c2")
    assert (desk.offered("c1"), desk.offered("c2")) == ([7], [8])


def test_a_lower_tier_waits_for_the_tier_delay() -> None:
    desk = Desk()
    desk.group(1, tier_delay=30, ring_timeout=60)
    desk.operator(7, {1: 1})
    desk.operator(8, {1: 2})
    desk.take(desk.core.set_presence(desk.now, 7, Presence.BREAK))
    desk.call("c1")
    assert desk.offered("c1") == []
    desk.wait(29)
    assert desk.offered("c1") == []
    desk.wait(1)
    assert desk.offered("c1") == [8]


# waiting too long, nobody there


def test_max_wait_makes_a_missed_call() -> None:
    desk = Desk()
    desk.group(1, max_wait=60)
    desk.call("c1")
    desk.wait(60)
    record = desk.record("c1")
    assert (record.outcome, record.disconnect_reason, record.duration_wait) == (
        Outcome.MISSED,
        "max_wait",
        60,
    )
    assert ev.HangUp("c1", "max_wait") in desk.commands


def test_max_wait_overflows_to_another_group() -> None:
    desk = Desk()
    desk.group(1, max_wait=60, overflow_group=2)
    desk.group(2)
    desk.operator(9, {2: 1})
    desk.take(desk.core.set_presence(desk.now, 9, Presence.BREAK))
    desk.call("c1")
    desk.wait(60)
    assert desk.of(ev.CallOverflowed)[0].to_group == 2
    desk.take(desk.core.set_presence(desk.now, 9, Presence.ONLINE))
    desk.take(desk.core.answer(desk.now, 9, "c1"))
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    record = desk.record("c1")
    assert (record.outcome, record.id_group, record.overflowed_from) == (
        Outcome.ANSWERED,
        2,
        (1,),
    )


def test_overflow_to_a_number_forwards_and_ends_overflowed() -> None:
    desk = Desk()
    desk.group(1, max_wait=30, overflow_number="33999999999")
    desk.call("c1")
    desk.wait(30)
    assert desk.record("c1").outcome is Outcome.OVERFLOWED
    assert ev.Forward("c1", "33999999999") in desk.commands
    assert not desk.commands_of(ev.HangUp)


def test_overflow_never_loops() -> None:
    desk = Desk()
    desk.group(1, max_wait=10, overflow_group=2)
    desk.group(2, max_wait=10, overflow_group=1)
    desk.call("c1")
    desk.wait(30)
    record = desk.record("c1")
    assert (record.outcome, record.overflowed_from) == (Outcome.MISSED, (1,))


@pytest.mark.parametrize(
    ("when_empty", "outcome"), [(WhenEmpty.MISSED, Outcome.MISSED), (WhenEmpty.WAIT, None)]
)
def test_joining_an_empty_group(when_empty: WhenEmpty, outcome: Outcome | None) -> None:
    desk = Desk()
    desk.group(1, when_empty=when_empty)
    desk.operator(7, online=False)
    desk.call("c1")
    ended = desk.of(ev.CallEnded)
    assert (ended[0].record.outcome if ended else None) == outcome


def test_an_empty_group_can_overflow_at_once() -> None:
    desk = Desk()
    desk.group(1, when_empty=WhenEmpty.OVERFLOW, overflow_group=2)
    desk.group(2)
    desk.operator(9, {2: 1})
    desk.call("c1")
    assert desk.offered("c1") == [9]


# queue order


def test_calls_are_served_by_arrival(desk: Desk) -> None:
    for n in range(3):
        desk.call(f"c{n}")
        desk.now += 1
    desk.operator(7)
    desk.operator(8)
    assert (desk.offered("c0"), desk.offered("c1"), desk.offered("c2")) == ([7], [8], [])


# hanging up at every stage


def test_caller_hangs_up_in_the_queue(desk: Desk) -> None:
    desk.call("c1")
    desk.now += 12
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    record = desk.record("c1")
    assert (record.outcome, record.ended_by, record.duration_wait) == (
        Outcome.ABANDONED,
        Side.CALLER,
        12,
    )


def test_caller_hangs_up_while_an_operator_rings(desk: Desk) -> None:
    desk.operator(7)
    desk.call("c1")
    desk.now += 3
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    assert desk.record("c1").outcome is Outcome.ABANDONED
    assert desk.of(ev.OfferWithdrawn)[0].reason == "caller_hung_up"
    assert desk.core.operators[7].available
    desk.call("c2")
    assert desk.offered("c2") == [7]


def test_caller_hangs_up_on_hold(desk: Desk) -> None:
    desk.operator(7)
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.now += 10
    desk.take(desk.core.hold(desk.now, 7, "c1"))
    desk.now += 25
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    record = desk.record("c1")
    assert (record.outcome, record.duration_comm, record.duration_hold) == (
        Outcome.ANSWERED,
        10,
        25,
    )


def test_hold_and_unhold(desk: Desk) -> None:
    desk.operator(7)
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.take(desk.core.hold(desk.now, 7, "c1"))
    desk.now += 5
    desk.take(desk.core.unhold(desk.now, 7, "c1"))
    with pytest.raises(InvalidCallAction):
        desk.core.unhold(desk.now, 7, "c1")
    desk.now += 7
    desk.take(desk.core.hang_up(desk.now, "c1", Side.OPERATOR))
    record = desk.record("c1")
    assert (record.duration_hold, record.duration_comm, record.ended_by) == (5, 7, Side.OPERATOR)
    assert desk.commands_of(ev.Hold) == [ev.Hold("c1")]


# transfers


def test_blind_transfer_to_an_operator(desk: Desk) -> None:
    desk.operator(7)
    desk.operator(8)
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.take(desk.core.transfer(desk.now, 7, "c1", to_operator=8))
    assert desk.offered("c1") == [7, 8]
    assert desk.core.operators[7].activity is Activity.WRAP_UP
    desk.take(desk.core.answer(desk.now, 8, "c1"))
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    assert (desk.record("c1").outcome, desk.record("c1").id_op) == (Outcome.ANSWERED, 8)


def test_a_transfer_nobody_takes_goes_back_to_the_group_first_in_line(desk: Desk) -> None:
    desk.operator(7)
    desk.operator(8)
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.take(desk.core.transfer(desk.now, 7, "c1", to_operator=8))
    desk.take(desk.core.set_presence(desk.now, 7, Presence.BREAK))
    desk.now += 1
    desk.call("c2")  # waits: 7 is on break, 8 rings for the transfer
    desk.wait(15)  # 8 does not answer the transfer
    assert desk.offered("c1") == [7, 8, 8]
    assert desk.offered("c2") == []


def test_blind_transfer_to_a_group() -> None:
    desk = Desk()
    desk.group(1)
    desk.group(2)
    desk.operator(7, {1: 1})
    desk.operator(9, {2: 1})
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.take(desk.core.transfer(desk.now, 7, "c1", to_group=2))
    assert desk.offered("c1") == [7, 9]


def test_transfer_to_an_unavailable_operator_is_refused(desk: Desk) -> None:
    desk.operator(7)
    desk.operator(8, online=False)
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    with pytest.raises(InvalidCallAction):
        desk.core.transfer(desk.now, 7, "c1", to_operator=8)
    with pytest.raises(InvalidInput):
        desk.core.transfer(desk.now, 7, "c1")


# status changes


def test_going_on_break_while_ringing_passes_the_call_on(desk: Desk) -> None:
    desk.operator(7)
    desk.operator(8)
    desk.call("c1")
    desk.take(desk.core.set_presence(desk.now, 7, Presence.BREAK, "supervisor"))
    assert desk.offered("c1") == [7, 8]


def test_coming_online_takes_the_oldest_waiting_call(desk: Desk) -> None:
    desk.call("c1")
    desk.now += 1
    desk.call("c2")
    desk.operator(7)
    assert desk.offered("c1") == [7]


# click-to-call


def test_click_to_call_rings_the_operator_then_the_customer(desk: Desk) -> None:
    desk.operator(7)
    desk.take(desk.core.outbound(desk.now, "o1", 7, "33618220000", "33170200200", "T-42"))
    assert desk.commands_of(ev.RingOperator) == [ev.RingOperator("o1", 7, shown="33618220000")]
    desk.take(desk.core.answer(desk.now, 7, "o1"))
    assert desk.commands_of(ev.DialCustomer) == [
        ev.DialCustomer("o1", "33618220000", "33170200200")
    ]
    desk.now += 6
    desk.take(desk.core.customer_answered(desk.now, "o1"))
    desk.now += 30
    desk.take(desk.core.hang_up(desk.now, "o1", Side.CALLER))
    record = desk.record("o1")
    assert (record.direction, record.outcome, record.ticket_id, record.duration_comm) == (
        "out",
        Outcome.ANSWERED,
        "T-42",
        30,
    )


def test_click_to_call_to_a_busy_customer_fails(desk: Desk) -> None:
    desk.operator(7)
    desk.take(desk.core.outbound(desk.now, "o1", 7, "33618220000", "33170200200"))
    desk.take(desk.core.answer(desk.now, 7, "o1"))
    desk.take(desk.core.hang_up(desk.now, "o1", Side.SYSTEM, "busy"))
    record = desk.record("o1")
    assert (record.outcome, record.disconnect_reason) == (Outcome.FAILED, "busy")
    assert desk.core.operators[7].available


def test_click_to_call_the_operator_never_picks_up(desk: Desk) -> None:
    desk.operator(7)
    desk.take(desk.core.outbound(desk.now, "o1", 7, "33618220000", "33170200200"))
    desk.wait(60)
    record = desk.record("o1")
    assert (record.outcome, record.id_op) == (Outcome.FAILED, 7)  # the call they placed


def test_an_operator_on_a_call_cannot_click_to_call(desk: Desk) -> None:
    desk.operator(7)
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    with pytest.raises(InvalidCallAction):
        desk.core.outbound(desk.now, "o1", 7, "33618220000", "33170200200")


# bad inputs


def test_unknown_calls_and_wrong_operators_are_refused(desk: Desk) -> None:
    desk.operator(7)
    desk.operator(8)
    desk.call("c1")
    with pytest.raises(NoSuchCall):
        desk.core.answer(desk.now, 7, "nope")
    with pytest.raises(InvalidCallAction):
        desk.core.answer(desk.now, 8, "c1")
    with pytest.raises(InvalidCallAction):
        desk.core.hold(desk.now, 7, "c1")
    with pytest.raises(InvalidCallAction):
        desk.core.inbound(desk.now, "c1", "1", "2", 1)


def test_group_settings_become_a_policy() -> None:
    policy = GroupPolicy.from_settings(
        4, {"strategy": "ring_all", "ring_timeout": 12, "when_empty": "missed", "color": "red"}
    )
    assert (policy.strategy, policy.ring_timeout, policy.when_empty) == (
        Strategy.RING_ALL,
        12,
        WhenEmpty.MISSED,
    )


# the IVR


ORDER_IVR = {
    "start": "welcome",
    "steps": {
        "welcome": {"type": "play", "prompt": {"text": "Welcome"}, "next": {"step": "menu"}},
        "menu": {
            "type": "menu",
            "prompt": {"audio": "menu.wav"},
            "options": {"1": {"step": "order"}, "0": {"hangup": True}},
        },
        "order": {
            "type": "collect",
            "prompt": {"text": "Your order number, then hash"},
            "variable": "order_number",
            "min_length": 6,
            "max_length": 10,
            "next": {"group": 1},
        },
    },
}


def ivr_call(desk: Desk, call_id: str = "c1") -> None:
    desk.take(
        desk.core.inbound(desk.now, call_id, "33612345678", "33170200200", 1, parse_ivr(ORDER_IVR))
    )


def test_a_call_through_the_ivr_reaches_the_queue_with_its_variables(desk: Desk) -> None:
    desk.operator(7)
    ivr_call(desk)
    assert desk.commands_of(ev.PlayPrompt)[0] == ev.PlayPrompt("c1", {"text": "Welcome"}, False)
    desk.now += 2
    desk.take(desk.core.prompt_finished(desk.now, "c1"))
    desk.take(desk.core.digit(desk.now, "c1", "1"))
    for digit in "123456#":
        desk.now += 0.5
        desk.take(desk.core.digit(desk.now, "c1", digit))
    (offer,) = desk.of(ev.CallOffered)
    assert offer.variables == {"order_number": "123456"}
    assert desk.of(ev.IvrVariableCollected) == [
        ev.IvrVariableCollected("c1", "order_number", "123456")
    ]
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    record = desk.record("c1")
    assert (record.variables, record.duration_svi) == ({"order_number": "123456"}, 5.5)


def test_hanging_up_in_the_ivr_is_abandoned(desk: Desk) -> None:
    ivr_call(desk)
    desk.now += 3
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    record = desk.record("c1")
    assert (record.outcome, record.duration_svi, record.duration_wait) == (
        Outcome.ABANDONED,
        3,
        0,
    )
    assert desk.core.next_wakeup is None


def test_the_ivr_can_end_the_call(desk: Desk) -> None:
    ivr_call(desk)
    desk.take(desk.core.prompt_finished(desk.now, "c1"))
    desk.take(desk.core.digit(desk.now, "c1", "0"))
    record = desk.record("c1")
    assert (record.outcome, record.disconnect_reason) == (Outcome.MISSED, "ivr_hangup")
    assert ev.HangUp("c1", "ivr_hangup") in desk.commands


def test_a_silent_caller_leaves_the_ivr_after_its_timeouts(desk: Desk) -> None:
    ivr_call(desk)
    desk.take(desk.core.prompt_finished(desk.now, "c1"))
    desk.wait(400)
    record = desk.record("c1")
    assert record.outcome is Outcome.MISSED
    assert record.disconnect_reason in ("ivr_failure", "ivr_timeout")


def test_going_offline_while_ones_own_click_to_call_rings_keeps_the_call(desk: Desk) -> None:
    desk.operator(7)
    desk.take(desk.core.outbound(desk.now, "o1", 7, "33618220000", "33170200200"))
    desk.take(desk.core.set_presence(desk.now, 7, Presence.OFFLINE))
    desk.take(desk.core.answer(desk.now, 7, "o1"))
    assert desk.commands_of(ev.DialCustomer) == [
        ev.DialCustomer("o1", "33618220000", "33170200200")
    ]


def test_the_platform_can_end_a_call_itself(desk: Desk) -> None:
    desk.operator(7)
    desk.call("c1")
    desk.call("c2")
    desk.take(desk.core.answer(desk.now, 7, "c1"))
    desk.take(desk.core.abort(desk.now, "c1", "platform_shutdown"))
    desk.take(desk.core.abort(desk.now, "c2", "platform_shutdown"))
    assert (desk.record("c1").outcome, desk.record("c2").outcome) == (
        Outcome.ANSWERED,
        Outcome.FAILED,
    )
    assert desk.record("c2").ended_by is Side.SYSTEM
    assert not desk.core.calls
