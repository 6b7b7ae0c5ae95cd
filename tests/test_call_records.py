"""Call records and operators' presence: storage on both backends, figures, CSV, use cases."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic import command

from tests.support import make_settings, run_on
from voicemgmt.adapters.sql.call_records import SqlCallRecords
from voicemgmt.adapters.sql.engine import alembic_config, migrate
from voicemgmt.adapters.sql.repository import count_rows
from voicemgmt.bootstrap import Container
from voicemgmt.domain.errors import InvalidInput, NoSuchAccount, NoSuchOperator
from voicemgmt.domain.routing.model import CallRecord, Outcome, Side
from voicemgmt.services.call_records import CallRecordService, StoredCallRecord, record_json
from voicemgmt.services.record_csv import CSV_COLUMNS, records_to_csv
from voicemgmt.services.record_figures import (
    WAIT_BINS,
    Charts,
    GroupFigures,
    OperatorFigures,
    OperatorTally,
)

T = TypeVar("T")
Runner = Callable[[Callable[[Container], Awaitable[Any]]], Any]
Presences = dict[int, tuple[str, datetime]]

DAY = datetime(2026, 11, 2, tzinfo=UTC)
T0 = DAY.timestamp()
SINCE, UNTIL = DAY, DAY + timedelta(days=1)


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Callable[[Callable[[Container], Awaitable[T]]], T]:
    settings = make_settings(tmp_path, database_url)

    def runner(job: Callable[[Container], Awaitable[T]]) -> T:
        return run_on(settings, job)

    return runner


def rec(id_call: str, at: float = 3600.0, **fields: Any) -> CallRecord:
    """An answered inbound call to group 1, ``at`` seconds into the day; override any field."""
    values: dict[str, Any] = {
        "id_call": id_call,
        "direction": "in",
        "caller_number": "33612345678",
        "service_number": "33170200200",
        "id_group": 1,
        "outcome": Outcome.ANSWERED,
        "ended_by": Side.CALLER,
        "disconnect_reason": "normal",
        "started_at": T0 + at,
        "ended_at": T0 + at + 90,
        "id_op": 7,
        "operators_offered": (7,),
        "overflowed_from": (),
        "ticket_id": None,
        "variables": {},
        "duration": 90.0,
        "duration_ring": 4.0,
        "duration_svi": 0.0,
        "duration_wait": 6.0,
        "duration_comm": 84.0,
        "duration_hold": 0.0,
    }
    values.update(fields)
    return CallRecord(**values)


async def two_accounts(c: Container) -> tuple[int, int]:
    acme = await c.directory.create_account(login="acme", name="Acme", password="pw-123456")
    globex = await c.directory.create_account(login="globex", name="Globex", password="pw-123456")
    return acme.id, globex.id


# storing


def test_a_record_is_read_back_as_it_was_stored(run: Runner) -> None:
    record = rec(
        "c1",
        at=12.125,
        outcome=Outcome.OVERFLOWED,
        ended_by=Side.SYSTEM,
        disconnect_reason="max_wait",
        id_op=None,
        operators_offered=(7, 9),
        overflowed_from=(3, 1),
        ticket_id="T-42",
        variables={"client": "4711", "langue": "français"},
        duration_svi=2.5,
    )

    async def job(c: Container) -> list[StoredCallRecord]:
        acme, _ = await two_accounts(c)
        store = SqlCallRecords(c.engine)
        await store.add(acme, record)
        return await store.query(acme, since=SINCE, until=UNTIL)

    (stored,) = run(job)
    assert stored == StoredCallRecord.from_record(record)
    assert stored.started_at == datetime(2026, 11, 2, 0, 0, 12, 125000, tzinfo=UTC)
    assert stored.operators_offered == (7, 9)
    assert stored.variables == {"client": "4711", "langue": "français"}


def test_adding_a_call_twice_keeps_the_first_record_only(run: Runner) -> None:
    first = rec("c1")

    async def job(c: Container) -> tuple[int, list[StoredCallRecord]]:
        acme, _ = await two_accounts(c)
        store = SqlCallRecords(c.engine)
        await store.add(acme, first)
        await store.add(acme, replace(first, outcome=Outcome.FAILED))  # a retry, say
        await store.add_many(acme, [rec("c2"), first, rec("c2"), rec("c3")])
        await store.add_many(acme, [])
        return await count_rows(c.engine, "call_records"), await store.query(
            acme, since=SINCE, until=UNTIL, id_group=None
        )

    rows, stored = run(job)
    assert rows == 3
    assert sorted(r.id_call for r in stored) == ["c1", "c2", "c3"]
    assert next(r for r in stored if r.id_call == "c1").outcome is Outcome.ANSWERED


def test_a_record_for_an_unknown_account_is_refused(run: Runner) -> None:
    async def job(c: Container) -> int:
        with pytest.raises(NoSuchAccount):
            await SqlCallRecords(c.engine).add_many(999, [rec("c1"), rec("c2")])
        return await count_rows(c.engine, "call_records")

    assert run(job) == 0


def test_long_free_text_is_clipped_but_a_bad_call_id_is_refused(run: Runner) -> None:
    async def job(c: Container) -> StoredCallRecord:
        acme, _ = await two_accounts(c)
        store = SqlCallRecords(c.engine)
        for bad in ("", "x" * 41):
            with pytest.raises(InvalidInput):
                await store.add(acme, rec(bad))
        await store.add(
            acme, rec("c1", caller_number="sip:" + "9" * 100, disconnect_reason="r" * 300)
        )
        (stored,) = await store.query(acme, since=SINCE, until=UNTIL)
        return stored

    stored = run(job)
    assert stored.caller_number == "sip:" + "9" * 60
    assert stored.disconnect_reason == "r" * 64


def test_deleting_an_account_deletes_its_records_and_presences(run: Runner) -> None:
    async def job(c: Container) -> list[int]:
        acme, _ = await two_accounts(c)
        ana = await c.directory.create_operator(acme, name="Ana", email="ana@acme.example")
        store = SqlCallRecords(c.engine)
        await store.add(acme, rec("c1"))
        await store.set_presence(acme, ana.id, "online", SINCE)
        await c.directory.delete_account(acme)
        return [await count_rows(c.engine, t) for t in ("call_records", "operator_presence")]

    assert run(job) == [0, 0]


def test_the_migration_downgrades_and_upgrades_again(run: Runner) -> None:
    async def job(c: Container) -> int:
        async with c.engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0001"))
        await migrate(c.engine)
        return await count_rows(c.engine, "call_records")

    assert run(job) == 0


# reading


def test_filters_select_exactly_the_matching_records(run: Runner) -> None:
    records = [
        rec("at-since", at=0.0),
        rec("g2", id_group=2),
        rec("op9", id_op=9),
        rec("missed", outcome=Outcome.MISSED, id_op=None),
        rec("out", direction="out", id_group=None),
        rec("before", at=-0.001),
        rec("at-until", at=86400.0),
    ]

    async def job(c: Container) -> dict[str, list[str] | int]:
        acme, _ = await two_accounts(c)
        store = SqlCallRecords(c.engine)
        await store.add_many(acme, records)

        async def ids(**filters: Any) -> list[str]:
            found = await store.query(acme, since=SINCE, until=UNTIL, **filters)
            assert await store.count(acme, since=SINCE, until=UNTIL, **filters) == len(found)
            return sorted(r.id_call for r in found)

        return {
            "all": await ids(),
            "group 2": await ids(id_group=2),
            "operator 9": await ids(id_op=9),
            "missed": await ids(outcome=Outcome.MISSED),
            "out": await ids(direction="out"),
            "in, group 1, answered": await ids(
                direction="in", id_group=1, outcome=Outcome.ANSWERED
            ),
            "nothing": await ids(id_group=1, id_op=9, outcome=Outcome.MISSED),
            "total": await store.count(acme, since=SINCE - timedelta(hours=1), until=UNTIL),
        }

    assert run(job) == {
        "all": ["at-since", "g2", "missed", "op9", "out"],
        "group 2": ["g2"],
        "operator 9": ["op9"],
        "missed": ["missed"],
        "out": ["out"],
        "in, group 1, answered": ["at-since", "op9"],
        "nothing": [],
        "total": 6,
    }


def test_records_come_newest_first_and_pages_cover_them_once(run: Runner) -> None:
    # Ties on the start time (c05/c06 and c10/c11) are broken by id, descending.
    starts = [0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 9]
    records = [rec(f"c{i:02}", at=100.0 + s) for i, s in enumerate(starts)]

    async def job(c: Container) -> tuple[list[str], list[list[str]], int]:
        acme, _ = await two_accounts(c)
        store = SqlCallRecords(c.engine)
        await store.add_many(acme, list(reversed(records)))
        everything = await store.query(acme, since=SINCE, until=UNTIL, limit=1000)
        pages = [
            [
                r.id_call
                for r in await store.query(acme, since=SINCE, until=UNTIL, limit=5, offset=o)
            ]
            for o in (0, 5, 10, 15)
        ]
        return [r.id_call for r in everything], pages, len(everything)

    order, pages, total = run(job)
    assert order == [
        "c11", "c10", "c09", "c08", "c07", "c06", "c05", "c04", "c03", "c02", "c01", "c00"
    ]  # fmt: skip
    assert pages == [order[0:5], order[5:10], order[10:], []]
    assert total == 12


def test_another_accounts_records_are_never_seen(run: Runner) -> None:
    async def job(c: Container) -> dict[str, Any]:
        acme, globex = await two_accounts(c)
        store = SqlCallRecords(c.engine)
        await store.add_many(acme, [rec("a1"), rec("a2", outcome=Outcome.MISSED)])
        await store.add_many(globex, [rec("g1"), rec("a1", outcome=Outcome.FAILED)])
        return {
            "globex": [r.id_call for r in await store.query(globex, since=SINCE, until=UNTIL)],
            "globex count": await store.count(globex, since=SINCE, until=UNTIL),
            "acme": sorted(r.id_call for r in await store.query(acme, since=SINCE, until=UNTIL)),
            "globex figures": await store.figures(
                globex, since=SINCE, until=UNTIL, service_level_seconds=20
            ),
            "acme offered": [
                f.offered
                for f in await store.figures(
                    acme, since=SINCE, until=UNTIL, service_level_seconds=20
                )
            ],
        }

    seen = run(job)
    # A call id is unique platform-wide: globex's "a1" is acme's call and is not taken.
    assert seen["globex"] == ["g1"]
    assert seen["globex count"] == 1
    assert seen["acme"] == ["a1", "a2"]
    assert [(f.id_group, f.offered) for f in seen["globex figures"]] == [(1, 1), (None, 1)]
    assert seen["acme offered"] == [2, 2]


# figures


def figures_of(**values: Any) -> GroupFigures:
    defaults: dict[str, Any] = dict.fromkeys(
        ("offered", "answered", "abandoned", "missed", "overflowed", "failed", "answered_within"),
        0,
    )
    defaults.update(average_wait=None, longest_wait=None, average_talk=None)
    defaults.update(values)
    return GroupFigures(**defaults)


def assert_same_figures(found: Sequence[GroupFigures], expected: Sequence[GroupFigures]) -> None:
    """Counts exactly; averages to the last bits, as SQL may add them in another order."""
    assert [f.id_group for f in found] == [f.id_group for f in expected]
    for got, want in zip(found, expected, strict=True):
        got_row, want_row = got.to_json(), want.to_json()
        assert got_row == want_row
        for name in ("average_wait", "longest_wait", "average_talk", "service_level"):
            assert getattr(got, name) == pytest.approx(getattr(want, name), rel=1e-12)


def test_figures_match_a_hand_computed_example(run: Runner) -> None:
    def answered(id_call: str, wait: float, talk: float, **more: Any) -> CallRecord:
        return rec(id_call, duration_wait=wait, duration_comm=talk, **more)

    def unanswered(id_call: str, outcome: Outcome, wait: float, **more: Any) -> CallRecord:
        return rec(
            id_call, outcome=outcome, duration_wait=wait, duration_comm=0.0, id_op=None, **more
        )

    records = [
        # group 1
        answered("a", 5.0, 60.0, at=0.0),  # at `since`: included
        answered("b", 20.0, 120.0),  # exactly the threshold: within
        answered("c", 20.001, 30.0),  # just over
        unanswered("d", Outcome.ABANDONED, 40.0),
        unanswered("e", Outcome.MISSED, 0.0, duration_svi=15.0),  # ended in the IVR: no wait
        # group 2
        unanswered("f", Outcome.OVERFLOWED, 600.0, id_group=2),
        unanswered("g", Outcome.FAILED, 12.0, id_group=2),
        answered("h", 0.0, 10.0, id_group=2),  # answered at once: waited 0 s
        # not counted
        answered("out", 1.0, 100.0, direction="out"),
        answered("no group", 1.0, 100.0, id_group=None),
        answered("before", 1.0, 100.0, at=-1.0),
        answered("at until", 1.0, 100.0, at=86400.0),
    ]

    async def job(c: Container) -> list[GroupFigures]:
        acme, globex = await two_accounts(c)
        store = SqlCallRecords(c.engine)
        await store.add_many(acme, records)
        await store.add(globex, answered("elsewhere", 1.0, 100.0))
        return await store.figures(acme, since=SINCE, until=UNTIL, service_level_seconds=20.0)

    found = run(job)
    assert_same_figures(
        found,
        [
            figures_of(
                id_group=1,
                offered=5,
                answered=3,
                abandoned=1,
                missed=1,
                answered_within=2,
                average_wait=(5 + 20 + 20.001 + 40) / 4,
                longest_wait=40.0,
                average_talk=(60 + 120 + 30) / 3,
            ),
            figures_of(
                id_group=2,
                offered=3,
                answered=1,
                overflowed=1,
                failed=1,
                answered_within=1,
                average_wait=(600 + 12 + 0) / 3,
                longest_wait=600.0,
                average_talk=10.0,
            ),
            figures_of(
                id_group=None,
                offered=8,
                answered=4,
                abandoned=1,
                missed=1,
                overflowed=1,
                failed=1,
                answered_within=3,
                average_wait=(5 + 20 + 20.001 + 40 + 600 + 12 + 0) / 7,
                longest_wait=600.0,
                average_talk=(60 + 120 + 30 + 10) / 4,
            ),
        ],
    )
    assert [f.service_level for f in found] == [2 / 5, 1 / 3, 3 / 8]


def test_figures_of_an_empty_window_are_a_total_of_zero(run: Runner) -> None:
    async def job(c: Container) -> list[GroupFigures]:
        acme, _ = await two_accounts(c)
        return await SqlCallRecords(c.engine).figures(
            acme, since=SINCE, until=UNTIL, service_level_seconds=20
        )

    (total,) = run(job)
    assert total == figures_of(id_group=None)
    assert total.service_level is None
    assert total.to_json()["service_level"] is None


def python_figures(
    records: Sequence[CallRecord], since: datetime, until: datetime, threshold: float
) -> list[GroupFigures]:
    """The documented formulas, recomputed in plain Python."""
    chosen = [
        r
        for r in records
        if r.direction == "in"
        and r.id_group is not None
        and since <= datetime.fromtimestamp(r.started_at, UTC) < until
    ]

    def figures(id_group: int | None, calls: list[CallRecord]) -> GroupFigures:
        by = {o: sum(1 for r in calls if r.outcome is o) for o in Outcome}
        answered = [r for r in calls if r.outcome is Outcome.ANSWERED]
        waits = [
            r.duration_wait for r in calls if r.duration_wait > 0 or r.outcome is Outcome.ANSWERED
        ]
        return GroupFigures(
            id_group=id_group,
            offered=len(calls),
            answered=by[Outcome.ANSWERED],
            abandoned=by[Outcome.ABANDONED],
            missed=by[Outcome.MISSED],
            overflowed=by[Outcome.OVERFLOWED],
            failed=by[Outcome.FAILED],
            answered_within=sum(1 for r in answered if r.duration_wait <= threshold),
            average_wait=sum(waits) / len(waits) if waits else None,
            longest_wait=max(waits) if waits else None,
            average_talk=sum(r.duration_comm for r in answered) / len(answered)
            if answered
            else None,
        )

    groups = sorted({r.id_group for r in chosen if r.id_group is not None})
    return [
        *(figures(g, [r for r in chosen if r.id_group == g]) for g in groups),
        figures(None, chosen),
    ]


def random_records(seed: int, count: int) -> list[CallRecord]:
    rng = random.Random(seed)
    threshold_hits = (0.0, 20.0, 20.0, 19.999, 20.001)
    records = []
    for i in range(count):
        outcome = rng.choice(list(Outcome))
        hit = rng.random() < 0.3
        wait = rng.choice(threshold_hits) if hit else round(rng.uniform(0, 300), 3)
        talk = round(rng.uniform(1, 900), 3) if outcome is Outcome.ANSWERED else 0.0
        # Three days, the window being the middle one; some calls right on its edges.
        at = rng.choice((-86400.0, 0.0, 86400.0, 86399.999)) if i % 97 == 0 else None
        records.append(
            rec(
                f"r{i:05}",
                at=at if at is not None else rng.randrange(-86_400_000, 2 * 86_400_000) / 1000,
                direction="in" if rng.random() < 0.8 else "out",
                id_group=rng.choice((1, 2, 3, 4, 1, 2, None)),
                id_op=rng.choice((None, 7, 8, 9)),
                outcome=outcome,
                duration_wait=wait,
                duration_comm=talk,
            )
        )
    return records


def test_figures_match_a_python_recomputation_on_random_calls(run: Runner) -> None:
    records = random_records(seed=20261102, count=2000)

    async def job(c: Container) -> list[GroupFigures]:
        acme, globex = await two_accounts(c)
        store = SqlCallRecords(c.engine)
        await store.add_many(acme, records)
        await store.add_many(globex, [replace(r, id_call="g" + r.id_call) for r in records[:300]])
        return await store.figures(acme, since=SINCE, until=UNTIL, service_level_seconds=20.0)

    found = run(job)
    expected = python_figures(records, SINCE, UNTIL, 20.0)
    assert_same_figures(found, expected)
    assert [f.id_group for f in found] == [1, 2, 3, 4, None]
    total, groups = found[-1], found[:-1]
    for name in (
        "offered",
        "answered",
        "abandoned",
        "missed",
        "overflowed",
        "failed",
        "answered_within",
    ):
        assert getattr(total, name) == sum(getattr(g, name) for g in groups), name
    assert total.offered == sum(
        (total.answered, total.abandoned, total.missed, total.overflowed, total.failed)
    )
    assert total.longest_wait == max(g.longest_wait or 0 for g in groups)


# charts and operators' figures


def python_charts(
    records: Sequence[CallRecord], since: datetime, until: datetime, bucket: int
) -> tuple[dict[int, dict[str, int]], dict[int, int]]:
    """Buckets and wait bins recomputed in plain Python from the documented definitions."""
    buckets: dict[int, dict[str, int]] = {}
    waits: dict[int, int] = {}
    for r in records:
        started = datetime.fromtimestamp(r.started_at, UTC)
        if r.direction != "in" or r.id_group is None or not since <= started < until:
            continue
        index = int((int(r.started_at) - int(since.timestamp())) // bucket)
        outcomes = buckets.setdefault(index, {})
        outcomes[r.outcome.value] = outcomes.get(r.outcome.value, 0) + 1
        if r.duration_wait > 0 or r.outcome is Outcome.ANSWERED:
            place = next(
                (i for i, b in enumerate(WAIT_BINS) if r.duration_wait < b), len(WAIT_BINS)
            )
            waits[place] = waits.get(place, 0) + 1
    return buckets, waits


def test_charts_match_a_python_recomputation_and_add_up_to_the_figures(run: Runner) -> None:
    records = random_records(seed=20261202, count=1500)
    records.append(rec("edge-bin", at=50.0, duration_wait=10.0))  # 10 s is in the 10 to 20 bin
    records.append(rec("edge-slot", at=900.0))  # the first second of the second slot

    async def job(c: Container) -> tuple[Charts, list[GroupFigures], Charts]:
        acme, globex = await two_accounts(c)
        store = SqlCallRecords(c.engine)
        await store.add_many(acme, records)
        await store.add_many(globex, [replace(r, id_call="g" + r.id_call) for r in records[:300]])
        charts = await store.charts(acme, since=SINCE, until=UNTIL, bucket_seconds=900)
        figures = await store.figures(acme, since=SINCE, until=UNTIL, service_level_seconds=20)
        group_2 = await store.charts(
            acme, since=SINCE, until=UNTIL, bucket_seconds=3600, id_group=2
        )
        return charts, figures, group_2

    charts, figures, group_2 = run(job)
    buckets, waits = python_charts(records, SINCE, UNTIL, 900)
    assert charts.buckets == buckets
    assert charts.waits == waits
    shown = charts.to_json()
    assert len(shown["buckets"]) == 96  # a day of quarter hours, empty ones included
    assert shown["buckets"][1]["start"] == "2026-11-02T00:15:00.000Z"
    total = figures[-1]
    assert sum(sum(o for k, o in b.items() if k != "start") for b in shown["buckets"]) == (
        total.offered
    )
    for outcome in Outcome:
        assert sum(b[outcome.value] for b in shown["buckets"]) == getattr(total, outcome.value)
    assert [w["from"] for w in shown["wait"]] == [0, *WAIT_BINS]
    assert shown["wait"][-1]["to"] is None
    queued = [r for r in records if r.duration_wait > 0 or r.outcome is Outcome.ANSWERED]
    assert sum(w["calls"] for w in shown["wait"]) < len(queued)  # other days, outbound: out
    assert sum(w["calls"] for w in shown["wait"]) == sum(waits.values())
    only_2 = [r for r in records if r.id_group == 2]
    assert group_2.buckets == python_charts(only_2, SINCE, UNTIL, 3600)[0]


def test_operator_figures_count_answered_calls_both_ways(run: Runner) -> None:
    records = [
        rec("a1", id_op=7, duration_comm=60.0),
        rec("a2", id_op=7, duration_comm=30.5, direction="out", id_group=None),
        rec("a3", id_op=8, duration_comm=10.0),
        rec("m1", id_op=None, outcome=Outcome.MISSED, duration_comm=0.0),
        rec("x1", id_op=9, outcome=Outcome.ABANDONED, duration_comm=0.0),
        rec("old", id_op=7, at=-10.0),
    ]

    async def job(c: Container) -> tuple[list[OperatorFigures], list[OperatorFigures]]:
        acme, globex = await two_accounts(c)
        store = SqlCallRecords(c.engine)
        await store.add_many(acme, records)
        await store.add_many(globex, [rec("g1", id_op=7)])
        service = CallRecordService(store)
        return (
            await service.operator_figures(acme, since=SINCE, until=UNTIL),
            await service.operator_figures(globex, since=SINCE, until=UNTIL),
        )

    acme, globex = run(job)
    assert acme == [OperatorFigures(7, 2, 90.5), OperatorFigures(8, 1, 10.0)]
    assert acme[0].to_json() == {"id_op": 7, "answered": 2, "talk": 90.5}
    assert globex == [OperatorFigures(7, 1, 84.0)]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"until": SINCE}, "since must be before until"),
        ({"bucket_seconds": 59}, "bucket_seconds must be between 60 and 86400"),
        ({"bucket_seconds": 86401}, "bucket_seconds must be between 60 and 86400"),
        ({"bucket_seconds": 60, "until": SINCE + timedelta(days=3)}, "at most 3000 buckets"),
        ({"id_group": 0}, "id_group must be between 1 and"),
    ],
)
def test_charts_refuse_bad_arguments(filters: dict[str, Any], message: str) -> None:
    service = CallRecordService(UntouchedStore())
    arguments: dict[str, Any] = {"since": SINCE, "until": UNTIL, **filters}
    with pytest.raises(InvalidInput, match=message):
        asyncio.run(service.charts(1, **arguments))


# presence


def test_an_operators_presence_is_kept_and_replaced(run: Runner) -> None:
    later = SINCE + timedelta(minutes=5, microseconds=123456)

    async def job(c: Container) -> tuple[list[int], list[Presences]]:
        acme, globex = await two_accounts(c)
        ana = await c.directory.create_operator(acme, name="Ana", email="ana@acme.example")
        bob = await c.directory.create_operator(acme, name="Bob", email="bob@acme.example")
        gus = await c.directory.create_operator(globex, name="Gus", email="gus@globex.example")
        store = SqlCallRecords(c.engine)
        seen = []
        await store.set_presence(acme, ana.id, "online", SINCE)
        await store.set_presence(acme, bob.id, "break", SINCE)
        await store.set_presence(globex, gus.id, "busy", SINCE)
        seen.append(await store.presences(acme))
        await store.set_presence(acme, ana.id, "busy", later)
        seen.append(await store.presences(acme))
        # Another account's operator is not this account's to set; nor is a missing one.
        for operator_id in (gus.id, 10_000):
            with pytest.raises(NoSuchOperator):
                await store.set_presence(acme, operator_id, "offline", later)
        with pytest.raises(InvalidInput):
            await store.set_presence(acme, ana.id, "asleep", later)
        await c.directory.delete_operator(acme, bob.id)
        seen.append(await store.presences(acme))
        seen.append(await store.presences(globex))
        return [ana.id, bob.id, gus.id], seen

    (ana, bob, gus), (first, second, after_delete, globex) = run(job)
    assert first == {ana: ("online", SINCE), bob: ("break", SINCE)}
    assert second == {ana: ("busy", later), bob: ("break", SINCE)}
    assert second[ana][1].tzinfo is not None
    assert after_delete == {ana: ("busy", later)}
    assert globex == {gus: ("busy", SINCE)}


# JSON and CSV


def test_the_json_shape_follows_the_platform_api() -> None:
    record = rec("c1", at=1.0004, duration=90.12345, duration_wait=5.0006, ticket_id="T-1")
    shown = record_json(record)
    assert list(shown) == list(CSV_COLUMNS)
    assert shown["id_appel"] == shown["id_call"] == "c1"
    assert shown["date"] == "2026-11-02T00:00:01.000Z"
    assert shown["date_end"] == "2026-11-02T00:01:31.000Z"
    assert (shown["duration"], shown["duration_wait"]) == (90.123, 5.001)
    assert (shown["outcome"], shown["ended_by"]) == ("answered", "caller")
    assert shown["operators_offered"] == [7]
    json.dumps(shown, allow_nan=False)


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_csv_has_a_header_and_escapes_what_needs_it() -> None:
    record = StoredCallRecord.from_record(
        rec(
            "c1",
            caller_number='Dupont, "Jean"',
            ticket_id=None,
            variables={"note": "line 1\nline 2", "é": "ü"},
            operators_offered=(7, 9),
        )
    )
    text = records_to_csv([record])
    header, row = read_csv(text)
    assert tuple(header) == CSV_COLUMNS
    assert text.startswith("id_call,id_appel,date,date_end,direction,")
    assert text.endswith("\r\n")
    cells = dict(zip(header, row, strict=True))
    assert cells["caller_number"] == 'Dupont, "Jean"'
    assert cells["ticket_id"] == ""
    assert cells["id_group"] == "1"
    assert cells["duration_wait"] == "6.0"
    assert cells["operators_offered"] == "[7,9]"
    assert json.loads(cells["variables"]) == {"note": "line 1\nline 2", "é": "ü"}


def test_csv_cells_cannot_start_a_formula() -> None:
    dangerous = ['=HYPERLINK("http://x")', "+33612345678", "-1", "@SUM(A1)", "\tx", "\rx"]
    records = [
        StoredCallRecord.from_record(
            rec(f"c{i}", caller_number=value, disconnect_reason=value, ticket_id=value)
        )
        for i, value in enumerate(dangerous)
    ]
    rows = read_csv(records_to_csv([*records, StoredCallRecord.from_record(rec("safe"))]))
    header = rows[0]
    for value, row in zip(dangerous, rows[1:], strict=False):
        cells = dict(zip(header, row, strict=True))
        for column in ("caller_number", "disconnect_reason", "ticket_id"):
            assert cells[column] == "'" + value
    safe = dict(zip(header, rows[-1], strict=True))
    assert safe["caller_number"] == "33612345678"
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r)


# the use cases


class UntouchedStore:
    """A store that fails the test if asked anything: refused filters never reach storage."""

    def _asked(self) -> Any:
        raise AssertionError("the store was asked")

    async def add(self, account_id: int, record: CallRecord) -> None:
        self._asked()

    async def add_many(self, account_id: int, records: Sequence[CallRecord]) -> None:
        self._asked()

    async def query(self, account_id: int, **filters: Any) -> list[StoredCallRecord]:
        return self._asked()  # type: ignore[no-any-return]

    async def count(self, account_id: int, **filters: Any) -> int:
        return self._asked()  # type: ignore[no-any-return]

    async def figures(self, account_id: int, **filters: Any) -> list[GroupFigures]:
        return self._asked()  # type: ignore[no-any-return]

    async def operator_figures(self, account_id: int, **filters: Any) -> list[OperatorFigures]:
        return self._asked()  # type: ignore[no-any-return]

    async def charts(self, account_id: int, **filters: Any) -> Charts:
        return self._asked()  # type: ignore[no-any-return]

    async def by_ids(self, account_id: int, ids: Sequence[str]) -> list[StoredCallRecord]:
        return self._asked()  # type: ignore[no-any-return]

    async def set_presence(
        self, account_id: int, operator_id: int, presence: str, since: datetime
    ) -> None:
        self._asked()

    async def presences(self, account_id: int) -> dict[int, tuple[str, datetime]]:
        return self._asked()  # type: ignore[no-any-return]

    async def operator_tallies(
        self, account_id: int, *, since: datetime
    ) -> dict[int, OperatorTally]:
        return self._asked()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"until": SINCE}, "since must be before until"),
        ({"until": SINCE - timedelta(seconds=1)}, "since must be before until"),
        ({"until": SINCE + timedelta(days=31, seconds=1)}, "at most 31 days"),
        ({"since": datetime(2026, 11, 2)}, "must carry a time zone"),
        ({"limit": 0}, "limit must be between 1 and 1000"),
        ({"limit": 1001}, "limit must be between 1 and 1000"),
        ({"offset": -1}, "offset must be between 0 and"),
        ({"direction": "sideways"}, "direction must be 'in' or 'out'"),
        ({"outcome": "lost"}, "outcome must be one of: answered, abandoned"),
        ({"id_group": 0}, "id_group must be between 1 and 2147483647"),
        ({"id_op": 2**31}, "id_op must be between 1 and 2147483647"),
    ],
)
def test_records_refuse_bad_filters_before_asking_the_store(
    filters: dict[str, Any], message: str
) -> None:
    service = CallRecordService(UntouchedStore())
    arguments: dict[str, Any] = {"since": SINCE, "until": UNTIL, **filters}
    with pytest.raises(InvalidInput, match=message):
        asyncio.run(service.records(1, **arguments))
    if "limit" not in filters and "offset" not in filters:
        with pytest.raises(InvalidInput, match=message):
            asyncio.run(service.count(1, **arguments))


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"until": SINCE}, "since must be before until"),
        ({"until": SINCE + timedelta(days=32)}, "at most 31 days"),
        ({"service_level_seconds": -1}, "service_level_seconds must be between 0 and 3600"),
        ({"service_level_seconds": float("nan")}, "service_level_seconds must be between"),
        ({"service_level_seconds": 3601}, "service_level_seconds must be between"),
    ],
)
def test_figures_refuse_bad_arguments(filters: dict[str, Any], message: str) -> None:
    service = CallRecordService(UntouchedStore())
    arguments: dict[str, Any] = {"since": SINCE, "until": UNTIL, **filters}
    with pytest.raises(InvalidInput, match=message):
        asyncio.run(service.figures(1, **arguments))


def test_the_service_reads_through_the_store(run: Runner) -> None:
    async def job(c: Container) -> tuple[list[str], int, list[GroupFigures]]:
        acme, _ = await two_accounts(c)
        store = SqlCallRecords(c.engine)
        await store.add_many(acme, [rec("c1"), rec("c2", outcome=Outcome.MISSED, at=7200.0)])
        service = CallRecordService(store)
        until = SINCE + timedelta(days=31)  # the widest window allowed
        page = await service.records(acme, since=SINCE, until=until, outcome="missed", limit=1000)
        return (
            [r.id_call for r in page],
            await service.count(acme, since=SINCE, until=until, direction="in"),
            await service.figures(acme, since=SINCE, until=until, service_level_seconds=0),
        )

    ids, count, figures = run(job)
    assert ids == ["c2"]
    assert count == 2
    assert [(f.id_group, f.offered, f.answered_within) for f in figures] == [
        (1, 2, 0),
        (None, 2, 0),
    ]
