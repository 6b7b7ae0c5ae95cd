"""One process contending for a Redis lease, for tests/test_coordination_leases.py.

``python -m tests.coordination_contender URL PREFIX NAME ROUNDS SKEW_SECONDS`` takes the lease
``contended`` ROUNDS times; each time it holds it, it increments ``<PREFIX>inside`` (which must
then be 1: nobody else inside), keeps it a moment, decrements it and releases. Its wall clock
is moved by SKEW_SECONDS first: it must make no difference. Prints one JSON line: the fences
it got and the largest count it saw inside.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from redis.asyncio import Redis

from voicemgmt.adapters.coordination.redis import RedisLeaseStore


async def contend(url: str, prefix: str, name: str, rounds: int) -> dict[str, object]:
    leases = RedisLeaseStore(url, key_prefix=prefix)
    client = Redis.from_url(url)
    fences: list[int] = []
    most_inside = 0
    try:
        while len(fences) < rounds:
            lease = await leases.acquire("contended", name, ttl=10)
            if lease is None:
                await asyncio.sleep(0.001)
                continue
            inside = int(await client.incr(prefix + "inside"))
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.002)
            await client.decr(prefix + "inside")
            fences.append(lease.fence)
            assert await leases.release(lease)
    finally:
        await client.aclose()
        await leases.aclose()
    return {"name": name, "fences": fences, "most_inside": most_inside}


def main() -> None:
    url, prefix, name, rounds, skew = sys.argv[1:6]
    real_time = time.time
    time.time = lambda: real_time() + float(skew)  # this node's clock is off
    print(json.dumps(asyncio.run(contend(url, prefix, name, int(rounds)))))


if __name__ == "__main__":
    main()
