"""The Redis messenger: nodes' inboxes, broadcasts, and requests with their answers.

Keys, after the prefix (``vm:`` by default; the node name in braces is a cluster hash tag, so
a node's two lists share a slot and one blocking read waits on both):

- ``vm:inbox:{<node>}`` — a list: messages and requests for the node, oldest first;
- ``vm:replies:{<node>}`` — a list: answers to the node's requests (read before the inbox);
- ``vm:answer:<request id>`` — an answer kept ``ANSWER_TTL_SECONDS`` for repeated requests;
- channel ``vm:broadcast`` — broadcasts (pub/sub: at most once, to the nodes listening).

An entry is ``<deadline>\\n<JSON header>\\n<body>``: the deadline (µs, Redis's clock; 0 for
none) is stamped by the script that pushes it, from ``TIME``, so no node clock decides when a
request is stale. A list expires ``INBOX_IDLE_SECONDS`` after its last push (a dead node's
inbox does not grow for ever) and takes at most ``MAX_INBOX`` entries (a push to a full one is
refused with ``NodeDidNotAnswer``). A node empties its own lists when it starts: what was sent
to its previous life is stale. An entry that cannot be read is logged and skipped.

The reader waits with ``BLPOP`` on a connection of its own, for at most ``block_seconds`` at a
time (well under the client's socket timeout), so a stop is prompt and a lost connection is
retried; it stops reading the inbox (answers still flow) while ``LOCAL_BUFFER`` messages wait to
be taken by ``messages()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from voicemgmt.adapters.coordination import (
    ANSWER_TTL_SECONDS,
    MessengerCore,
    answer,
    checked_message,
)
from voicemgmt.adapters.coordination.redis import _NOW, redis_client, translated
from voicemgmt.domain.errors import CoordinationUnavailable, NodeDidNotAnswer
from voicemgmt.domain.ownership import check_node_name
from voicemgmt.services.coordination import Message, check_ttl

log = logging.getLogger(__name__)

MAX_INBOX = 10_000
INBOX_IDLE_SECONDS = 60
LOCAL_BUFFER = 1_000
_TAKE = 100  # entries taken from a list at once
_RETRY_FIRST, _RETRY_MAX = 0.05, 2.0
_CLOSE_MARGIN = 6.0  # seconds past block_seconds before a stopping reader is cancelled

# KEYS: list. ARGV: max length, idle ttl ms, deadline after µs (0: none), entry.
_PUSH = (
    _NOW
    + """
