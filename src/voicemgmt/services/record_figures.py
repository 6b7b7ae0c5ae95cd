"""Figures of call records, as the store computes them: per group, per operator, over time.

Figures (``GroupFigures``) cover the **inbound** calls of the window that reached a group
(``id_group`` set; the routing core gives every inbound call the group of its number). Each call
counts once, in the group where it ended (a call that overflowed from group A to group B counts
in B), so the total row is exactly the sum of the group rows:

- ``offered``: calls; ``answered``, ``abandoned``, ``missed``, ``overflowed``, ``failed``: calls
  by outcome (they add up to ``offered``);
- a call *queued* when ``duration_wait > 0`` or it was answered; calls that never waited and
  were not answered (they ended in the IVR, or were refused at once because nobody was logged
  in) are left out of the wait figures;
- ``average_wait``: mean ``duration_wait`` of the queued calls, whatever their outcome
  (answered, abandoned, missed...); ``longest_wait``: the largest; both ``None`` if none queued;
- ``average_talk``: mean ``duration_comm`` of the answered calls, ``None`` if none;
- ``answered_within``: answered calls with ``duration_wait <= service_level_seconds`` (a wait
  equal to the threshold is within);
- ``service_level = answered_within / offered``, between 0 and 1; ``None`` when nothing was
  offered. Calls abandoned early count against it, as every offered call is in the divisor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from voicemgmt.domain.routing.model import Outcome


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC to the millisecond, with a ``Z``: one fixed shape for every date."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms(seconds: float) -> float:
    return round(seconds, 3)


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """One group's figures over a window, or the total of all groups (``id_group`` None)."""

    id_group: int | None
    offered: int
    answered: int
    abandoned: int
    missed: int
    overflowed: int
    failed: int
    answered_within: int
    average_wait: float | None
    longest_wait: float | None
    average_talk: float | None

    @property
    def service_level(self) -> float | None:
        return self.answered_within / self.offered if self.offered else None

    def to_json(self) -> dict[str, Any]:
        def seconds(value: float | None) -> float | None:
            return None if value is None else ms(value)

        level = self.service_level
        return {
            "id_group": self.id_group,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "missed": self.missed,
            "overflowed": self.overflowed,
            "failed": self.failed,
            "answered_within": self.answered_within,
            "average_wait": seconds(self.average_wait),
            "longest_wait": seconds(self.longest_wait),
            "average_talk": seconds(self.average_talk),
            "service_level": None if level is None else round(level, 4),
        }


@dataclass(frozen=True, slots=True)
class OperatorFigures:
    """What one operator handled over a window: answered calls, both directions."""

    id_op: int
    answered: int
    talk: float

    def to_json(self) -> dict[str, Any]:
        return {"id_op": self.id_op, "answered": self.answered, "talk": ms(self.talk)}


@dataclass(frozen=True, slots=True)
class OperatorTally:
    """What a routing core rebuilt after a restart takes back of one operator's calls since a
    moment: how many they answered (``calls_taken``) and when the last of them started."""

    answered: int
    last_answered: datetime


# Upper bounds (seconds, excluded) of the wait-time distribution's bins; the last is open.
WAIT_BINS = (10, 20, 30, 60, 120, 300)
MIN_BUCKET_SECONDS = 60
MAX_BUCKETS = 3000


@dataclass(frozen=True, slots=True)
class Charts:
    """Inbound calls of a window by time bucket and outcome, and the wait distribution.

    The calls are those of ``GroupFigures`` (inbound, with a group), so every bucket's
    outcomes add up to the calls that started in it, the buckets to ``offered``, and the wait
    bins to the queued calls (the same definition as ``average_wait``).
    """

    since: datetime
    until: datetime
    bucket_seconds: int
    buckets: dict[int, dict[str, int]]  # bucket index from since → outcome → calls
    waits: dict[int, int]  # bin index into WAIT_BINS (len: the open last one) → calls

    def to_json(self) -> dict[str, Any]:
        count = math.ceil((self.until - self.since).total_seconds() / self.bucket_seconds)
        zero = {o.value: 0 for o in Outcome}
        bounds = [0, *WAIT_BINS]
        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "bucket_seconds": self.bucket_seconds,
            "buckets": [
                {
                    "start": iso(self.since + timedelta(seconds=index * self.bucket_seconds)),
                    **zero,
                    **self.buckets.get(index, {}),
                }
                for index in range(count)
            ],
            "wait": [
                {
                    "from": low,
                    "to": WAIT_BINS[index] if index < len(WAIT_BINS) else None,
                    "calls": self.waits.get(index, 0),
                }
                for index, low in enumerate(bounds)
            ],
        }
