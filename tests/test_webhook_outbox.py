"""The webhook outbox shared by several nodes (two engines on one database): each delivery is
claimed by one node at a time, a call's deliveries one after another, and writing the outbox
twice (two nodes copying the same stream) stores each event once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import make_settings, run_async
from voicemgmt.adapters.secret_box import SecretBox
from voicemgmt.adapters.sql.engine import create_engine
from voicemgmt.adapters.sql.webhooks import SqlWebhooks
from voicemgmt.bootstrap import build
from voicemgmt.domain.webhooks import Claimed, Outcome

LEASE = timedelta(seconds=30)


def rows(account_id: int, subscription_id: int, calls: int, per_call: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    found = []
    seq = 0
    for n in range(per_call):
        for c in range(calls):
            seq += 1
            found.append(
                {
                    "delivery_id": str(uuid.uuid4()),
                    "subscription_id": subscription_id,
                    "account_id": account_id,
                    "stream_epoch": 0,
                    "seq": seq,
                    "event_kind": "call.held",
                    "order_key": f"call:c{c}",
                    "body": f'{{"call":"c{c}","n":{n}}}',
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "expires_at": now + timedelta(hours=1),
                    "created_at": now,
                }
            )
    return found


Sent = list[tuple[str, Claimed]]
Nodes = tuple[SqlWebhooks, SqlWebhooks, int, list[AsyncEngine]]


async def two_nodes(tmp_path: Path, database_url: str) -> Nodes:
    settings = make_settings(tmp_path, database_url)
    container = build(settings)
    await container.start()
    try:
        account = await container.directory.create_account(
            login="acme", name="Acme", password="password-1"
        )
        await container.webhooks.allow_private_targets(account.id, True)
        hook = await container.webhooks.create(account.id, url="https://127.0.0.1/")
    finally:
        await container.close()
    box = SecretBox(b"k" * 32, "webhook secrets")
    engines = [create_engine(settings.effective_database_url, pool_size=5) for _ in range(2)]
    return SqlWebhooks(engines[0], box), SqlWebhooks(engines[1], box), hook.id, engines


async def disposed(engines: list[AsyncEngine]) -> None:
    for engine in engines:
        await engine.dispose()


def test_two_nodes_never_claim_the_same_delivery_and_keep_call_order(
    tmp_path: Path, database_url: str
) -> None:
    async def main() -> tuple[Sent, int]:
        a, b, hook, engines = await two_nodes(tmp_path, database_url)
        try:
            return await deliver_all(a, b, hook)
        finally:
            await disposed(engines)

    async def deliver_all(
        a: SqlWebhooks, b: SqlWebhooks, hook: int
    ) -> tuple[list[tuple[str, Claimed]], int]:
        await a.record(1, 0, 200, rows(1, hook, calls=20, per_call=10))
        sent: list[tuple[str, Claimed]] = []
        in_flight: set[str] = set()

        async def node(name: str, store: SqlWebhooks) -> None:
            idle = 0
            while idle < 5:
                claimed = await store.claim(datetime.now(UTC), LEASE, 7)
                if not claimed:
                    idle += 1
                    await asyncio.sleep(0.01)
                    continue
                idle = 0
                for item in claimed:
                    key = item.body.split('"')[3]
                    assert key not in in_flight, "two deliveries of one call at once"
                    in_flight.add(key)
                    sent.append((name, item))
                await asyncio.sleep(0.005)  # the attempts
                now = datetime.now(UTC)
                outcomes = [Outcome(c, now, True, 1, 200, None, None) for c in claimed]
                for item in claimed:
                    in_flight.discard(item.body.split('"')[3])
                await store.finish(outcomes, timedelta(days=3))

        await asyncio.gather(node("a", a), node("b", b))
        return sent, await a.pending_count()

    sent, pending = run_async(main)
    ids = [item.delivery_id for _, item in sent]
    assert len(ids) == len(set(ids)) == 200
    assert pending == 0
    assert {name for name, _ in sent} == {"a", "b"}  # both took part
    by_call: dict[str, list[int]] = {}
    for _, item in sent:
        call = item.body.split('"')[3]
        by_call.setdefault(call, []).append(int(item.body.rsplit(":", 1)[1].rstrip("}")))
    assert all(steps == list(range(10)) for steps in by_call.values())


def test_copying_the_same_events_twice_stores_them_once(tmp_path: Path, database_url: str) -> None:
    async def main() -> tuple[int, tuple[int, int]]:
        a, b, hook, engines = await two_nodes(tmp_path, database_url)
        try:
            batch = rows(1, hook, calls=3, per_call=3)
            again = [{**row, "delivery_id": str(uuid.uuid4())} for row in batch]
            await a.position(1)
            await a.record(1, 0, 9, batch)
            await b.record(1, 0, 6, again[:6])  # a node behind: nothing new, no step back
            return await a.pending_count(), await b.position(1)
        finally:
            await disposed(engines)

    pending, position = run_async(main)
    assert pending == 9
    assert position == (0, 9)


def test_an_expired_lease_lets_another_node_try_again(tmp_path: Path, database_url: str) -> None:
    async def main() -> tuple[list[Claimed], list[Claimed], list[Claimed]]:
        a, b, hook, engines = await two_nodes(tmp_path, database_url)
        try:
            await a.record(1, 0, 1, rows(1, hook, calls=1, per_call=1))
            now = datetime.now(UTC)
            first = await a.claim(now, LEASE, 10)
            meanwhile = await b.claim(now + LEASE / 2, LEASE, 10)
            after_expiry = await b.claim(now + LEASE * 2, LEASE, 10)
            return first, meanwhile, after_expiry
        finally:
            await disposed(engines)

    first, meanwhile, after_expiry = run_async(main)
    assert len(first) == 1
    assert meanwhile == []
    assert [c.delivery_id for c in after_expiry] == [first[0].delivery_id]
