"""Live-call traces and orphans on the real stores (SQLite and PostgreSQL).

Traces are written by ``SqlLiveCalls.commit`` as the outbox does; ``LiveCalls`` closes those of
dead nodes: each once (two sweeping nodes never both close one call), never a live node's,
each with a record and a ``call.ended`` event on its account's stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import make_settings, postgres_database, run_on, seed_two_accounts
from voicemgmt.adapters.sql.live_calls import SqlLiveCalls
from voicemgmt.adapters.sql.tables import live_calls
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings
from voicemgmt.domain.routing.durable import FORMAT, call_of, orphan_record, trace_of
from voicemgmt.domain.routing.model import Call, CallState, Outcome, Side
from voicemgmt.services.live_calls import LiveCalls

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield make_settings(tmp_path)
        return
    with postgres_database() as url:
        yield make_settings(tmp_path, url)


def talking(call_id: str, at: float, operator: int) -> Call:
    call = Call(call_id, "in", "33612345678", "33170200200", at - 30, CallState.CONNECTED, 1)
    call.queued_at = None
    call.wait_seconds = 10.0
    call.offered_to = [operator]
    call.operator_id = call.answered_by = operator
    call.answered_at = call.talk_started = at - 20
    call.variables = {"order": "A-1"}
    return call


def waiting(call_id: str, at: float) -> Call:
    call = Call(call_id, "in", "33612345678", "33170200200", at - 5, CallState.QUEUED, 1)
    call.queued_at = at - 5
    return call


def test_a_trace_round_trips_and_closes_with_the_spans_up_to_the_end() -> None:
    at = T0.timestamp()
    call = talking("c1", at, 7)
    again = call_of(trace_of(call))
    assert again == call
    record = orphan_record(again, at + 5)
    assert (record.outcome, record.ended_by, record.disconnect_reason) == (
        Outcome.ANSWERED,
        Side.SYSTEM,
        "node_died",
    )
    assert (record.id_op, record.duration_comm, record.duration_wait) == (7, 25.0, 10.0)
    assert record.variables == {"order": "A-1"}
    queued = orphan_record(call_of(trace_of(waiting("c2", at))), at)
    assert (queued.outcome, queued.duration_wait, queued.id_op) == (Outcome.FAILED, 5.0, None)


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"format": FORMAT + 1},
        {"format": FORMAT, "id": "c1"},
        {**trace_of(waiting("c1", 0.0)), "state": "dancing"},
        {**trace_of(waiting("c1", 0.0)), "ringing": 5},
        {**trace_of(waiting("c1", 0.0)), "variables": ["a"]},
    ],
)
def test_an_unreadable_trace_is_refused_clearly(broken: dict[str, object]) -> None:
    from voicemgmt.domain.routing.durable import UnreadableTrace

    with pytest.raises(UnreadableTrace):
        call_of(broken)


def test_dead_nodes_calls_are_closed_once_and_live_nodes_calls_are_left(
    settings: Settings,
) -> None:
    acme, globex = seed_two_accounts(settings)

    async def job(container: Container) -> None:
        store = SqlLiveCalls(container.engine)
        at = T0.timestamp()
        await store.heartbeat("dead", T0)
        await store.heartbeat("alive", T0 + timedelta(minutes=5))
        dead_calls = {
            "d1": talking("d1", at, acme.id_agent),
            "d2": waiting("d2", at),
        }
        await store.commit(
            acme.id, "dead", [], {k: (trace_of(c), T0) for k, c in dead_calls.items()}
        )
        await store.commit(globex.id, "dead", [], {"d3": (trace_of(waiting("d3", at)), T0)})
        await store.commit(acme.id, "alive", [], {"a1": (trace_of(waiting("a1", at)), T0)})
        await store.commit(acme.id, "gone", [], {"g1": (trace_of(waiting("g1", at)), T0)})
        clock = Clock(T0 + timedelta(minutes=5))
        published: list[tuple[int, str]] = []
        bus = container.bus
        original = bus.publish_many

        async def spy(account_id, events, at):  # type: ignore[no-untyped-def]
            published.extend((account_id, kind) for kind, _ in events)
            return await original(account_id, events, at)

        bus.publish_many = spy  # type: ignore[method-assign]
        one = LiveCalls(store, bus, clock, "alive", dead_after=30)
        two = LiveCalls(store, bus, clock, "other", dead_after=30)
        closed = await asyncio.gather(one.sweep(), two.sweep())
        assert sum(closed) == 4  # d1, d2, d3 (dead: no beat for 5 min), g1 (never seen)
        async with container.engine.connect() as connection:
            left = (await connection.execute(live_calls.select())).all()
        assert [row.id_call for row in left] == ["a1"]
        records = {
            r.id_call: r for r in await container.call_records.by_ids(acme.id, ["d1", "d2", "g1"])
        }
        assert records["d1"].outcome is Outcome.ANSWERED
        assert records["d1"].ended_at == T0  # the dead node's last heartbeat
        assert records["d2"].outcome is Outcome.FAILED
        assert records["g1"].disconnect_reason == "node_died"
        assert sorted(published) == sorted(
            [(acme.id, "call.ended")] * 3 + [(globex.id, "call.ended")]
        )
        assert await one.sweep() == 0  # nothing twice

    run_on(settings, job)


def test_a_trace_whose_call_ended_in_the_same_delivery_is_not_kept(settings: Settings) -> None:
    acme, _ = seed_two_accounts(settings)

    async def job(container: Container) -> None:
        store = SqlLiveCalls(container.engine)
        at = T0.timestamp()
        await store.commit(acme.id, "n", [], {"c1": (trace_of(waiting("c1", at)), T0)})
        record = orphan_record(waiting("c1", at), at + 1, "normal")
        await store.commit(acme.id, "n", [record], {})
        async with container.engine.connect() as connection:
            assert (await connection.execute(live_calls.select())).all() == []
        assert [r.id_call for r in await container.call_records.by_ids(acme.id, ["c1"])] == ["c1"]

    run_on(settings, job)
