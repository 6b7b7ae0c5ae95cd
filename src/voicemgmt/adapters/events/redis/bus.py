"""``RedisEventBus``: publishing to an account's stream, reading it, and this node's feeds.

Delivery is positional, so it does not depend on timing. On each node, one *feed* task per
account with local subscribers follows the stream and offers each event to the subscribers'
inboxes (``feed.py``); a subscription replays from the stream, then takes live events from its
inbox (``subscription.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from voicemgmt.adapters.events import (
    Inbox,
    checked_kind,
    decode_data,
    encode_data,
    normalized_at,
)
from voicemgmt.adapters.events.redis.feed import Feed
from voicemgmt.adapters.events.redis.scripts import (
    EPOCH_SCRIPT,
    MICROSECOND,
    PUBLISH,
    UNIX_EPOCH,
    as_text,
    micros_of,
)
from voicemgmt.adapters.events.redis.subscription import RedisSubscription
from voicemgmt.services.events import DEFAULT_BUFFER_SIZE, Event, Retention, new_epoch

_READ_MARGIN = 5.0  # seconds a reply may take beyond a read's block before it is given up


class RedisEventBus:
    """An :class:`~voicemgmt.services.events.EventBus` kept in Redis, shared by every node.

    ``redis`` is a ``redis.asyncio.Redis`` client (left open by :meth:`aclose`) or a URL (whose
    client :meth:`aclose` closes). ``buffer_size`` bounds each subscriber's backlog of live
    events; ``batch_size`` is how many events one read fetches. ``on_error`` is told the
    operation (``publish``, ``last_seq``, ``epoch``, ``read``) of every Redis error (metrics).
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
        # A feed's read blocks for block_ms: the socket timeout must be longer (redis-py 8
        # defaults to 5 s, as long as the default block, and idle feeds then failed every 5 s).
        self.client: Redis = (
            Redis.from_url(redis, socket_timeout=block_ms / 1000 + _READ_MARGIN)
            if isinstance(redis, str)
            else redis
        )
        self.retention = retention or Retention()
        self.key_prefix = key_prefix
        self.buffer_size = buffer_size
        self.batch_size = batch_size
        self.block_ms = block_ms
        self._publish_script = self.client.register_script(PUBLISH)
        self._epoch_script = self.client.register_script(EPOCH_SCRIPT)
        self._feeds: dict[int, Feed] = {}
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

    def epoch_key(self, account_id: int) -> str:
        return f"{self.key_prefix}epoch:{{{account_id}}}"

    def _keys(self, account_id: int) -> list[str]:
        return [
            self.stream_key(account_id),
            self.counter_key(account_id),
            self.epoch_key(account_id),
        ]

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
        micros = micros_of(at)
        max_age = self.retention.max_age
        cutoff = "" if max_age is None else str(micros - max_age // MICROSECOND)
        args: list[str | int] = [self.retention.max_events, cutoff, len(prepared)]
        for kind, text in prepared:
            args += [micros, kind, text]
        args.append(new_epoch())
        with self._counted("publish"):
            first = int(await self._publish_script(keys=self._keys(account_id), args=args))
        return [
            Event(account_id, first + offset, kind, at, decode_data(text))
            for offset, (kind, text) in enumerate(prepared)
        ]

    async def last_seq(self, account_id: int) -> int:
        with self._counted("last_seq"):
            value = await self.client.get(self.counter_key(account_id))
        return int(value) if value is not None else 0

    async def epoch(self, account_id: int) -> str:
        with self._counted("epoch"):
            value = await self._epoch_script(keys=self._keys(account_id), args=[new_epoch()])
        return as_text(value)

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
            fields = {as_text(name): value for name, value in raw_fields.items()}
            events.append(
                Event(
                    account_id,
                    int(as_text(entry_id).partition("-")[0]),
                    as_text(fields["k"]),
                    UNIX_EPOCH + int(fields["t"]) * MICROSECOND,
                    decode_data(fields["d"]),
                )
            )
        return events

    def _join(
        self, account_id: int, cursor: int, epoch: str, operator: int | None
    ) -> tuple[Inbox, Feed | None, int]:
        """A new inbox on the account's feed, and how far the feed had read when it joined."""
        inbox = Inbox(account_id, self.buffer_size, operator)
        if self._closed:
            inbox.close()
            return inbox, None, cursor
        feed = self._feeds.get(account_id)
        if feed is None:
            feed = self._feeds[account_id] = Feed(self, account_id, cursor, epoch)
        feed.inboxes.add(inbox)
        return inbox, feed, feed.cursor

    async def _leave(self, feed: Feed, inbox: Inbox) -> None:
        inbox.close()
        feed.inboxes.discard(inbox)
        if not feed.inboxes:
            self._forget(feed)
            await feed.stop()

    def _forget(self, feed: Feed) -> None:
        if self._feeds.get(feed.account_id) is feed:
            del self._feeds[feed.account_id]
