"""The figures of call records as SQL (``services/record_figures.py``), for the store in
``call_records.py``: each is one statement, so every part of a figure reads the same snapshot
of the table, and the database does the counting."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    Row,
    Select,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)

from voicemgmt.adapters.sql.tables import call_records
from voicemgmt.domain.routing.model import Outcome
from voicemgmt.services.record_figures import (
    WAIT_BINS,
    Charts,
    GroupFigures,
    OperatorFigures,
)

_c = call_records.c


def _figure_columns(service_level_seconds: float) -> list[Any]:
    answered = _c.outcome == Outcome.ANSWERED.value
    queued = or_(_c.duration_wait > 0, answered)

    def calls(condition: ColumnElement[bool]) -> Any:
        # SUM over no row is NULL: the total row of an empty window must still say 0.
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return [
        func.count().label("offered"),
        *(calls(_c.outcome == o.value).label(o.value) for o in Outcome),
        calls(and_(answered, _c.duration_wait <= service_level_seconds)).label("within"),
        func.avg(case((queued, _c.duration_wait))).label("average_wait"),
        func.max(case((queued, _c.duration_wait))).label("longest_wait"),
        func.avg(case((answered, _c.duration_comm))).label("average_talk"),
    ]


def _figures(row: Row[Any]) -> GroupFigures:
    def seconds(value: Any) -> float | None:
        return None if value is None else float(value)

    return GroupFigures(
        id_group=row.id_group,
        offered=int(row.offered),
        answered=int(row.answered),
        abandoned=int(row.abandoned),
        missed=int(row.missed),
        overflowed=int(row.overflowed),
        failed=int(row.failed),
        answered_within=int(row.within),
        average_wait=seconds(row.average_wait),
        longest_wait=seconds(row.longest_wait),
        average_talk=seconds(row.average_talk),
    )


def figures_query(
    inbound: ColumnElement[bool], service_level_seconds: float
) -> CompoundSelect[Any]:
    """Per group of the ``inbound`` records, then the total (its ``id_group`` NULL)."""
    columns = _figure_columns(service_level_seconds)
    by_group = select(_c.id_group, *columns).where(inbound).group_by(_c.id_group)
    total = select(cast(null(), Integer).label("id_group"), *columns).where(inbound)
    return union_all(by_group, total)


def figures_of(rows: Iterable[Row[Any]]) -> list[GroupFigures]:
    """The groups by id, then the total."""
    found = [_figures(row) for row in rows]
    groups = sorted((r for r in found if r.id_group is not None), key=lambda r: r.id_group or 0)
    return [*groups, *(r for r in found if r.id_group is None)]


def operator_figures_query(answered: ColumnElement[bool]) -> Select[Any]:
    return (
        select(_c.id_op, func.count().label("answered"), func.sum(_c.duration_comm))
        .where(answered)
        .group_by(_c.id_op)
        .order_by(_c.id_op)
    )


def operator_figures_of(rows: Iterable[Any]) -> list[OperatorFigures]:
    return [
        OperatorFigures(int(op), int(answered), float(talk or 0)) for op, answered, talk in rows
    ]


def charts_query(
    inbound: ColumnElement[bool], since: datetime, bucket_seconds: int, *, postgresql: bool
) -> CompoundSelect[Any]:
    """Calls per (bucket from ``since``, outcome) and per wait bin, tagged ``t`` and ``w``."""
    origin = math.floor(since.timestamp())
    if postgresql:  # EXTRACT gives numeric; a cast would round
        elapsed = extract("epoch", _c.started_at) - origin
        bucket: Any = cast(func.floor(elapsed / bucket_seconds), Integer)
    else:  # SQLite keeps UTC text, which strftime reads as UTC, to the whole second
        seconds = cast(func.strftime("%s", _c.started_at), Integer) - origin
        bucket = seconds // bucket_seconds  # integers: "/" floors (they are >= 0)
    answered = _c.outcome == Outcome.ANSWERED.value
    wait_bin = case(
        (~or_(_c.duration_wait > 0, answered), None),  # never queued: not in the waits
        *((_c.duration_wait < bound, index) for index, bound in enumerate(WAIT_BINS)),
        else_=len(WAIT_BINS),
    )
    # Each record's bucket and bin in a subquery, grouped outside it: PostgreSQL would not
    # take two copies of an expression with bound parameters as one GROUP BY expression.
    calls = (
        select(bucket.label("bucket"), _c.outcome.label("outcome"), wait_bin.label("bin"))
        .where(inbound)
        .subquery()
    )
    by_bucket = select(
        literal("t").label("part"), calls.c.bucket, calls.c.outcome, func.count()
    ).group_by(calls.c.bucket, calls.c.outcome)
    by_wait = (
        select(literal("w").label("part"), calls.c.bin, cast(null(), _c.outcome.type), func.count())
        .where(calls.c.bin.is_not(None))
        .group_by(calls.c.bin)
    )
    return union_all(by_bucket, by_wait)


def charts_of(rows: Iterable[Any], since: datetime, until: datetime, bucket_seconds: int) -> Charts:
    buckets: dict[int, dict[str, int]] = {}
    waits: dict[int, int] = {}
    for part, key, outcome, count in rows:
        if part == "t":
            buckets.setdefault(int(key), {})[str(outcome)] = int(count)
        else:
            waits[int(key)] = int(count)
    return Charts(
        since=datetime.fromtimestamp(math.floor(since.timestamp()), UTC),
        until=until,
        bucket_seconds=bucket_seconds,
        buckets=buckets,
        waits=waits,
    )
