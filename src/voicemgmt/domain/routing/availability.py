"""Who can take a call right now: per group and tier, in the order of the group's strategy.

The routing core tells the index when an operator becomes available (online and idle) or
stops being so, logs in or out, and joins or leaves a group; the index answers the questions
an offer asks, none of them by scanning a group's members:

- the first tier of a group with someone available, and its rank among the tiers the
  group's members are in (for ``tier_delay``);
- whom the strategy picks in that tier: each tier keeps a heap ordered by the strategy's
  key, with lazy invalidation (an operator's entry is current only while it is the one
  recorded for them);
- whether anyone of the group is logged in (for ``when_empty``).

A strategy's key (idle since, last offer, calls taken) only changes while the operator is
unavailable, so an entry made when they became available stays true until they stop being so.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from typing import Any

from voicemgmt.domain.routing.model import OperatorState, Strategy

_Entry = tuple[Any, int]  # (the strategy's key, the operator's id): smallest first
_Key = Callable[[OperatorState], _Entry]

_RING_ALL = Strategy.RING_ALL  # Python 3.11 reads enum members slowly: read them once

_KEYS: dict[Strategy, _Key] = {
    Strategy.LONGEST_IDLE: lambda o: (o.idle_since, o.id),
    Strategy.ROUND_ROBIN: lambda o: (o.last_offer, o.id),
    Strategy.FEWEST_CALLS: lambda o: ((o.calls_taken, o.idle_since), o.id),
    Strategy.RING_ALL: lambda o: (0, o.id),  # all of them, by id
}


class _Tier:
    """The available operators of one tier of one group, ordered by the strategy's key."""

    __slots__ = ("entries", "heap")

    def __init__(self) -> None:
        self.entries: dict[int, _Entry] = {}  # operator id → their current heap entry
        self.heap: list[_Entry] = []

    def rebuild(self) -> None:
        self.heap = list(self.entries.values())
        heapq.heapify(self.heap)

    def first(self) -> int:
        heap, entries = self.heap, self.entries
        while entries.get(heap[0][1]) is not heap[0]:
            heapq.heappop(heap)
        return heap[0][1]


class _Group:
    __slots__ = ("key", "logged_in", "members", "ranks", "strategy", "tiers")

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.key = _KEYS[strategy]
        self.tiers: dict[int, _Tier] = {}  # only tiers with someone available
        self.members: dict[int, int] = {}  # tier → number of members in it
        self.ranks: list[int] | None = []  # the members' tiers, sorted; None: to recompute
        self.logged_in = 0  # members not offline


class Availability:
    __slots__ = ("_groups", "_operators")

    def __init__(self, operators: Mapping[int, OperatorState]) -> None:
        self._operators = operators
        self._groups: dict[int, _Group] = {}

    # what changed ------------------------------------------------------------------------

    def set_strategy(self, group_id: int, strategy: Strategy) -> None:
        group = self._groups.get(group_id)
        if group is None:
            self._groups[group_id] = _Group(strategy)
        elif group.strategy is not strategy:
            group.strategy, group.key = strategy, _KEYS[strategy]
            for tier in group.tiers.values():
                for operator_id in tier.entries:
                    tier.entries[operator_id] = group.key(self._operators[operator_id])
                tier.rebuild()

    def join(self, operator: OperatorState, *, logged_in: bool) -> None:
        """The operator became a member of each group of ``operator.groups``."""
        for group_id, tier in operator.groups.items():
            group = self._groups[group_id]
            count = group.members.get(tier, 0)
            group.members[tier] = count + 1
            if not count:
                group.ranks = None
            group.logged_in += logged_in

    def leave(self, operator: OperatorState, *, logged_in: bool) -> None:
        """The operator stops being a member of each group of ``operator.groups``."""
        for group_id, tier in operator.groups.items():
            group = self._groups[group_id]
            count = group.members[tier] - 1
            if count:
                group.members[tier] = count
            else:
                del group.members[tier]
                group.ranks = None
            group.logged_in -= logged_in

    def logged(self, operator: OperatorState, change: int) -> None:
        """The operator logged in (``+1``) or out (``-1``)."""
        groups = self._groups
        for group_id in operator.groups:
            groups[group_id].logged_in += change

    def available(self, operator: OperatorState) -> None:
        groups = self._groups
        operator_id = operator.id
        for group_id, tier_number in operator.groups.items():
            group = groups[group_id]
            tier = group.tiers.get(tier_number)
            if tier is None:
                tier = group.tiers[tier_number] = _Tier()
            entry = tier.entries[operator_id] = group.key(operator)
            heap = tier.heap
            heapq.heappush(heap, entry)
            if len(heap) > 2 * len(tier.entries) + 16:  # mostly stale: rebuild, O(1) amortised
                tier.rebuild()

    def unavailable(self, operator: OperatorState) -> None:
        groups = self._groups
        operator_id = operator.id
        for group_id, tier_number in operator.groups.items():
            tiers = groups[group_id].tiers
            tier = tiers[tier_number]
            del tier.entries[operator_id]
            if not tier.entries:
                del tiers[tier_number]

    # questions ---------------------------------------------------------------------------

    def anyone_logged_in(self, group_id: int) -> bool:
        return self._groups[group_id].logged_in > 0

    def first_tier(self, group_id: int) -> int | None:
        """The first tier (lowest number) with someone available; None if nobody is."""
        tiers = self._groups[group_id].tiers
        return min(tiers) if tiers else None

    def rank(self, group_id: int, tier: int) -> int:
        """The position of ``tier`` among the tiers the group's members are in (0 first)."""
        group = self._groups[group_id]
        if group.ranks is None:
            group.ranks = sorted(group.members)
        return group.ranks.index(tier)

    def choose(self, group_id: int, tier: int) -> list[OperatorState]:
        """Whom the group's strategy offers a call to in ``tier`` (which has someone)."""
        group = self._groups[group_id]
        operators = self._operators
        if group.strategy is _RING_ALL:
            return [operators[o] for o in sorted(group.tiers[tier].entries)]
        return [operators[group.tiers[tier].first()]]
