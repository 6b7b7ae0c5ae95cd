"""The routing core's timers: one deadline per key, fired in order of (deadline, scheduling).

Most timers are "in *d* seconds" with a *d* taken from a group's policy (ring timeout, wrap-up,
maximum wait): with time moving forward, timers of the same delay fall due in the order they
were set. Each delay gets a FIFO *lane*; a small heap orders the lanes by their first
deadline, so setting, cancelling and firing such a timer costs O(1) whatever the number of
calls waiting. Other deadlines (IVR timeouts, tier unlocks), and any timer set while the clock
went backwards, go to an ordinary heap. Cancelling is lazy: a cancelled timer is skipped when
it comes first.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque

TimerKey = tuple[str, str, int]  # (kind, call id, operator id)
_Entry = tuple[float, int, TimerKey]  # (deadline, version, key)


class TimerQueue:
    __slots__ = ("_heads", "_lanes", "_loose", "_versions", "_versions_of")

    def __init__(self) -> None:
        self._versions: dict[TimerKey, int] = {}  # the live timers: key → version
        self._lanes: dict[float, deque[_Entry]] = {}  # delay → its timers, by deadline
        self._heads: list[tuple[float, int, float]] = []  # (deadline, version, delay) per lane
        self._loose: list[_Entry] = []  # a heap
        self._versions_of = itertools.count(1)

    def __len__(self) -> int:
        return len(self._versions)

    def __contains__(self, key: TimerKey) -> bool:
        return key in self._versions

    def set_in(self, now: float, delay: float, key: TimerKey) -> None:
        """Fire ``key`` at ``now + delay`` (replacing its earlier deadline, if any)."""
        at = now + delay
        version = self._versions[key] = next(self._versions_of)
        lane = self._lanes.get(delay)
        if lane is None:
            self._lanes[delay] = deque([(at, version, key)])
            heapq.heappush(self._heads, (at, version, delay))
        elif lane[-1][0] <= at:
            lane.append((at, version, key))
        else:  # the clock went backwards: this one would be out of order in its lane
            heapq.heappush(self._loose, (at, version, key))

    def set_at(self, at: float, key: TimerKey) -> None:
        """Fire ``key`` at ``at`` (replacing its earlier deadline, if any)."""
        version = self._versions[key] = next(self._versions_of)
        heapq.heappush(self._loose, (at, version, key))

    def cancel(self, key: TimerKey) -> None:
        self._versions.pop(key, None)

    def pending(self) -> list[tuple[float, TimerKey]]:
        """Every live timer as (deadline, key), in the order they will fire.

        Setting them with ``set_at`` in this order on an empty queue gives a queue that fires
        exactly as this one: same deadlines, same order among equal deadlines.
        """
        versions = self._versions
        live = [
            entry
            for entries in (self._loose, *self._lanes.values())
            for entry in entries
            if versions.get(entry[2]) == entry[1]
        ]
        live.sort()
        return [(deadline, key) for deadline, _, key in live]

    @property
    def next_deadline(self) -> float | None:
        first = self._first()
        return None if first is None else first[0]

    def pop_due(self, now: float) -> TimerKey | None:
        """The first live timer due at ``now``, now fired (forgotten); None if there is none."""
        first = self._first()
        if first is None or first[0] > now:
            return None
        key = first[2]
        del self._versions[key]  # its entry is now stale, dropped by the next _first()
        return key

    def _first(self) -> _Entry | None:
        """The earliest live timer, after dropping the cancelled ones that came before it."""
        versions = self._versions
        loose = self._loose
        while loose and versions.get(loose[0][2]) != loose[0][1]:
            heapq.heappop(loose)
        heads = self._heads
        while heads:
            delay = heads[0][2]
            lane = self._lanes[delay]
            while lane and versions.get(lane[0][2]) != lane[0][1]:
                lane.popleft()
            if not lane:
                heapq.heappop(heads)
                del self._lanes[delay]
                continue
            head = lane[0]
            if heads[0][1] != head[1]:
                heapq.heapreplace(heads, (head[0], head[1], delay))
                continue
            if loose and loose[0] < head:
                return loose[0]
            return head
        return loose[0] if loose else None
