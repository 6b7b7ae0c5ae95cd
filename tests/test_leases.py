"""Leases with fencing numbers, in-process and in Redis: one holder at a time, by the store's
clock, and every new holding fenced above the earlier ones."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.coordination_support import Stores, stores_of
from voicemgmt.adapters.coordination.redis import RedisLeaseStore, fenced_script
from voicemgmt.domain.errors import InvalidInput
from voicemgmt.services.coordination import TRUST_FRACTION, LeaseStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["memory", "redis"])
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    yield from stores_of(request.param)


@pytest.fixture
def redis_stores() -> Iterator[Stores]:
    yield from stores_of("redis")


def test_a_held_lease_is_refused_to_everyone_else_until_released(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        leases = s.leases()
        first = await leases.acquire("42", "vm1", ttl=5)
        assert first is not None
        assert (first.key, first.holder) == ("42", "vm1")
        assert await leases.acquire("42", "vm2", ttl=5) is None
        # the holder itself too: another task, or its own previous life, must not share it
        assert await leases.acquire("42", "vm1", ttl=5) is None
        holder = await leases.holder("42")
        assert holder is not None
        assert (holder.holder, holder.fence) == ("vm1", first.fence)
        assert await leases.acquire("43", "vm2", ttl=5) is not None  # another key is free
        assert await leases.release(first)
        assert await leases.holder("42") is None
        second = await leases.acquire("42", "vm2", ttl=5)
        assert second is not None
        assert second.fence > first.fence

    stores.run(body)


def test_concurrent_acquirers_get_the_lease_one_at_a_time(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        leases = s.leases()
        inside, most_inside, fences = 0, 0, []

        async def contender(name: str) -> None:
            nonlocal inside, most_inside
            for _ in range(5):
                while (lease := await leases.acquire("busy", name, ttl=5)) is None:  # noqa: ASYNC110 (contending is the point)
                    await asyncio.sleep(0)
                inside += 1
                most_inside = max(most_inside, inside)
                fences.append(lease.fence)
                await asyncio.sleep(0.001)
                inside -= 1
                assert await leases.release(lease)

        await asyncio.gather(*(contender(f"vm{i}") for i in range(8)))
        assert most_inside == 1
        assert len(fences) == 40
        assert fences == sorted(set(fences))  # each holding fenced above every earlier one

    stores.run(body)


def test_two_processes_one_with_its_clock_an_hour_off_never_hold_the_lease_at_once(
    redis_stores: Stores,
) -> None:
    def contender(name: str, skew: float) -> subprocess.Popen[str]:
        args = [redis_stores.url, redis_stores.prefix, name, "15", str(skew)]
        return subprocess.Popen(
            [sys.executable, "-m", "tests.coordination_contender", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )

    processes = [contender("vm1", 0), contender("vm2", 3600)]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        results.append(json.loads(out))
    assert [r["most_inside"] for r in results] == [1, 1]
    fences = [f for r in results for f in r["fences"]]
    assert len(fences) == len(set(fences)) == 30
    assert all(r["fences"] == sorted(r["fences"]) for r in results)


def test_a_lease_not_renewed_expires_by_the_stores_clock_and_goes_to_another(
    stores: Stores,
) -> None:
    async def body(s: Stores) -> None:
        leases = s.leases()
        first = await leases.acquire("42", "vm1", ttl=0.8)
        assert first is not None
        assert await leases.acquire("42", "vm2", ttl=0.8) is None
        await asyncio.sleep(0.9)  # vm1 paused longer than the ttl
        assert await leases.holder("42") is None
        second = await leases.acquire("42", "vm2", ttl=5)
        assert second is not None
        assert second.fence > first.fence
        # vm1 wakes up: it cannot renew, its fence fails the check, its release is a no-op
        assert await leases.renew(first) is None
        assert not await leases.check(first)
        assert await leases.check(second)
        assert not await leases.release(first)
        holder = await leases.holder("42")
        assert holder is not None
        assert holder.holder == "vm2"

    stores.run(body)


def test_a_lapsed_holding_cannot_be_renewed_even_if_nobody_took_it(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        leases = s.leases()
        lease = await leases.acquire("42", "vm1", ttl=0.2)
        assert lease is not None
        await asyncio.sleep(0.3)
        assert await leases.renew(lease) is None
        again = await leases.acquire("42", "vm1", ttl=5)
        assert again is not None
        assert again.fence > lease.fence  # a new holding: what vm1 knew may be stale

    stores.run(body)


def test_renewing_keeps_the_lease_and_its_fence_past_the_first_ttl(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        leases = s.leases()
        lease = await leases.acquire("42", "vm1", ttl=0.8)
        assert lease is not None
        first = lease
        for _ in range(5):
            await asyncio.sleep(0.2)
            renewed = await leases.renew(lease)
            assert renewed is not None
            assert renewed.fence == first.fence
            assert renewed.expires_at > lease.expires_at
            lease = renewed
        assert await leases.acquire("42", "vm2", ttl=0.8) is None  # 1 s after, still held
        assert await leases.check(lease)

    stores.run(body)


def test_the_holder_trusts_its_lease_for_part_of_the_ttl_on_its_monotonic_clock(
    stores: Stores,
) -> None:
    async def body(s: Stores) -> None:
        leases = s.leases()
        before = time.monotonic()
        lease = await leases.acquire("42", "vm1", ttl=5)
        assert lease is not None
        after = time.monotonic()
        assert lease.trusted(after)
        # counted from before the request was sent, so never later than the store's expiry
        assert before + TRUST_FRACTION * 5 <= lease.trusted_until <= after + TRUST_FRACTION * 5
        assert not lease.trusted(lease.trusted_until)
        renewed = await leases.renew(lease)
        assert renewed is not None
        assert renewed.trusted_until >= lease.trusted_until

    stores.run(body)


def test_fences_grow_over_many_changes_of_holder(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        leases = s.leases()
        fences = []
        for i in range(30):
            lease = await leases.acquire("42", f"vm{i % 3}", ttl=5)
            assert lease is not None
            fences.append(lease.fence)
            assert await leases.release(lease)
        assert fences == sorted(set(fences))

    stores.run(body)


def test_a_node_clock_off_by_an_hour_neither_steals_nor_keeps_a_lease(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_time = time.time

    async def body(s: Stores) -> None:
        leases = s.leases()
        monkeypatch.setattr(time, "time", lambda: real_time() + 3600)  # far ahead
        first = await leases.acquire("42", "vm1", ttl=0.8)
        assert first is not None
        monkeypatch.setattr(time, "time", lambda: real_time() - 3600)  # far behind
        assert await leases.acquire("42", "vm2", ttl=0.8) is None  # not stolen
        assert await leases.check(first)
        monkeypatch.setattr(time, "time", lambda: real_time() + 7200)
        await asyncio.sleep(0.9)
        monkeypatch.setattr(time, "time", lambda: real_time() - 7200)
        assert await leases.renew(first) is None  # not kept past the ttl
        assert await leases.acquire("42", "vm2", ttl=0.8) is not None

    stores.run(body)


@pytest.mark.parametrize(
    ("key", "holder", "ttl"),
    [
        ("{42}", "vm1", 5),
        ("", "vm1", 5),
        ("k" * 201, "vm1", 5),
        ("42", "vm 1", 5),
        ("42", "", 5),
        ("42", "vm1", 0),
        ("42", "vm1", -1),
        ("42", "vm1", math.nan),
        ("42", "vm1", math.inf),
        ("42", "vm1", 10**9),
        ("42", "vm1", True),
        ("42", "vm1", "5"),
    ],
)
def test_a_bad_key_holder_or_ttl_is_refused_and_nothing_is_held(
    stores: Stores, key: str, holder: str, ttl: float
) -> None:
    async def body(s: Stores) -> None:
        leases: LeaseStore = s.leases()
        with pytest.raises(InvalidInput):
            await leases.acquire(key, holder, ttl)
        assert await leases.acquire("42", "vm2", ttl=5) is not None

    stores.run(body)


def test_a_fenced_redis_write_succeeds_only_while_the_lease_holds_with_that_fence(
    redis_stores: Stores,
) -> None:
    async def body(s: Stores) -> None:
        leases = s.leases()
        assert isinstance(leases, RedisLeaseStore)
        client = Redis.from_url(s.url)
        push = client.register_script(
            fenced_script(
                "if not lease_holds(KEYS[1], ARGV[1]) then"
                " return redis.error_reply('FENCED lease lost') end\n"
                "return redis.call('RPUSH', KEYS[2], ARGV[2])"
            )
        )
        log = s.prefix + "log:{42}"
        try:
            old = await leases.acquire("42", "vm1", ttl=0.8)
            assert old is not None
            assert await push(keys=[leases.lease_key("42"), log], args=[old.fence, "a"]) == 1
            await asyncio.sleep(0.9)
            new = await leases.acquire("42", "vm2", ttl=5)
            assert new is not None
            with pytest.raises(Exception, match="FENCED"):
                await push(keys=[leases.lease_key("42"), log], args=[old.fence, "stale"])
            assert await push(keys=[leases.lease_key("42"), log], args=[new.fence, "b"]) == 2
            assert await client.lrange(log, 0, -1) == [b"a", b"b"]
        finally:
            await client.aclose()

    redis_stores.run(body)
