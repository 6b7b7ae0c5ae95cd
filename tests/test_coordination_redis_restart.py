"""Coordination while Redis dies, hangs and comes back empty: clear errors, then recovery.

Each test runs its own ``redis-server`` (no persistence) on a free port, so that stopping it
disturbs nothing else.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from tests.coordination_support import RedisServer, private_redis
from voicemgmt.adapters.coordination.redis import RedisLeaseStore, RedisRegistry, redis_client
from voicemgmt.adapters.coordination.redis_messenger import RedisMessenger
from voicemgmt.domain.errors import CoordinationUnavailable
from voicemgmt.services.coordination import Message, Messenger


@pytest.fixture
def server() -> Iterator[RedisServer]:
    yield from private_redis()


async def received(messenger: Messenger) -> Message:
    async for message in messenger.messages():
        return message
    raise AssertionError("the messenger closed")


async def eventually_delivered(sender: Messenger, receiver: Messenger, broadcast: bool) -> None:
    """Send until one arrives: the receiver's readers reconnect on their own, with backoff."""
    reading = asyncio.create_task(received(receiver))
    async with asyncio.timeout(10):
        while not reading.done():
            try:
                if broadcast:
                    await sender.broadcast("probe", b"again")
                else:
                    await sender.send(receiver.node, "probe", b"again")
            except CoordinationUnavailable:
                pass
            await asyncio.wait([reading], timeout=0.2)
    assert (await reading).body == b"again"


def test_redis_killed_gives_clear_errors_then_everything_recovers_when_it_is_back(
    server: RedisServer,
) -> None:
    async def body() -> None:
        registry = RedisRegistry(server.url)
        leases = RedisLeaseStore(server.url)
        one, two = RedisMessenger(server.url, "vm1"), RedisMessenger(server.url, "vm2")
        try:
            await one.start()
            await two.start()
            member = await registry.join("vm1", ttl=30)
            lease = await leases.acquire("42", "vm1", ttl=30)
            assert lease is not None
            await one.send("vm2", "hello", b"before")
            assert (await received(two)).body == b"before"

            server.kill()  # Redis dies (and its data with it: no persistence)
            for attempt in (
                registry.members(),
                registry.heartbeat(member),
                leases.acquire("43", "vm1", ttl=5),
                leases.renew(lease),
                leases.check(lease),
                one.send("vm2", "hello", b"lost"),
                one.broadcast("hello", b"lost"),
                one.request("vm2", "forward", b"lost", answer_within=5),
            ):
                with pytest.raises(CoordinationUnavailable) as caught:
                    await attempt
                assert "Redis did not answer" in caught.value.message
                assert caught.value.error_id == "coordination_unavailable"

            await asyncio.sleep(0.5)  # the messengers' readers fail and retry meanwhile
            server.start()  # back, empty
            assert await registry.heartbeat(member) is None  # the registration was lost
            again = await registry.join("vm1", ttl=30)
            assert [m.incarnation for m in await registry.members()] == [again.incarnation]
            assert await leases.renew(lease) is None
            assert not await leases.check(lease)
            new = await leases.acquire("42", "vm2", ttl=30)
            assert new is not None
            # the fence counter was lost with the data, yet the new fence is above the old one
            assert new.fence > lease.fence
            await eventually_delivered(one, two, broadcast=False)
            await eventually_delivered(two, one, broadcast=True)

            async def serve() -> None:
                async for message in two.messages():
                    if message.reply_to is not None:  # not a probe sent twice above
                        await two.respond(message, b"answered")
                        return

            serving = asyncio.create_task(serve())
            assert await one.request("vm2", "forward", b"x", answer_within=5) == b"answered"
            await serving
        finally:
            await one.aclose()
            await two.aclose()
            await registry.aclose()
            await leases.aclose()

    asyncio.run(body())


def test_a_hung_redis_is_a_clear_error_after_the_socket_timeout_not_a_hang(
    server: RedisServer,
) -> None:
    async def body() -> None:
        client = redis_client(server.url, socket_timeout=0.5)
        leases = RedisLeaseStore(client)
        try:
            assert await leases.acquire("42", "vm1", ttl=30) is not None
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                async with asyncio.timeout(10):  # a hang would fail here, not pass
                    with pytest.raises(CoordinationUnavailable):
                        await leases.acquire("42", "vm2", ttl=30)
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            assert await leases.acquire("42", "vm2", ttl=30) is None  # still vm1's
        finally:
            await client.aclose()

    asyncio.run(body())
