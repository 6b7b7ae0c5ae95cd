"""``RedisSubscription``: one subscriber's events — replayed from the stream, then live.

A subscription first reads what it must replay straight from the stream (``XRANGE`` in
batches), then takes live events from its inbox, skipping those at or below its position;
should it see a gap (it joined while the feed lagged, or the feed reconnected), it reads the
missing events from the stream. Finding them trimmed means ``ResumeTooOld`` when starting and
``SubscriberTooSlow`` later.

A subscription for one operator gets from the feed only the events that concern them, so it
cannot tell a gap from the events that were not for it. It relies on the feed instead: an
inbox joined when the feed had read up to *n* is offered every later event it is for, since
the feed reads the stream positionally; the subscription first reads the stream past *n*
itself, and should the feed ever find events trimmed before it read them, it ends those
subscriptions with ``SubscriberTooSlow``.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Self

from voicemgmt.adapters.events import Inbox, check_after, concerns, resume_too_old, too_slow
from voicemgmt.services.events import Event

if TYPE_CHECKING:
    from voicemgmt.adapters.events.redis.bus import RedisEventBus
    from voicemgmt.adapters.events.redis.feed import Feed


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
        self._feed: Feed | None = None
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
            epoch = await self._bus.epoch(self._account_id)  # before last: a feed compares it
            last = await self._bus.last_seq(self._account_id)
            if self._closed:
                return
            if self._after is not None:
                check_after(self._account_id, self._after, last)
            self._cursor = last if self._after is None else self._after
            self._known_last = last
            # Join the feed before reading the stream, so that nothing falls between the two.
            self._inbox, self._feed, joined_at = self._bus._join(
                self._account_id, last, epoch, self._operator
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
