"""A call record's ``post_appel``: the wrap-up its last operator was given, from the core."""

from __future__ import annotations

from tests.routing_support import Desk
from voicemgmt.domain.routing.model import Side


def answered_call(desk: Desk, operator_id: int) -> None:
    desk.call("c1")
    desk.take(desk.core.answer(desk.now, operator_id, "c1"))
    desk.now += 30


def test_an_answered_call_records_its_group_s_wrap_up() -> None:
    desk = Desk()
    desk.group(1, wrap_up=12.5)
    desk.operator(7)
    answered_call(desk, 7)
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    assert desk.record("c1").post_appel == 12.5


def test_no_wrap_up_no_post_appel() -> None:
    desk = Desk()
    desk.group(1, wrap_up=0)
    desk.operator(7)
    answered_call(desk, 7)
    desk.take(desk.core.hang_up(desk.now, "c1", Side.OPERATOR))
    assert desk.record("c1").post_appel == 0.0


def test_an_abandoned_call_has_no_wrap_up() -> None:
    desk = Desk()
    desk.group(1, wrap_up=20)
    desk.operator(7, online=False)
    desk.call("c1")
    desk.now += 5
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    assert desk.record("c1").post_appel == 0.0


def test_a_transferred_call_records_the_wrap_up_of_the_operator_who_ended_it() -> None:
    desk = Desk()
    desk.group(1, wrap_up=10)
    desk.group(2, wrap_up=25)
    desk.operator(7, {1: 1})
    desk.operator(8, {2: 1})
    answered_call(desk, 7)
    desk.take(desk.core.transfer(desk.now, 7, "c1", to_group=2))
    desk.take(desk.core.answer(desk.now, 8, "c1"))
    desk.now += 10
    desk.take(desk.core.hang_up(desk.now, "c1", Side.CALLER))
    record = desk.record("c1")
    assert (record.id_op, record.id_group) == (8, 2)
    assert record.post_appel == 25  # the wrap-up of the group the call ended in
