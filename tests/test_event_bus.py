"""The event bus: one gapless, resumable stream per account, in-process and on Redis.

Every behaviour runs on both implementations; Redis is the real server at 127.0.0.1:6379
(skipped when absent, except under CI=true where that is a failure). Each test drives its own
event loop with ``asyncio.run`` and ends by checking that no task was left behind.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from tests.support import IN_CI
from voicemgmt.adapters.events.memory import InMemoryEventBus
from voicemgmt.adapters.events.redis import RedisEventBus
from voicemgmt.domain.errors import InvalidInput
from voicemgmt.services.events import (
    DEFAULT_BUFFER_SIZE,
    Event,
    EventBus,
    ResumeTooOld,
    Retention,
    SubscriberTooSlow,
    Subscription,
    operators_concerned,
)

pytestmark = pytest.mark.arbitrary_events  # made-up events: the bus, not the catalogue

REDIS_URL = os.environ.get("VM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
ACME, GLOBEX = 1, 2


class Bus(EventBus, Protocol):
    def subscriber_count(self, account_id: int | None = None) -> int: ...


class MakeBus(Protocol):
    def __call__(
        self,
        *,
        retention: Retention | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        batch_size: int = 500,
    ) -> Bus: ...


Body = Callable[[MakeBus], Awaitable[None]]


class Harness:
    """Runs a test body on a fresh event loop with buses of one kind, then checks for leaks."""

    def __init__(self, kind: str, key_prefix: str) -> None:
        self.kind = kind
        self.key_prefix = key_prefix

    def run(self, body: Body) -> None:
        asyncio.run(self._main(body))

    async def _main(self, body: Body) -> None:
        buses: list[Bus] = []

        def make(
            *,
            retention: Retention | None = None,
            buffer_size: int = DEFAULT_BUFFER_SIZE,
            batch_size: int = 500,
        ) -> Bus:
            bus: Bus
            if self.kind == "memory":
                bus = InMemoryEventBus(retention=retention, buffer_size=buffer_size)
            else:
                bus = RedisEventBus(
                    REDIS_URL,
                    retention=retention,
                    key_prefix=self.key_prefix,
                    buffer_size=buffer_size,
                    batch_size=batch_size,
                )
            buses.append(bus)
            return bus

        try:
            async with asyncio.timeout(10):
                await body(make)
        finally:
            for bus in buses:
                await bus.aclose()
        assert asyncio.all_tasks() == {asyncio.current_task()}


def redis_reachable() -> None:
    url = urlsplit(REDIS_URL)
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), 1).close()
    except OSError as exc:
        message = f"Redis is not reachable at {REDIS_URL}: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: Redis tests must run)")
        pytest.skip(message)


async def delete_keys(pattern: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=pattern)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def buses(request: pytest.FixtureRequest) -> Iterator[Harness]:
    prefix = f"vmtest:{uuid.uuid4().hex[:12]}:"
    if request.param == "redis":
        redis_reachable()
    yield Harness(request.param, prefix)
    if request.param == "redis":
        asyncio.run(delete_keys(prefix + "*"))


@pytest.fixture
def redis_buses() -> Iterator[Harness]:
    prefix = f"vmtest:{uuid.uuid4().hex[:12]}:"
    redis_reachable()
    yield Harness("redis", prefix)
    asyncio.run(delete_keys(prefix + "*"))


async def take(subscription: Subscription, count: int) -> list[Event]:
    events = []
    async for event in subscription:
        events.append(event)
        if len(events) == count:
            break
    return events


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait for something another task or node brings about (Redis gives no hook to await)."""
    async with asyncio.timeout(3):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def publish_numbered(bus: Bus, account_id: int, count: int, at: datetime = T0) -> None:
    for number in range(count):
        await bus.publish(account_id, "test.numbered", {"n": number}, at)


def seqs(events: list[Event]) -> list[int]:
    return [event.seq for event in events]