local n = redis.call('LLEN', KEYS[1])
if n >= tonumber(ARGV[1]) then return -1 end
local deadline = 0
if tonumber(ARGV[3]) > 0 then deadline = now_us() + tonumber(ARGV[3]) end
redis.call('RPUSH', KEYS[1], string.format('%d', deadline) .. '\\n' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n + 1
"""
)

# KEYS: replies, inbox. ARGV: how many of each (0: none of the inbox).
# Returns {now µs, number of replies, replies..., inbox entries...}.
_TAKE_SCRIPT = (
    _NOW
    + """
local replies = redis.call('LPOP', KEYS[1], ARGV[1]) or {}
local inbox = {}
if tonumber(ARGV[2]) > 0 then inbox = redis.call('LPOP', KEYS[2], ARGV[2]) or {} end
local out = {string.format('%d', now_us()), #replies}
for _, v in ipairs(replies) do table.insert(out, v) end
for _, v in ipairs(inbox) do table.insert(out, v) end
return out
"""
)


def encode(message: Message) -> bytes:
    header = {"k": message.kind, "f": message.sender, "i": message.id}
    if message.lane is not None:
        header["l"] = message.lane
    if message.reply_to is not None:
        header["r"] = message.reply_to
    if message.broadcast:
        header["b"] = "1"
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + message.body


def decode(entry: bytes) -> tuple[int, Message]:
    """(deadline µs, message) of an entry; ``ValueError`` if it is not one."""
    deadline, header_line, body = entry.split(b"\n", 2)
    header = json.loads(header_line)
    if not isinstance(header, dict):
        raise ValueError("the header is not an object")
    fields: dict[str, str | None] = {}
    for name in ("k", "f", "i", "l", "r", "b"):
        value = header.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"header field {name} is not a string")
        fields[name] = value
    kind, sender, message_id = fields["k"], fields["f"], fields["i"]
    if not kind or not sender or not message_id:
        raise ValueError("the header lacks a kind, sender or id")
    message = Message(kind, body, sender, message_id, fields["l"], fields["r"], fields["b"] == "1")
    return int(deadline), message


class RedisMessenger:
    """A :class:`~voicemgmt.services.coordination.Messenger` through Redis, for node ``node``.

    ``redis``: a URL (the messenger makes and closes its client) or a ``redis.asyncio.Redis``
    whose socket timeout exceeds ``block_seconds`` by a few seconds (``redis_client`` does).
    """

    def __init__(
        self,
        redis: Redis | str,
        node: str,
        *,
        key_prefix: str = "vm:",
        block_seconds: float = 1.0,
        answer_ttl: float = ANSWER_TTL_SECONDS,
    ) -> None:
        self.node = check_node_name(node)
        self._owns_client = isinstance(redis, str)
        self.client = redis_client(redis) if isinstance(redis, str) else redis
        self.key_prefix = key_prefix
        self.block_seconds = block_seconds
        self.answer_ttl = answer_ttl
        self.channel = f"{key_prefix}broadcast"
        self._push = self.client.register_script(_PUSH)
        self._take = self.client.register_script(_TAKE_SCRIPT)
        self._core = MessengerCore(node, self._answer_again)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._reader_id: int | None = None  # the blocking reader's connection, to unblock it
        self._pubsub: PubSub | None = None
        # Unreadable entries skipped; repeats answered from kept answers.
        self.dropped_unreadable = self.repeats_answered = 0

    def inbox_key(self, node: str) -> str:
        return f"{self.key_prefix}inbox:{{{node}}}"

    def replies_key(self, node: str) -> str:
        return f"{self.key_prefix}replies:{{{node}}}"

    def answer_key(self, request_id: str) -> str:
        return f"{self.key_prefix}answer:{request_id}"

    async def start(self) -> None:
        """Empty this node's lists (left by a previous life), listen to broadcasts, read."""
        await translated(
            self.client.delete(self.inbox_key(self.node), self.replies_key(self.node)), "start"
        )
        self._pubsub = await self._subscribe()
        self._tasks = [
            asyncio.create_task(self._read_lists(), name=f"vm-messenger-{self.node}"),
            asyncio.create_task(self._read_broadcasts(), name=f"vm-broadcasts-{self.node}"),
        ]

    async def _subscribe(self) -> PubSub:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await translated(pubsub.subscribe(self.channel), "subscribe")
        except BaseException:
            await pubsub.aclose()
            raise
        return pubsub

    async def _push_entry(self, key: str, entry: bytes, within_us: int, to: str) -> None:
        args: list[Any] = [MAX_INBOX, INBOX_IDLE_SECONDS * 1000, within_us, entry]
        length = await translated(self._push(keys=[key], args=args), "send")
        if int(length) < 0:
            raise NodeDidNotAnswer(
                f"node {to}'s inbox is full ({MAX_INBOX} messages): it is not reading",
                node=to,
                reason="inbox_full",
            )

    async def send(self, to: str, kind: str, body: bytes, *, lane: str | None = None) -> None:
        message = checked_message(to, kind, body, sender=self.node, lane=lane)
        await self._push_entry(self.inbox_key(to), encode(message), 0, to)

    async def broadcast(self, kind: str, body: bytes) -> None:
        message = checked_message(None, kind, body, sender=self.node, broadcast=True)
        await translated(self.client.publish(self.channel, b"0\n" + encode(message)), "broadcast")

    async def request(
        self,
        to: str,
        kind: str,
        body: bytes,
        *,
        answer_within: float,
        request_id: str | None = None,
        lane: str | None = None,
    ) -> bytes:
        message = checked_message(
            to, kind, body, sender=self.node, lane=lane, request_id=request_id, reply_to=self.node
        )
        within = check_ttl(answer_within)
        with self._core.waiting(message) as future:
            await self._push_entry(
                self.inbox_key(to), encode(message), max(1, round(within * 1e6)), to
            )
            return await answer(future, to, message.id, within)

    async def respond(self, request: Message, body: bytes) -> None:
        self._core.responding(request, body)
        assert request.reply_to is not None
        # Kept first: a repeat arriving from now on is answered from it.
        await translated(
            self.client.set(self.answer_key(request.id), body, ex=round(self.answer_ttl)),
            "respond",
        )
        await self._reply(request.reply_to, request.id, body)

    async def _answer_again(self, request: Message, body: bytes) -> None:
        assert request.reply_to is not None
        with contextlib.suppress(CoordinationUnavailable):  # the caller will try again
            await self._reply(request.reply_to, request.id, body)

    async def _reply(self, to: str, request_id: str, body: bytes) -> None:
        reply = Message("answer", body, self.node, request_id)
        with contextlib.suppress(NodeDidNotAnswer):  # its caller has given up: nobody reads
            await self._push_entry(self.replies_key(to), encode(reply), 0, to)

    def messages(self) -> AsyncIterator[Message]:
        return self._core.messages()

    @property
    def dropped_late(self) -> int:
        """Requests dropped because their deadline passed before they were taken."""
        return self._core.dropped_late

    async def aclose(self) -> None:
        """Stop reading (a blocked read is unblocked, or ends within ``block_seconds``), end
        ``messages()`` and fail the requests still waiting."""
        self._core.close()
        self._stopping.set()
        with contextlib.suppress(RedisError, OSError):
            if self._reader_id is not None:
                await self.client.client_unblock(self._reader_id)
            if self._pubsub is not None:  # its reply wakes the broadcasts' reader
                await self._pubsub.unsubscribe()
        if self._tasks:
            # Reads are never cancelled mid-command; only if Redis hangs past its socket
            # timeout are the readers cancelled.
            _, late = await asyncio.wait(self._tasks, timeout=self.block_seconds + _CLOSE_MARGIN)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            self._pubsub = None
        if self._owns_client:
            await self.client.aclose()

    async def _read_lists(self) -> None:
        connection = self.client.client()  # blocked reads must not hold a pooled connection
        keys = [self.replies_key(self.node), self.inbox_key(self.node)]
        retry_in = _RETRY_FIRST
        try:
            while not self._stopping.is_set():
                try:
                    if self._reader_id is None:
                        self._reader_id = int(await connection.client_id())
                    room = LOCAL_BUFFER - self._core.backlog
                    reply = await self._take(keys=keys, args=[_TAKE, min(_TAKE, max(room, 0))])
                    now, replies = int(reply[0]), int(reply[1])
                    # Redis's clock less this process's monotonic one, off by at most a round
                    # trip: dates what BLPOP takes without asking Redis the time again.
                    offset = now - round(time.monotonic() * 1e6)
                    entries = reply[2:]
                    if entries:
                        taken = [_bytes(entry) for entry in entries]
                        await self._handle(now, taken[:replies], taken[replies:])
                    else:
                        waited = keys if room > 0 else keys[:1]
                        popped = await connection.blpop(waited, timeout=self.block_seconds)
                        if popped is not None:
                            key, entry = _text(popped[0]), _bytes(popped[1])
                            at = round(time.monotonic() * 1e6) + offset
                            if key == keys[0]:
                                await self._handle(at, [entry], [])
                            else:
                                await self._handle(at, [], [entry])
                    retry_in = _RETRY_FIRST
                except Exception as exc:  # the reader must outlive any failure: retry
                    _log_failure(f"messenger of node {self.node}", exc)
                    self._reader_id = None  # a new connection has a new id
                    await self._pause(retry_in)
                    retry_in = min(retry_in * 2, _RETRY_MAX)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await connection.aclose()

    def _decoded(self, entries: list[bytes]) -> Iterator[tuple[int, Message]]:
        for entry in entries:
            try:
                yield decode(entry)
            except ValueError as exc:  # logged and skipped: the next entries are not lost
                self.dropped_unreadable += 1
                log.warning(
                    "node %s skips an unreadable message (%s): %r", self.node, exc, entry[:80]
                )

    async def _handle(self, now: int, replies: list[bytes], inbox: list[bytes]) -> None:
        for _, message in self._decoded(replies):
            self._core.answered(message.id, message.body)
        taken: list[tuple[Message, int]] = []
        for deadline, message in self._decoded(inbox):
            if deadline and now > deadline:
                self._core.dropped_late += 1
                log.info("node %s drops request %s, taken past its deadline", self.node, message.id)
            else:
                taken.append((message, deadline))
        requests = [m for m, _ in taken if m.reply_to is not None]
        kept: dict[str, bytes] = {}
        if requests:
            found = await self.client.mget([self.answer_key(m.id) for m in requests])
            kept = {m.id: _bytes(a) for m, a in zip(requests, found, strict=True) if a is not None}
        local_now = time.monotonic()
        for message, deadline in taken:  # in the order sent
            answer = kept.get(message.id) if message.reply_to is not None else None
            if answer is None:
                # The deadline moves to this process's monotonic clock: what is left of it.
                local = local_now + (deadline - now) / 1e6 if deadline else None
                self._core.offer(message, local)
            else:  # a repeat of a request already answered: answer it again, once only
                assert message.reply_to is not None
                self.repeats_answered += 1
                await self._reply(message.reply_to, message.id, answer)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _read_broadcasts(self) -> None:
        retry_in = _RETRY_FIRST
        while not self._stopping.is_set():
            try:
                if self._pubsub is None:
                    self._pubsub = await self._subscribe()
                item = await self._pubsub.get_message(timeout=self.block_seconds)
                retry_in = _RETRY_FIRST
            except Exception as exc:  # the reader must outlive any failure: retry
                _log_failure(f"broadcasts to node {self.node}", exc)
                if self._pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await self._pubsub.aclose()
                    self._pubsub = None
                await self._pause(retry_in)
                retry_in = min(retry_in * 2, _RETRY_MAX)
                continue
            if item is None or item.get("type") != "message":
                continue
            for _, message in self._decoded([_bytes(item["data"])]):
                if message.sender != self.node:
                    self._core.offer(message)


_OUT_OF_REACH = (RedisConnectionError, RedisTimeoutError, CoordinationUnavailable, OSError)


def _log_failure(what: str, exc: Exception) -> None:
    if isinstance(exc, _OUT_OF_REACH):
        log.warning("%s: Redis is out of reach, trying again: %s", what, exc)
    else:
        log.exception("%s failed, trying again", what)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
