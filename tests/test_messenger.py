"""The messenger between nodes, in-process and through Redis: inboxes in order, broadcasts,
requests answered once, and bad input refused before anything is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator

import pytest
from redis.asyncio import Redis

from tests.coordination_support import Stores, stores_of
from voicemgmt.adapters.coordination.redis_messenger import RedisMessenger, encode
from voicemgmt.domain.errors import InvalidInput, MessageTooLarge, NodeDidNotAnswer
from voicemgmt.services.coordination import MAX_MESSAGE_BYTES, Lanes, Message, Messenger


@pytest.fixture(params=["memory", "redis"])
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    yield from stores_of(request.param)


@pytest.fixture
def redis_stores() -> Iterator[Stores]:
    yield from stores_of("redis")


async def nodes(s: Stores, *names: str) -> list[Messenger]:
    return [await s.messenger(name) for name in names]


async def next_of(messages: AsyncGenerator[Message]) -> Message:
    return await anext(messages)


async def take(messenger: Messenger, count: int) -> list[Message]:
    taken: list[Message] = []
    async for message in messenger.messages():
        taken.append(message)
        if len(taken) == count:
            break
    return taken


async def serve(messenger: Messenger, answer: bytes | None = None) -> AsyncGenerator[Message]:
    """Answer every request (with ``answer``, or its body upper-cased); yield what came."""
    async for message in messenger.messages():
        if message.reply_to is not None:
            await messenger.respond(message, answer or message.body.upper())
        yield message


def test_messages_from_one_sender_arrive_in_the_order_sent(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        a, b, c = await nodes(s, "vm1", "vm2", "vm3")
        for i in range(100):
            await a.send("vm2", "note", f"a{i}".encode())
            await c.send("vm2", "note", f"c{i}".encode(), lane="account:7")
        got = await take(b, 200)
        assert [m.body for m in got if m.sender == "vm1"] == [f"a{i}".encode() for i in range(100)]
        assert [m.body for m in got if m.sender == "vm3"] == [f"c{i}".encode() for i in range(100)]
        assert {m.lane for m in got if m.sender == "vm3"} == {"account:7"}
        assert all(m.kind == "note" and m.reply_to is None for m in got)

    stores.run(body)


def test_a_request_gets_the_receivers_answer(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        a, b = await s.messenger("vm1"), await s.messenger("vm2")
        served = serve(b)
        receiving = asyncio.create_task(next_of(served))
        answer = await a.request("vm2", "forward", b'{"op": "answer"}', answer_within=5)
        assert answer == b'{"OP": "ANSWER"}'
        request = await receiving
        assert (request.sender, request.reply_to, request.kind) == ("vm1", "vm1", "forward")
        await served.aclose()

    stores.run(body)


def test_a_request_nobody_answers_fails_after_its_time_and_is_not_applied_later(
    stores: Stores,
) -> None:
    async def body(s: Stores) -> None:
        a, b = await s.messenger("vm1"), await s.messenger("vm2")
        with pytest.raises(NodeDidNotAnswer) as caught:
            await a.request("vm2", "forward", b"late", answer_within=0.2, request_id="r-1")
        assert caught.value.details == {
            "node": "vm2",
            "request_id": "r-1",
            "timeout_seconds": 0.2,
        }
        assert caught.value.error_id == "node_did_not_answer"
        # vm2 reads only now: the request's deadline (stamped when it was pushed, a moment
        # after the caller started waiting) has passed, it is dropped, not applied
        await asyncio.sleep(0.1)
        await a.send("vm2", "note", b"next")
        (message,) = await take(b, 1)
        assert message.body == b"next"
        assert b.dropped_late == 1

    stores.run(body)


def test_a_repeated_request_is_answered_from_the_kept_answer_even_by_another_node(
    stores: Stores,
) -> None:
    async def body(s: Stores) -> None:
        a, b, c = await nodes(s, "vm1", "vm2", "vm3")
        served = serve(b, answer=b"applied once")
        receiving = asyncio.create_task(next_of(served))
        first = await a.request("vm2", "forward", b"x", answer_within=5, request_id="op-7")
        await receiving
        again = await a.request("vm2", "forward", b"x", answer_within=5, request_id="op-7")
        # the caller retried towards another node (the owner changed): the answer is shared
        elsewhere = await a.request("vm3", "forward", b"x", answer_within=5, request_id="op-7")
        assert first == again == elsewhere == b"applied once"
        await a.send("vm2", "note", b"after")
        await a.send("vm3", "note", b"after")
        assert (await anext(served)).body == b"after"  # the repeat was not delivered
        assert [m.body for m in await take(c, 1)] == [b"after"]
        await served.aclose()

    stores.run(body)


def test_a_retry_after_a_timeout_is_handled_once_and_answers_the_caller(
    stores: Stores,
) -> None:
    async def body(s: Stores) -> None:
        a, b = await s.messenger("vm1"), await s.messenger("vm2")
        with pytest.raises(NodeDidNotAnswer):  # vm2 is busy: vm1 gives up
            await a.request("vm2", "forward", b"x", answer_within=0.2, request_id="op-8")
        retry = asyncio.create_task(
            a.request("vm2", "forward", b"x", answer_within=5, request_id="op-8")
        )
        # vm2 reads again: one copy is handled (the first, if taken just within its deadline,
        # else the retry), and its answer reaches the caller waiting now
        (request,) = await take(b, 1)
        assert request.id == "op-8"
        await b.respond(request, b"done")
        assert await retry == b"done"
        await a.send("vm2", "note", b"marker")
        assert [m.body for m in await take(b, 1)] == [b"marker"]  # the other copy was not

    stores.run(body)


def test_a_copy_of_a_request_in_hand_is_not_delivered_again(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        a, b, c = await nodes(s, "vm1", "vm2", "vm3")
        first = asyncio.create_task(
            a.request("vm2", "forward", b"x", answer_within=5, request_id="op-9")
        )
        (request,) = await take(b, 1)
        # the same operation, retried from another node while vm2 is still on it
        with pytest.raises(NodeDidNotAnswer):
            await c.request("vm2", "forward", b"x", answer_within=0.3, request_id="op-9")
        await b.respond(request, b"done once")
        assert await first == b"done once"
        # asked again later, it is answered from the kept answer, still not handled again
        assert await c.request("vm2", "forward", b"x", answer_within=5, request_id="op-9") == (
            b"done once"
        )
        await a.send("vm2", "note", b"marker")
        assert [m.body for m in await take(b, 1)] == [b"marker"]

    stores.run(body)


def test_a_broadcast_reaches_every_other_node(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        a, b, c = await nodes(s, "vm1", "vm2", "vm3")
        await a.broadcast("members.changed", b"vm4")
        for node in (b, c):
            (message,) = await take(node, 1)
            assert (message.kind, message.body, message.broadcast) == (
                "members.changed",
                b"vm4",
                True,
            )
        await a.send("vm1", "note", b"own")  # vm1 did not get its own broadcast
        assert [m.body for m in await take(a, 1)] == [b"own"]

    stores.run(body)


@pytest.mark.parametrize(
    ("to", "kind", "body", "options"),
    [
        ("vm 2", "note", b"x", {}),
        ("{vm2}", "note", b"x", {}),
        ("vm2", "", b"x", {}),
        ("vm2", "k" * 65, b"x", {}),
        ("vm2", "a\nb", b"x", {}),
        ("vm2", "note", "text", {}),
        ("vm2", "note", b"x", {"lane": ""}),
        ("vm2", "note", b"x", {"lane": "l" * 201}),
    ],
)
def test_a_bad_message_is_refused_before_anything_is_sent(
    stores: Stores, to: str, kind: str, body: bytes, options: dict[str, str]
) -> None:
    async def main(s: Stores) -> None:
        a, b = await s.messenger("vm1"), await s.messenger("vm2")
        with pytest.raises(InvalidInput):
            await a.send(to, kind, body, **options)
        await a.send("vm2", "note", b"next")
        assert [m.body for m in await take(b, 1)] == [b"next"]

    stores.run(main)


def test_an_oversized_message_or_bad_request_id_is_refused(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        a, b = await s.messenger("vm1"), await s.messenger("vm2")
        with pytest.raises(MessageTooLarge) as caught:
            await a.send("vm2", "note", b"x" * (MAX_MESSAGE_BYTES + 1))
        assert caught.value.details["max_size"] == MAX_MESSAGE_BYTES
        for request_id in ("", "a b", "r" * 101, "{x}"):
            with pytest.raises(InvalidInput):
                await a.request("vm2", "f", b"x", answer_within=1, request_id=request_id)
        for within in (0, -1, float("nan")):
            with pytest.raises(InvalidInput):
                await a.request("vm2", "f", b"x", answer_within=within)
        await a.send("vm2", "note", b"x" * MAX_MESSAGE_BYTES)  # the limit itself passes
        (message,) = await take(b, 1)
        assert len(message.body) == MAX_MESSAGE_BYTES
        with pytest.raises(InvalidInput):  # only a request can be answered
            await b.respond(message, b"no")

    stores.run(body)


def test_unreadable_entries_in_an_inbox_or_on_the_channel_are_skipped(
    redis_stores: Stores,
) -> None:
    async def body(s: Stores) -> None:
        a, b = await s.messenger("vm1"), await s.messenger("vm2")
        assert isinstance(b, RedisMessenger)
        client = Redis.from_url(s.url)
        try:
            valid = encode(Message("note", b"ok", "vm9", "m1"))
            for junk in [
                b"",
                b"garbage",
                b"0\nnot json\nbody",
                b"0\n[1,2]\n",
                b'0\n{"k": 1, "f": "vm1", "i": "x"}\n',
                b'0\n{"k": "note"}\n',
                b"x\n" + valid,
                b"\xff\xfe\n\xff\n\xff",
            ]:
                await client.rpush(b.inbox_key("vm2"), junk)
                await client.rpush(b.replies_key("vm2"), junk)
                await client.publish(b.channel, junk)
            await a.send("vm2", "note", b"after the junk")
            assert [m.body for m in await take(b, 1)] == [b"after the junk"]
            assert b.dropped_unreadable >= 16
        finally:
            await client.aclose()

    redis_stores.run(body)


def test_lanes_keep_each_lanes_order_and_run_lanes_side_by_side(stores: Stores) -> None:
    async def body(s: Stores) -> None:
        a, b = await s.messenger("vm1"), await s.messenger("vm2")
        handled: list[tuple[str | None, bytes]] = []
        slow_started = asyncio.Event()
        release_slow = asyncio.Event()

        async def handle(message: Message) -> None:
            if message.body == b"slow":
                slow_started.set()
                await release_slow.wait()
            if message.body == b"boom":
                raise RuntimeError("a failing handler")
            handled.append((message.lane, message.body))

        lanes = Lanes(handle)
        runner = asyncio.create_task(lanes.run(b))
        await a.send("vm2", "in", b"slow", lane="acct:1")
        await a.send("vm2", "in", b"after slow", lane="acct:1")
        await a.send("vm2", "in", b"boom", lane="acct:2")
        await a.send("vm2", "in", b"other lane", lane="acct:2")
        await slow_started.wait()
        while (("acct:2", b"other lane")) not in handled:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # lane 2 went on while lane 1 waited
        assert ("acct:1", b"after slow") not in handled
        release_slow.set()
        while ("acct:1", b"after slow") not in handled:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        assert [h for h in handled if h[0] == "acct:1"] == [
            ("acct:1", b"slow"),
            ("acct:1", b"after slow"),
        ]
        await b.aclose()
        await runner

    stores.run(body)


def test_closing_a_messenger_ends_its_messages_and_fails_its_waiting_requests(
    stores: Stores,
) -> None:
    async def body(s: Stores) -> None:
        a, _b = await s.messenger("vm1"), await s.messenger("vm2")
        waiting = asyncio.create_task(a.request("vm2", "f", b"x", answer_within=30))
        reading = asyncio.create_task(take(a, 1))
        await asyncio.sleep(0.05)
        async with asyncio.timeout(3):
            await a.aclose()
            assert await reading == []
            with pytest.raises(Exception, match="closed"):
                await waiting

    stores.run(body)