def test_sequence_numbers_start_at_1_per_account_and_have_no_gaps(buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        bus = make()
        assert await bus.last_seq(ACME) == 0
        published = []
        for number in range(5):
            published.append(await bus.publish(ACME, "call.offered", {"n": number}, T0))
            if number % 2:
                published.append(await bus.publish(GLOBEX, "call.offered", {"n": number}, T0))
        assert seqs([e for e in published if e.account_id == ACME]) == [1, 2, 3, 4, 5]
        assert seqs([e for e in published if e.account_id == GLOBEX]) == [1, 2]
        assert (await bus.last_seq(ACME), await bus.last_seq(GLOBEX)) == (5, 2)

    buses.run(body)


def test_publish_many_takes_one_contiguous_block_in_order(buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        bus = make()
        items = [("operator.status_changed", {"i": i}) for i in range(3)]
        blocks = [asyncio.create_task(bus.publish_many(ACME, items, T0)) for _ in range(10)]
        singles = [
            asyncio.create_task(bus.publish(ACME, "call.offered", {}, T0)) for _ in range(10)
        ]
        await asyncio.gather(*blocks, *singles)
        assert await bus.publish_many(ACME, [], T0) == []
        all_seqs = [single.result().seq for single in singles]
        for task in blocks:
            block = task.result()
            first = block[0].seq
            assert seqs(block) == [first, first + 1, first + 2]
            assert [dict(event.data) for event in block] == [{"i": 0}, {"i": 1}, {"i": 2}]
            all_seqs += seqs(block)
        assert sorted(all_seqs) == list(range(1, 41))
        assert await bus.last_seq(ACME) == 40

    buses.run(body)


def test_replay_hands_over_to_live_without_gap_or_duplicate(buses: Harness) -> None:
    """Randomized: subscriptions resume from random positions while events keep coming."""
    rng = random.Random(20240501)

    async def body(make: MakeBus) -> None:
        bus = make(batch_size=7)  # replays from Redis then span several reads
        for account_id in range(100, 120):
            before, during = rng.randint(0, 30), rng.randint(1, 60)
            await publish_numbered(bus, account_id, before)
            published: dict[int, Event] = {}

            async def publish(
                account_id: int = account_id,
                during: int = during,
                published: dict[int, Event] = published,
            ) -> None:
                left = during
                while left:
                    size = min(left, rng.randint(1, 4))
                    items = [("test.burst", {"left": left - i}) for i in range(size)]
                    for event in await bus.publish_many(account_id, items, T0):
                        published[event.seq] = event
                    left -= size
                    for _ in range(rng.randint(0, 3)):
                        await asyncio.sleep(0)

            after = rng.randint(0, before)
            publisher = asyncio.create_task(publish())
            for _ in range(rng.randint(0, 5)):
                await asyncio.sleep(0)
            async with bus.subscribe(account_id, after=after) as subscription:
                received = await take(subscription, before + during - after)
            await publisher
            assert seqs(received) == list(range(after + 1, before + during + 1))
            assert all(published[e.seq] == e for e in received if e.seq > before)

    buses.run(body)


def test_an_account_never_sees_another_accounts_events(buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        bus = make()
        await publish_numbered(bus, GLOBEX, 3)
        async with bus.subscribe(ACME, after=0) as acme, bus.subscribe(GLOBEX) as globex:
            await bus.publish(GLOBEX, "call.offered", {"who": "globex"}, T0)
            await bus.publish(ACME, "call.offered", {"who": "acme"}, T0)
            (seen_by_acme,) = await take(acme, 1)
            (seen_by_globex,) = await take(globex, 1)
        assert (seen_by_acme.account_id, seen_by_acme.seq, seen_by_acme.data) == (
            ACME,
            1,
            {"who": "acme"},
        )
        assert (seen_by_globex.account_id, seen_by_globex.seq) == (GLOBEX, 4)

    buses.run(body)


def test_a_subscription_without_a_position_gets_only_live_events(buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        bus = make()
        await publish_numbered(bus, ACME, 3)
        async with bus.subscribe(ACME) as subscription:
            await bus.publish(ACME, "call.offered", {"live": True}, T0)
            (event,) = await take(subscription, 1)
        assert (event.seq, event.data) == (4, {"live": True})

    buses.run(body)


def test_resuming_from_before_the_kept_events_is_too_old(buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        bus = make(retention=Retention(max_events=5))
        await publish_numbered(bus, ACME, 12)
        with pytest.raises(ResumeTooOld):
            async with bus.subscribe(ACME, after=6):
                pass
        async with bus.subscribe(ACME, after=7) as subscription:
            assert seqs(await take(subscription, 5)) == [8, 9, 10, 11, 12]
        assert bus.subscriber_count() == 0

    buses.run(body)


def test_events_older_than_the_maximum_age_are_no_longer_kept(buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        bus = make(retention=Retention(max_age=timedelta(minutes=1)))
        await publish_numbered(bus, ACME, 3, at=T0)
        await bus.publish(ACME, "call.offered", {}, T0 + timedelta(minutes=2))
        with pytest.raises(ResumeTooOld):
            async with bus.subscribe(ACME, after=2):
                pass
        async with bus.subscribe(ACME, after=3) as subscription:
            assert seqs(await take(subscription, 1)) == [4]

    buses.run(body)


def test_trimming_by_age_keeps_the_newest_events_as_one_unbroken_run(buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        bus = make(retention=Retention(max_age=timedelta(minutes=1)))
        await bus.publish_many(ACME, [("call.offered", {})] * 150, T0)
        await bus.publish_many(ACME, [("call.ended", {})] * 150, T0 + timedelta(seconds=30))
        await bus.publish(ACME, "call.offered", {}, T0 + timedelta(seconds=75))
        with pytest.raises(ResumeTooOld):
            async with bus.subscribe(ACME, after=149):
                pass
        async with bus.subscribe(ACME, after=150) as subscription:
            assert seqs(await take(subscription, 151)) == list(range(151, 302))

    buses.run(body)


@pytest.mark.parametrize("after", [4, -1])
def test_resuming_from_a_position_that_never_existed_is_refused(buses: Harness, after: int) -> None:
    async def body(make: MakeBus) -> None:
        bus = make()
        await publish_numbered(bus, ACME, 3)
        subscription = bus.subscribe(ACME, after=after)
        with pytest.raises(InvalidInput):
            await anext(subscription)
        assert bus.subscriber_count() == 0

    buses.run(body)


def test_a_slow_subscriber_is_ended_without_holding_up_anyone(buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        bus = make(buffer_size=4)
        received: list[Event] = []

        def caught_up(count: int) -> Callable[[], bool]:
            return lambda: len(received) == count

        async def keep_up(subscription: Subscription) -> None:
            async for event in subscription:
                received.append(event)

        async with bus.subscribe(ACME) as slow, bus.subscribe(ACME) as fast:
            reader = asyncio.create_task(keep_up(fast))
            for number in range(1, 21):
                async with asyncio.timeout(1):  # publishing never waits for a reader
                    await bus.publish(ACME, "call.offered", {"n": number}, T0)
                await eventually(caught_up(number))
            await eventually(lambda: bus.subscriber_count(ACME) == 1)
            with pytest.raises(SubscriberTooSlow):
                await anext(slow)
            with pytest.raises(StopAsyncIteration):
                await anext(slow)
        await reader
        assert seqs(received) == list(range(1, 21))

    buses.run(body)


def test_closing_a_subscription_while_it_is_read_releases_it(buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        bus = make()
        subscription = bus.subscribe(ACME, after=0)
        received: list[Event] = []

        async def read() -> None:
            async for event in subscription:
                received.append(event)

        reader = asyncio.create_task(read())
        await bus.publish(ACME, "call.offered", {}, T0)
        await eventually(lambda: len(received) == 1)
        await subscription.aclose()
        async with asyncio.timeout(1):
            await reader  # the waiting reader simply stops
        assert bus.subscriber_count() == 0
        assert asyncio.all_tasks() == {asyncio.current_task()}

    buses.run(body)


def test_leaving_a_subscription_early_releases_it(buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        bus = make()
        await publish_numbered(bus, ACME, 3)
        async with bus.subscribe(ACME, after=0) as subscription:
            async for _event in subscription:
                break
            assert bus.subscriber_count(ACME) == 1
        assert bus.subscriber_count() == 0
        assert asyncio.all_tasks() == {asyncio.current_task()}
        with pytest.raises(StopAsyncIteration):
            await anext(subscription)

    buses.run(body)


def test_closing_the_bus_ends_its_subscriptions(buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        bus = make()
        async with bus.subscribe(ACME) as subscription:
            reader = asyncio.create_task(take(subscription, 1))
            await asyncio.sleep(0.01)
            await bus.aclose()
            assert await reader == []
        with pytest.raises(StopAsyncIteration):
            await anext(bus.subscribe(ACME, after=0))

    buses.run(body)


def test_data_round_trips_as_json_with_unicode(buses: Harness) -> None:
    data = {
        "caller": "Zoë Ångström 张伟",
        "note": '☎ \u2028 "quoted" \\ back',
        "nested": {"list": [1, 2.5, None, True, "🎧"], "empty": {}},
    }

    async def body(make: MakeBus) -> None:
        bus = make()
        async with bus.subscribe(ACME) as live:
            published = await bus.publish(ACME, "call.offered", data, T0)
            (delivered,) = await take(live, 1)
        async with bus.subscribe(ACME, after=0) as replay:
            (replayed,) = await take(replay, 1)
        assert published == delivered == replayed
        assert replayed.data == data
        assert replayed.to_json() == {
            "seq": 1,
            "kind": "call.offered",
            "at": "2024-05-01T09:00:00Z",
            "data": data,
        }

    buses.run(body)


def test_publishing_refuses_naive_times_and_non_json_data(buses: Harness) -> None:
    bad_data: list[Any] = [{"when": T0}, {"ratio": math.nan}, ["not", "a", "mapping"]]

    async def body(make: MakeBus) -> None:
        bus = make()
        with pytest.raises(ValueError, match="timezone-aware"):
            await bus.publish(ACME, "call.offered", {}, datetime(2024, 5, 1, 9, 0))
        for data in bad_data:
            with pytest.raises((TypeError, ValueError)):
                await bus.publish(ACME, "call.offered", data, T0)
        assert await bus.last_seq(ACME) == 0

    buses.run(body)


def test_event_times_are_delivered_in_utc(buses: Harness) -> None:
    paris = timezone(timedelta(hours=2))

    async def body(make: MakeBus) -> None:
        bus = make()
        async with bus.subscribe(ACME) as subscription:
            await bus.publish(ACME, "call.offered", {}, datetime(2024, 5, 1, 11, 0, 0, 1, paris))
            (event,) = await take(subscription, 1)
        assert event.at == datetime(2024, 5, 1, 9, 0, 0, 1, UTC)
        assert event.at.utcoffset() == timedelta(0)
        assert event.to_json()["at"] == "2024-05-01T09:00:00.000001Z"

    buses.run(body)


def test_two_nodes_publishing_at_once_share_one_gapless_order(redis_buses: Harness) -> None:
    async def body(make: MakeBus) -> None:
        nodes = [make(), make()]
        per_node = 60

        async def publish_from(node: int) -> None:
            bus = nodes[node]
            for number in range(0, per_node, 3):
                if number % 2:
                    items = [(f"node{node}.block", {"n": number + i}) for i in range(3)]
                    await bus.publish_many(ACME, items, T0)
                else:
                    for i in range(3):
                        await bus.publish(ACME, f"node{node}.single", {"n": number + i}, T0)

        subscriptions = [nodes[0].subscribe(ACME), nodes[1].subscribe(ACME)]
        for subscription in subscriptions:
            await subscription.__aenter__()
        try:
            readers = [asyncio.create_task(take(s, 2 * per_node)) for s in subscriptions]
            await asyncio.gather(publish_from(0), publish_from(1))
            seen_on_0, seen_on_1 = await asyncio.gather(*readers)
        finally:
            for subscription in subscriptions:
                await subscription.aclose()
        assert seqs(seen_on_0) == list(range(1, 2 * per_node + 1))
        assert seen_on_0 == seen_on_1
        for node in (0, 1):
            numbers = [e.data["n"] for e in seen_on_0 if e.kind.startswith(f"node{node}.")]
            assert numbers == list(range(per_node))

    redis_buses.run(body)


def test_an_event_as_json_leaves_out_the_account() -> None:
    event = Event(ACME, 7, "token.revoked", T0 + timedelta(milliseconds=5), {"id": 3})
    assert event.to_json() == {
        "seq": 7,
        "kind": "token.revoked",
        "at": "2024-05-01T09:00:00.005000Z",
        "data": {"id": 3},
    }


# --- an operator's own stream -----------------------------------------------------------------


def operator_event(rng: random.Random, operators: int) -> tuple[str, dict[str, Any]]:
    """A random event of one of the kinds that concern operators, or of none."""
    op = rng.randint(1, operators)
    other = rng.randint(1, operators)
    choice = rng.randrange(6)
    if choice == 0:
        return "operator.status", {"id_op": op, "status": "online"}
    if choice == 1:
        return "call.offered", {"id_call": f"c{rng.random()}", "id_op": op}
    if choice == 2:
        return "call.transferred", {"from_op": op, "to_op": other, "to_group": None}
    if choice == 3:
        record = {"id_op": rng.choice([None, op]), "operators_offered": [op, other]}
        return "call.ended", {"record": record}
    if choice == 4:
        return "session.revoked", {"token": "f", "user_type": "agent", "id_agent": op}
    return "call.queued", {"id_call": "c", "id_group": 3}  # an account-wide event


def for_operator(events: list[Event], operator: int) -> list[Event]:
    return [e for e in events if operator in operators_concerned(e.kind, e.data)]


def test_an_operator_subscription_gets_exactly_their_events_in_order(buses: Harness) -> None:
    """Randomized: live and resumed operator subscriptions while events keep coming."""
    rng = random.Random(20261202)

    async def body(make: MakeBus) -> None:
        bus = make(batch_size=7)
        for account_id in range(200, 212):
            before = [operator_event(rng, 4) for _ in range(rng.randint(0, 40))]
            published = await bus.publish_many(account_id, before, T0)
            operator = rng.randint(1, 4)
            after = rng.randint(0, len(published))
            live = bus.subscribe(account_id, operator=operator)
            resumed = bus.subscribe(account_id, after=after, operator=operator)
            everything = bus.subscribe(account_id)
            for subscription in (live, resumed, everything):
                await subscription.__aenter__()
            try:
                during = []
                for _ in range(rng.randint(1, 8)):
                    items = [operator_event(rng, 4) for _ in range(rng.randint(1, 5))]
                    during += await bus.publish_many(account_id, items, T0)
                    await asyncio.sleep(0)
                marker = await bus.publish(account_id, "call.offered", {"id_op": operator}, T0)
                during.append(marker)
                got_live = await take(live, len(for_operator(during, operator)))
                expected_resumed = for_operator(published[after:] + during, operator)
                got_resumed = await take(resumed, len(expected_resumed))
                got_all = await take(everything, len(during))
            finally:
                for subscription in (live, resumed, everything):
                    await subscription.aclose()
            assert got_live == for_operator(during, operator)
            assert got_resumed == expected_resumed
            assert got_all == during

    buses.run(body)


def test_an_operator_subscription_is_not_woken_by_other_operators_events(
    buses: Harness,
) -> None:
    async def body(make: MakeBus) -> None:
        bus = make(buffer_size=3)  # a woken subscriber would overflow at once
        async with bus.subscribe(ACME, operator=1) as mine:
            for n in range(50):
                await bus.publish(ACME, "operator.status", {"id_op": 2, "n": n}, T0)
                await bus.publish(ACME, "call.queued", {"n": n}, T0)
            await bus.publish(ACME, "operator.status", {"id_op": 1}, T0)
            (event,) = await take(mine, 1)
            assert event.seq == 101
            assert bus.subscriber_count(ACME) == 1

    buses.run(body)


def test_an_operator_subscription_whose_events_were_trimmed_unread_ends_too_slow(
    redis_buses: Harness,
) -> None:
    """On Redis, a block larger than what is kept is trimmed before the feed reads it: an
    operator's subscription cannot see that gap by itself, so the feed ends it."""

    async def body(make: MakeBus) -> None:
        bus = make(retention=Retention(max_events=5))
        async with bus.subscribe(ACME, operator=7) as mine:
            items = [("call.offered", {"id_op": 7, "n": n}) for n in range(50)]
            await bus.publish_many(ACME, items, T0)
            with pytest.raises(SubscriberTooSlow):
                await take(mine, 1)

    redis_buses.run(body)


def test_operators_concerned_reads_only_well_formed_ids() -> None:
    assert operators_concerned("call.offered", {"id_op": 4}) == (4,)
    assert operators_concerned("call.transferred", {"from_op": 4, "to_op": None}) == (4,)
    record = {"id_op": 5, "operators_offered": [4, 5]}
    assert sorted(operators_concerned("call.ended", {"record": record})) == [4, 5, 5]
    revoked = {"token": "f", "user_type": "agent", "id_agent": 9}
    assert operators_concerned("session.revoked", revoked) == (9,)
    assert operators_concerned("session.revoked", {**revoked, "user_type": "admin"}) == ()
    malformed: list[tuple[str, dict[str, Any]]] = [
        ("call.offered", {"id_op": "4"}),
        ("call.offered", {"id_op": True}),
        ("call.offered", {}),
        ("call.ended", {"record": "x"}),
        ("call.ended", {"record": {"operators_offered": "45", "id_op": 4.0}}),
        ("call.queued", {"id_op": 4}),
        ("unknown.kind", {"id_op": 4}),
    ]
    for kind, data in malformed:
        assert operators_concerned(kind, data) == (), (kind, data)


def test_an_event_frame_is_its_json_encoded_once() -> None:
    event = Event(ACME, 7, "call.offered", T0, {"caller": "Zoë"})
    frame = event.frame()
    assert json.loads(frame) == event.to_json()
    assert "Zoë" in frame  # not \u-escaped
    assert event.frame() is frame
    assert event == Event(ACME, 7, "call.offered", T0, {"caller": "Zoë"})
