"""Benchmark: what the coordination ports cost, in-process and on Redis (issue 13 groundwork).

Run::

    .venv/bin/python bench/coordination.py [--redis redis://127.0.0.1:6379/0]
                                           [--requests 2000] [--concurrency 1,16]
                                           [--renewals 5000]

1. **Request and answer.** Node ``vm1`` sends ``--requests`` requests (200-byte bodies) to
   ``vm2``, which answers each at once, ``--concurrency`` at a time: requests/s, round-trip
   p50 and p99, and the CPU seconds of this process per request (both nodes are in it), on the
   in-process messenger and on Redis. This is the floor under forwarding an input to the
   account's owner (issue 13 item 3).
2. **Lease renewals.** ``--renewals`` renewals of one lease, one after the other, then 50
   leases renewed side by side: renewals/s on Redis (each is one Lua script). A node renews
   each lease it holds every ttl / 3, so this bounds the leases a node can keep.

A benchmark never gates: it prints figures and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from redis.asyncio import Redis

from voicemgmt.adapters.coordination.memory import MemoryHub, MemoryMessenger
from voicemgmt.adapters.coordination.redis import RedisLeaseStore
from voicemgmt.adapters.coordination.redis_messenger import RedisMessenger
from voicemgmt.services.coordination import Messenger


async def answer_all(messenger: Messenger) -> None:
    async for message in messenger.messages():
        await messenger.respond(message, message.body)


async def requests(
    kind: str, url: str, prefix: str, count: int, concurrency: int
) -> tuple[float, float, float, float]:
    """(requests/s, p50 ms, p99 ms, CPU ms per request)."""
    one: Messenger
    two: Messenger
    if kind == "memory":
        hub = MemoryHub()
        one, two = MemoryMessenger(hub, "vm1"), MemoryMessenger(hub, "vm2")
    else:
        one = RedisMessenger(url, "vm1", key_prefix=prefix)
        two = RedisMessenger(url, "vm2", key_prefix=prefix)
    await one.start()
    await two.start()
    server = asyncio.create_task(answer_all(two))
    body = b"x" * 200
    latencies: list[float] = []
    remaining = count

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await one.request("vm2", "forward", body, answer_within=10)
            latencies.append(time.perf_counter() - started)

    try:
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await one.aclose()
        await two.aclose()
        await server
    quantiles = statistics.quantiles(latencies, n=100)
    return count / wall, quantiles[49] * 1e3, quantiles[98] * 1e3, cpu / count * 1e3


async def renewals(url: str, prefix: str, count: int) -> tuple[float, float]:
    """(renewals/s one after the other, renewals/s with 50 leases side by side)."""
    leases = RedisLeaseStore(url, key_prefix=prefix)
    try:
        lease = await leases.acquire("bench", "vm1", ttl=60)
        assert lease is not None
        started = time.perf_counter()
        for _ in range(count):
            renewed = await leases.renew(lease)
            assert renewed is not None
            lease = renewed
        sequential = count / (time.perf_counter() - started)
        held = [await leases.acquire(f"bench-{i}", "vm1", ttl=60) for i in range(50)]

        async def keep(index: int) -> None:
            current = held[index]
            for _ in range(count // 50):
                assert current is not None
                current = await leases.renew(current)

        started = time.perf_counter()
        await asyncio.gather(*(keep(i) for i in range(50)))
        side_by_side = (count // 50 * 50) / (time.perf_counter() - started)
        return sequential, side_by_side
    finally:
        await leases.aclose()


async def main(args: argparse.Namespace) -> None:
    prefix = f"vmbench:{uuid.uuid4().hex[:8]}:"
    print(f"request and answer, {args.requests} requests of 200 bytes")
    print(
        f"{'messenger':<10} {'at once':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'CPU ms/req':>11}"
    )
    try:
        for kind in ("memory", "redis"):
            for concurrency in args.concurrency:
                rate, p50, p99, cpu = await requests(
                    kind, args.redis, prefix, args.requests, concurrency
                )
                print(
                    f"{kind:<10} {concurrency:>7} {rate:>9.0f} {p50:>8.2f} {p99:>8.2f} {cpu:>11.3f}"
                )
        sequential, side_by_side = await renewals(args.redis, prefix, args.renewals)
        print(
            f"lease renewals on Redis: {sequential:.0f}/s one after the other, "
            f"{side_by_side:.0f}/s with 50 leases side by side"
        )
    finally:
        client = Redis.from_url(args.redis)
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--concurrency", type=lambda s: [int(n) for n in s.split(",")], default=[1, 16]
    )
    parser.add_argument("--renewals", type=int, default=5000)
    asyncio.run(main(parser.parse_args()))
