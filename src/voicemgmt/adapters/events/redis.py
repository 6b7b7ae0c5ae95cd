"""The Redis event bus: each account's stream shared by several nodes.

Keys (after the configurable prefix, ``vm:`` by default; the account id in braces is a cluster
hash tag, so both keys of an account live on one shard):

- ``vm:events:{42}`` — a Redis Stream of the kept events, entry id ``{seq}-0``, fields ``t``
  (``at`` in microseconds since the epoch), ``k`` (kind) and ``d`` (data as JSON);
- ``vm:seq:{42}`` — the account's latest sequence number.

Publishing runs one Lua script that takes a block of numbers from the counter, appends the
events and trims the stream, atomically: nodes publishing at once still make one gapless order.
Trimming is exact (``MAXLEN``, then age), always from the oldest end.

Delivery is positional, so it does not depend on timing. On each node, one *feed* task per
account with local subscribers follows the stream with ``XREAD BLOCK`` and offers each event to
the subscribers' inboxes. A subscription first reads what it must replay straight from the
stream (``XRANGE`` in batches), then takes live events from its inbox, skipping those at or
below its position; should it see a gap (it joined while the feed lagged, or the feed reconnected),
it reads the missing events from the stream. Finding them trimmed means ``ResumeTooOld`` when
starting and ``SubscriberTooSlow`` later.

A subscription for one operator gets from the feed only the events that concern them, so it
cannot tell a gap from the events that were not for it. It relies on the feed instead: an
inbox joined when the feed had read up to *n* is offered every later event it is for, since
the feed reads the stream positionally; the subscription first reads the stream past *n*
itself, and should the feed ever find events trimmed before it read them, it ends those
subscriptions with ``SubscriberTooSlow``.

Redis must not evict these keys (``maxmemory-policy noeviction``). Each feed holds one
connection of the client's pool, blocked for up to ``block_ms`` at a time (the client's
``socket_timeout``, if any, must be longer), and is stopped with ``CLIENT UNBLOCK``, never
cancelled mid-command. Feeds retry lost connections; failures of the commands a publisher or a
subscription runs itself reach their caller as ``redis.exceptions.RedisError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from voicemgmt.adapters.events import (
    Audience,
    Inbox,
    check_after,
    checked_kind,
    concerns,
    decode_data,
    encode_data,
    normalized_at,
    resume_too_old,
    too_slow,
)
from voicemgmt.services.events import DEFAULT_BUFFER_SIZE, Event, Retention

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_RETRY_FIRST, _RETRY_MAX = 0.05, 2.0  # seconds between a feed's attempts to reconnect
_UNBLOCK_FIRST, _UNBLOCK_MAX = 0.002, 0.1  # seconds before unblocking a stopping feed again

# KEYS: stream, counter. ARGV: max_events, age cutoff in µs ("" for none), n, then n times
# (t, k, d). Returns the first sequence number of the block.
_PUBLISH = """
local n = tonumber(ARGV[3])
local last = redis.call('INCRBY', KEYS[2], n)
local first = last - n + 1
for i = 0, n - 1 do
  local at = 4 + 3 * i
  redis.call('XADD', KEYS[1], string.format('%d-0', first + i),
             't', ARGV[at], 'k', ARGV[at + 1], 'd', ARGV[at + 2])
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[1])
if ARGV[2] ~= '' then
  local cutoff = tonumber(ARGV[2])
  while true do
    local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 100)
    local keep = nil
    for _, entry in ipairs(head) do
      if tonumber(entry[2][2]) >= cutoff then keep = entry[1] break end
    end
    if keep then
      redis.call('XTRIM', KEYS[1], 'MINID', keep)
      break
    end
    if #head == 0 then break end
    local oldest_young = tonumber(string.match(head[#head][1], '^(%d+)')) + 1
    redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', oldest_young))
  end
end
return first
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


class RedisEventBus:
    """An :class:`~voicemgmt.services.events.EventBus` kept in Redis, shared by every node.

    ``redis`` is a ``redis.asyncio.Redis`` client (left open by :meth:`aclose`) or a URL (whose
    client :meth:`aclose` closes). ``buffer_size`` bounds each subscriber's backlog of live
    events; ``batch_size`` is how many events one read fetches. ``on_error`` is told the
    operation (``publish``, ``last_seq``, ``read``) of every Redis error (metrics).
    """

    def __init__(
        self,
        redis: Redis | str,
        *,
        retention: Retention | None = None,
        key_prefix: str = "vm:",
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        batch_size: int = 500,
        block_ms: int = 5_000,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        if buffer_size < 1 or batch_size < 1 or block_ms < 1:
            raise ValueError("buffer_size, batch_size and block_ms must be positive")
        self._owns_client = isinstance(redis, str)
        self.client: Redis = Redis.from_url(redis) if isinstance(redis, str) else redis
        self.retention = retention or Retention()
        self.key_prefix = key_prefix
        self.buffer_size = buffer_size
        self.batch_size = batch_size
        self.block_ms = block_ms
        self._publish_script = self.client.register_script(_PUBLISH)
        self._feeds: dict[int, _Feed] = {}
        self._closed = False
        self._on_error = on_error

    @contextlib.contextmanager
    def _counted(self, operation: str) -> Iterator[None]:
        try:
            yield
        except RedisError:
            self.error(operation)
            raise

    def error(self, operation: str) -> None:
        if self._on_error is not None:
            self._on_error(operation)

    def stream_key(self, account_id: int) -> str:
        return f"{self.key_prefix}events:{{{account_id}}}"

    def counter_key(self, account_id: int) -> str:
        return f"{self.key_prefix}seq:{{{account_id}}}"

    async def publish(
        self, account_id: int, kind: str, data: Mapping[str, Any], at: datetime
    ) -> Event:
        (event,) = await self.publish_many(account_id, [(kind, data)], at)
        return event

    async def publish_many(
        self,
        account_id: int,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        at: datetime,
    ) -> list[Event]:
        at = normalized_at(at)
        prepared = [(checked_kind(kind), encode_data(data)) for kind, data in items]
        if not prepared:
            return []
        micros = _micros(at)
        max_age = self.retention.max_age
        cutoff = "" if max_age is None else str(micros - max_age // _MICROSECOND)
        args: list[str | int] = [self.retention.max_events, cutoff, len(prepared)]
        for kind, text in prepared:
            args += [micros, kind, text]
        with self._counted("publish"):
            first = int(
                await self._publish_script(
                    keys=[self.stream_key(account_id), self.counter_key(account_id)], args=args
                )
            )
        return [
            Event(account_id, first + offset, kind, at, decode_data(text))
            for offset, (kind, text) in enumerate(prepared)
        ]

    async def last_seq(self, account_id: int) -> int:
        with self._counted("last_seq"):
            value = await self.client.get(self.counter_key(account_id))
        return int(value) if value is not None else 0

    def subscribe(
        self, account_id: int, after: int | None = None, *, operator: int | None = None
    ) -> RedisSubscription:
        return RedisSubscription(self, account_id, after, operator)

    def subscriber_count(self, account_id: int | None = None) -> int:
        """This node's live subscriptions, on one account or on all of them."""
        feeds = self._feeds.values() if account_id is None else [self._feeds.get(account_id)]
        return sum(len(feed.inboxes) for feed in feeds if feed is not None)

    async def aclose(self) -> None:
        self._closed = True
        feeds = list(self._feeds.values())
        self._feeds.clear()
        for feed in feeds:
            for inbox in feed.inboxes:
                inbox.close()
            feed.inboxes.clear()
        await asyncio.gather(*(feed.stop() for feed in feeds))
        if self._owns_client:
            await self.client.aclose()

    async def events_after(self, account_id: int, after: int, count: int) -> list[Event]:
        """Up to ``count`` kept events with ``seq > after``, oldest first."""
        with self._counted("read"):
            entries = await self.client.xrange(
                self.stream_key(account_id), min=f"{after + 1}-0", count=count
            )
        return self._decode(account_id, entries or [])

    def _decode(self, account_id: int, entries: Sequence[Any]) -> list[Event]:
        events = []
        for entry_id, raw_fields in entries:
            fields = {_text(name): value for name, value in raw_fields.items()}
            events.append(
                Event(
                    account_id,
                    int(_text(entry_id).partition("-")[0]),
                    _text(fields["k"]),
                    _EPOCH + int(fields["t"]) * _MICROSECOND,
                    decode_data(fields["d"]),
                )
            )
        return events

    def _join(
        self, account_id: int, cursor: int, operator: int | None
    ) -> tuple[Inbox, _Feed | None, int]:
        """A new inbox on the account's feed, and how far the feed had read when it joined."""
        inbox = Inbox(account_id, self.buffer_size, operator)
        if self._closed:
            inbox.close()
            return inbox, None, cursor
        feed = self._feeds.get(account_id)
        if feed is None:
            feed = self._feeds[account_id] = _Feed(self, account_id, cursor)
        feed.inboxes.add(inbox)
        return inbox, feed, feed.cursor

    async def _leave(self, feed: _Feed, inbox: Inbox) -> None:
        inbox.close()
        feed.inboxes.discard(inbox)
        if not feed.inboxes:
            self._forget(feed)
            await feed.stop()

    def _forget(self, feed: _Feed) -> None:
        if self._feeds.get(feed.account_id) is feed:
            del self._feeds[feed.account_id]


class _Feed:
    """Follows one account's stream for this node's subscribers, while it has any.

    It reads on a connection of its own, so that stopping it is a ``CLIENT UNBLOCK`` rather
    than a cancellation in the middle of a command.
    """

    def __init__(self, bus: RedisEventBus, account_id: int, cursor: int) -> None:
        self.bus = bus
        self.account_id = account_id
        self.cursor = cursor
        self.inboxes = Audience()
        self._connection = bus.client.client()
        self._client_id: int | None = None
        self._stopping = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"vm-events-feed-{account_id}")

    async def stop(self) -> None:
        """End the feed, waiting for its task; its subscribers, if any, are left alone."""
        self._stopping.set()
        retry_in = _UNBLOCK_FIRST
        while not self.task.done():
            if self._client_id is not None:
                # Unblock the read; should it not be blocked yet, try again shortly.
                with contextlib.suppress(RedisError):
                    await self.bus.client.client_unblock(self._client_id)
            await asyncio.wait([self.task], timeout=retry_in)
            retry_in = min(retry_in * 2, _UNBLOCK_MAX)

    async def _run(self) -> None:
        key = self.bus.stream_key(self.account_id)
        # Never more at once than a subscriber's buffer can take.
        count = min(self.bus.batch_size, self.bus.buffer_size)
        retry_in = _RETRY_FIRST
        try:
            while self.inboxes and not self._stopping.is_set():
                try:
                    if self._client_id is None:
                        self._client_id = int(await self._connection.client_id())
                    reply = await self._connection.xread(
                        {key: f"{self.cursor}-0"}, count=count, block=self.bus.block_ms
                    )
                except (RedisConnectionError, RedisTimeoutError) as exc:
                    self.bus.error("read")
                    log.warning("event feed of account %s: %s", self.account_id, exc)
                    self._client_id = None  # a new connection has a new id
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(retry_in):
                            await self._stopping.wait()
                    retry_in = min(retry_in * 2, _RETRY_MAX)
                    continue
                retry_in = _RETRY_FIRST
                events = self.bus._decode(self.account_id, _only_stream(reply))
                if events and events[0].seq != self.cursor + 1:
                    self._skipped(self.cursor, events[0].seq)
                if events:
                    self.cursor = events[-1].seq
                self.inboxes.deliver(events)
        except Exception as exc:
            # Rather end the subscriptions than leave them waiting for nothing.
            if isinstance(exc, RedisError):
                self.bus.error("read")
            log.exception("event feed of account %s failed", self.account_id)
            for inbox in self.inboxes:
                inbox.fail(exc)
            self.inboxes.clear()
        finally:
            self.bus._forget(self)
            await self._connection.aclose()

    def _skipped(self, cursor: int, first: int) -> None:
        """Events after ``cursor`` were trimmed before the feed read them: the subscriptions
        that take only some events cannot notice the gap themselves, so they end here."""
        error = too_slow(self.account_id, after=cursor, first_kept=first)
        for inbox in [inbox for inbox in self.inboxes if inbox.operator is not None]:
            inbox.fail(error)
            self.inboxes.discard(inbox)


def _only_stream(reply: Any) -> list[Any]:
    """The entries of a one-stream XREAD reply, whichever shape the client parsed it into."""
    if not reply:
        return []
    values = list(reply.values()) if isinstance(reply, dict) else [item[1] for item in reply]
    (entries,) = values
    if entries and isinstance(entries[0], list):  # RESP3's {stream: [entries]}
        (entries,) = entries
    return list(entries)


class RedisSubscription:
    """See :class:`~voicemgmt.services.events.Subscription`."""

    def __init__(
        self, bus: RedisEventBus, account_id: int, after: int | None, operator: int | None
    ) -> None:
        self._bus = bus
        self._account_id = account_id
        self._after = after
        self._operator = operator
        # The last seq read (delivered, waiting in _pending, or not for this subscription),
        # or the starting position.
        self._cursor = 0
        self._known_last = 0  # a seq known to exist (or to have existed)
        self._pending: deque[Event] = deque()
        self._catching_up = True
        self._inbox: Inbox | None = None
        self._feed: _Feed | None = None
        self._started = False
        self._closed = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if not self._started and not self._closed:
            await self._start()
        if self._closed or self._inbox is None:
            raise StopAsyncIteration
        inbox = self._inbox
        try:
            while True:
                if self._closed:
                    raise StopAsyncIteration
                inbox.raise_if_failed()
                if not inbox.is_open:  # the bus was closed
                    raise StopAsyncIteration
                if self._pending:
                    return self._pending.popleft()
                if self._catching_up:
                    await self._catch_up(starting=False)
                    continue
                event = await inbox.get()
                if event.seq == self._cursor + 1 or (
                    self._operator is not None and event.seq > self._cursor
                ):  # an operator's inbox has no gaps: see the module's docstring
                    self._cursor = event.seq
                    return event
                if event.seq > self._cursor:
                    # A gap: read it from the stream, this event included.
                    self._known_last = max(self._known_last, event.seq)
                    self._catching_up = True
        except Exception:  # its failure or its end; a cancelled read leaves it usable
            await self._end()
            raise

    async def __aenter__(self) -> Self:
        if not self._started and not self._closed:
            await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._end()

    async def _start(self) -> None:
        self._started = True
        try:
            last = await self._bus.last_seq(self._account_id)
            if self._closed:
                return
            if self._after is not None:
                check_after(self._account_id, self._after, last)
            self._cursor = last if self._after is None else self._after
            self._known_last = last
            # Join the feed before reading the stream, so that nothing falls between the two.
            self._inbox, self._feed, joined_at = self._bus._join(
                self._account_id, last, self._operator
            )
            # The inbox has what the feed reads after joined_at; the stream, the rest.
            self._known_last = max(last, joined_at)
            await self._catch_up(starting=True)
        except BaseException:  # a subscription that failed to start is over
            await self._end()
            raise

    async def _catch_up(self, *, starting: bool) -> None:
        batch = await self._bus.events_after(self._account_id, self._cursor, self._bus.batch_size)
        expected = self._cursor + 1
        if (batch and batch[0].seq != expected) or (not batch and self._known_last >= expected):
            first_kept = batch[0].seq if batch else None
            if starting:
                raise resume_too_old(self._account_id, self._cursor, first_kept)
            raise too_slow(self._account_id, after=self._cursor, first_kept=first_kept)
        if batch:
            self._known_last = max(self._known_last, batch[-1].seq)
            self._cursor = batch[-1].seq
        operator = self._operator
        self._pending.extend(e for e in batch if concerns(operator, e))
        self._catching_up = len(batch) >= self._bus.batch_size

    async def _end(self) -> None:
        self._closed = True
        self._pending.clear()
        inbox, feed = self._inbox, self._feed
        self._feed = None
        if inbox is not None:
            inbox.close()
            if feed is not None:
                await self._bus._leave(feed, inbox)
