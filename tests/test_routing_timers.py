"""The routing core's timer queue: deadlines fire in order, cancelled ones never."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from voicemgmt.domain.routing.timers import TimerKey, TimerQueue


def fire_all(timers: TimerQueue, now: float) -> list[TimerKey]:
    fired = []
    while (key := timers.pop_due(now)) is not None:
        fired.append(key)
    return fired


def test_timers_fire_by_deadline_whatever_their_delay() -> None:
    timers = TimerQueue()
    timers.set_in(0.0, 15.0, ("ring", "c1", 7))
    timers.set_in(1.0, 5.0, ("wrap_up", "", 8))
    timers.set_at(10.0, ("ivr", "c2", 0))
    timers.set_in(2.0, 15.0, ("ring", "c3", 9))
    assert timers.next_deadline == 6.0
    assert fire_all(timers, 20.0) == [
        ("wrap_up", "", 8),
        ("ivr", "c2", 0),
        ("ring", "c1", 7),
        ("ring", "c3", 9),
    ]
    assert timers.next_deadline is None


def test_a_timer_fires_only_when_due() -> None:
    timers = TimerQueue()
    timers.set_in(0.0, 10.0, ("max_wait", "c1", 0))
    assert timers.pop_due(9.9) is None
    assert timers.pop_due(10.0) == ("max_wait", "c1", 0)
    assert timers.pop_due(10.0) is None


def test_a_cancelled_timer_never_fires() -> None:
    timers = TimerQueue()
    timers.set_in(0.0, 5.0, ("ring", "c1", 1))
    timers.set_at(3.0, ("tier", "c1", 0))
    timers.cancel(("ring", "c1", 1))
    timers.cancel(("tier", "c1", 0))
    timers.cancel(("never", "set", 0))
    assert timers.next_deadline is None
    assert fire_all(timers, 100.0) == []
    assert len(timers) == 0


def test_setting_a_timer_again_replaces_its_deadline() -> None:
    timers = TimerQueue()
    timers.set_in(0.0, 5.0, ("ring", "c1", 1))
    timers.set_in(4.0, 5.0, ("ring", "c1", 1))
    assert timers.next_deadline == 9.0
    assert ("ring", "c1", 1) in timers
    assert fire_all(timers, 100.0) == [("ring", "c1", 1)]


def test_equal_deadlines_fire_in_the_order_they_were_set() -> None:
    timers = TimerQueue()
    timers.set_in(5.0, 5.0, ("a", "", 1))
    timers.set_at(10.0, ("b", "", 2))
    timers.set_in(0.0, 10.0, ("c", "", 3))
    assert fire_all(timers, 10.0) == [("a", "", 1), ("b", "", 2), ("c", "", 3)]


def test_a_clock_that_goes_backwards_keeps_the_order() -> None:
    timers = TimerQueue()
    timers.set_in(10.0, 5.0, ("late", "", 1))
    timers.set_in(8.0, 5.0, ("early", "", 2))
    assert fire_all(timers, 20.0) == [("early", "", 2), ("late", "", 1)]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("in"), st.integers(0, 5), st.sampled_from([0.0, 1.0, 5.0, 15.0])),
        st.tuples(st.just("at"), st.integers(0, 5), st.floats(0, 50)),
        st.tuples(st.just("cancel"), st.integers(0, 5)),
        st.tuples(st.just("time"), st.sampled_from([-1.0, 0.0, 0.5, 2.0, 7.0])),
        st.tuples(st.just("fire")),
    ),
    max_size=80,
)


@given(operations)
def test_timers_fire_like_a_sorted_list_of_live_deadlines(ops: list[tuple[Any, ...]]) -> None:
    timers = TimerQueue()
    model: dict[TimerKey, tuple[float, int]] = {}  # key → (deadline, order it was set)
    order = 0
    now = 0.0
    for op in ops:
        if op[0] in ("in", "at"):
            key: TimerKey = ("t", "", op[1])
            order += 1
            if op[0] == "in":
                delay = op[2]
                timers.set_in(now, delay, key)
                model[key] = (now + delay, order)
            else:
                at = op[2]
                timers.set_at(at, key)
                model[key] = (at, order)
        elif op[0] == "cancel":
            key = ("t", "", op[1])
            timers.cancel(key)
            model.pop(key, None)
        elif op[0] == "time":
            now += op[1]
        else:
            due = sorted((v, k) for k, v in model.items() if v[0] <= now)
            assert fire_all(timers, now) == [k for _, k in due]
            for _, k in due:
                del model[k]
        expected = min(model.values())[0] if model else None
        assert timers.next_deadline == expected
        assert len(timers) == len(model)
