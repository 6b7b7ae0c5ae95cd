"""The availability index: the same answers as scanning every member, without the scan."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from voicemgmt.domain.routing.availability import Availability
from voicemgmt.domain.routing.model import OperatorState, Presence, Strategy


class Desk:
    """Operators and an index kept in step by hand, the way the core does."""

    def __init__(self, strategy: Strategy = Strategy.LONGEST_IDLE) -> None:
        self.operators: dict[int, OperatorState] = {}
        self.index = Availability(self.operators)
        self.index.set_strategy(1, strategy)
        self.index.set_strategy(2, strategy)
        self.free: set[int] = set()

    def add(self, operator_id: int, groups: dict[int, int], **state: Any) -> OperatorState:
        operator = self.operators[operator_id] = OperatorState(operator_id, groups, **state)
        self.index.join(operator, logged_in=operator.presence is not Presence.OFFLINE)
        return operator

    def free_up(self, operator_id: int) -> None:
        self.index.available(self.operators[operator_id])
        self.free.add(operator_id)

    def take(self, operator_id: int) -> None:
        self.index.unavailable(self.operators[operator_id])
        self.free.discard(operator_id)

    def chosen(self, group_id: int = 1) -> list[int]:
        tier = self.index.first_tier(group_id)
        return [] if tier is None else [o.id for o in self.index.choose(group_id, tier)]


def test_longest_idle_picks_who_has_waited_longest() -> None:
    desk = Desk(Strategy.LONGEST_IDLE)
    for operator_id, idle_since in ((1, 30.0), (2, 10.0), (3, 20.0)):
        desk.add(operator_id, {1: 1}, idle_since=idle_since)
        desk.free_up(operator_id)
    assert desk.chosen() == [2]
    desk.take(2)
    assert desk.chosen() == [3]


def test_round_robin_picks_who_was_offered_a_call_longest_ago() -> None:
    desk = Desk(Strategy.ROUND_ROBIN)
    for operator_id, last_offer in ((1, 5), (2, 9), (3, 7)):
        desk.add(operator_id, {1: 1}, last_offer=last_offer)
        desk.free_up(operator_id)
    assert desk.chosen() == [1]


def test_fewest_calls_breaks_ties_by_idle_time_then_id() -> None:
    desk = Desk(Strategy.FEWEST_CALLS)
    desk.add(1, {1: 1}, calls_taken=2, idle_since=1.0)
    desk.add(2, {1: 1}, calls_taken=1, idle_since=9.0)
    desk.add(3, {1: 1}, calls_taken=1, idle_since=5.0)
    desk.add(4, {1: 1}, calls_taken=1, idle_since=5.0)
    for operator_id in (1, 2, 3, 4):
        desk.free_up(operator_id)
    assert desk.chosen() == [3]


def test_ring_all_offers_everyone_of_the_first_tier_by_id() -> None:
    desk = Desk(Strategy.RING_ALL)
    for operator_id, tier in ((5, 1), (3, 1), (4, 2)):
        desk.add(operator_id, {1: tier})
        desk.free_up(operator_id)
    assert desk.chosen() == [3, 5]


def test_someone_taken_elsewhere_is_not_chosen_again_when_back_with_a_new_key() -> None:
    desk = Desk(Strategy.LONGEST_IDLE)
    first = desk.add(1, {1: 1, 2: 1}, idle_since=1.0)
    desk.add(2, {1: 1}, idle_since=2.0)
    desk.free_up(1)
    desk.free_up(2)
    desk.take(1)  # offered a call of group 2
    first.idle_since = 50.0
    desk.free_up(1)
    assert desk.chosen() == [2]


def test_a_changed_strategy_reorders_who_is_available() -> None:
    desk = Desk(Strategy.LONGEST_IDLE)
    desk.add(1, {1: 1}, idle_since=1.0, calls_taken=5)
    desk.add(2, {1: 1}, idle_since=2.0, calls_taken=0)
    desk.free_up(1)
    desk.free_up(2)
    assert desk.chosen() == [1]
    desk.index.set_strategy(1, Strategy.FEWEST_CALLS)
    assert desk.chosen() == [2]


def test_the_first_tier_and_its_rank_among_the_members_tiers() -> None:
    desk = Desk()
    desk.add(1, {1: 1})
    desk.add(2, {1: 3})
    desk.add(3, {1: 5})
    desk.free_up(2)
    desk.free_up(3)
    assert desk.index.first_tier(1) == 3
    assert desk.index.rank(1, 3) == 1
    desk.index.leave(desk.operators[1], logged_in=False)
    assert desk.index.rank(1, 3) == 0
    assert desk.index.first_tier(2) is None


def test_anyone_logged_in_counts_members_not_offline() -> None:
    desk = Desk()
    operator = desk.add(1, {1: 1, 2: 1})
    assert not desk.index.anyone_logged_in(1)
    desk.index.logged(operator, 1)
    assert desk.index.anyone_logged_in(1)
    assert desk.index.anyone_logged_in(2)
    desk.index.leave(operator, logged_in=True)
    assert not desk.index.anyone_logged_in(1)


def test_many_comings_and_goings_leave_no_pile_of_stale_entries() -> None:
    desk = Desk()
    desk.add(1, {1: 1, 2: 1})
    desk.add(2, {1: 1, 2: 1}, idle_since=5000.0)
    desk.free_up(2)
    for n in range(1000):
        desk.operators[1].idle_since = float(n)
        desk.free_up(1)
        desk.take(1)
    assert desk.chosen() == [2]
    assert all(len(tier.heap) < 20 for tier in desk.index._groups[2].tiers.values())


KEYS = {
    Strategy.LONGEST_IDLE: lambda o: (o.idle_since, o.id),
    Strategy.ROUND_ROBIN: lambda o: (o.last_offer, o.id),
    Strategy.FEWEST_CALLS: lambda o: (o.calls_taken, o.idle_since, o.id),
}

steps = st.lists(
    st.one_of(
        st.tuples(st.just("toggle"), st.integers(1, 6)),
        st.tuples(st.just("busy_work"), st.integers(1, 6), st.integers(0, 3)),
        st.tuples(st.just("strategy"), st.sampled_from(Strategy)),
    ),
    max_size=60,
)


@given(
    st.lists(st.dictionaries(st.sampled_from([1, 2]), st.integers(1, 3)), min_size=6, max_size=6),
    st.sampled_from(Strategy),
    steps,
)
def test_the_choice_is_the_scan_of_every_available_member(
    groups: list[dict[int, int]], strategy: Strategy, ops: list[tuple[Any, ...]]
) -> None:
    desk = Desk(strategy)
    for operator_id, membership in enumerate(groups, start=1):
        desk.add(operator_id, membership)
    clock = 0
    for op in ops:
        clock += 1
        if op[0] == "toggle":
            if op[1] in desk.free:
                desk.take(op[1])
            else:
                desk.free_up(op[1])
        elif op[0] == "busy_work" and op[1] not in desk.free:  # keys change only then
            operator = desk.operators[op[1]]
            operator.idle_since, operator.last_offer = float(clock), clock
            operator.calls_taken += op[2]
        elif op[0] == "strategy":
            strategy = op[1]
            desk.index.set_strategy(1, strategy)
        members = [desk.operators[o] for o in sorted(desk.free) if 1 in desk.operators[o].groups]
        if not members:
            assert desk.chosen() == []
            continue
        best = min(o.groups[1] for o in members)
        tier = [o for o in members if o.groups[1] == best]
        if strategy is Strategy.RING_ALL:
            expected = [o.id for o in tier]
        else:
            expected = [min(tier, key=KEYS[strategy]).id]
        assert desk.chosen() == expected
