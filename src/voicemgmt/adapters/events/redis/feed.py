"""One account's stream followed for this node's subscribers, and the epoch checks.

The feed follows the stream with ``XREAD BLOCK`` and offers each event to its subscribers'
inboxes. It checks the epoch of what it reads (each entry carries it) and, whenever a read
waited for nothing, the stream's; if it changed, it ends its subscriptions with
``ResumeTooOld`` (reload): a stream numbered afresh would otherwise sit below its cursor, never
read, or be read from past the cursor, its first events silently skipped. Should it find
events trimmed before it read them, it ends the subscriptions for one operator (which cannot
see such a gap themselves) with ``SubscriberTooSlow``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from voicemgmt.adapters.events import Audience, resume_too_old, too_slow
from voicemgmt.adapters.events.redis.scripts import as_text

if TYPE_CHECKING:
    from voicemgmt.adapters.events.redis.bus import RedisEventBus

log = logging.getLogger("voicemgmt.adapters.events.redis")

_RETRY_FIRST, _RETRY_MAX = 0.05, 2.0  # seconds between a feed's attempts to reconnect
_UNBLOCK_FIRST, _UNBLOCK_MAX = 0.002, 0.1  # seconds before unblocking a stopping feed again


class Feed:
    """Follows one account's stream for this node's subscribers, while it has any.

    It reads on a connection of its own, so that stopping it is a ``CLIENT UNBLOCK`` rather
    than a cancellation in the middle of a command.
    """

    def __init__(self, bus: RedisEventBus, account_id: int, cursor: int, epoch: str) -> None:
        self.bus = bus
        self.account_id = account_id
        self.cursor = cursor
        self.epoch = epoch  # the stream's when the feed's first subscriber started
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
                    entries = _only_stream(reply)
                    if entries:
                        if self._foreign(entries):
                            self._restart(_entry_epoch(entries[-1]) or "")
                            return
                    elif not self._stopping.is_set() and await self._restarted():
                        return
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
                events = self.bus._decode(self.account_id, entries)
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

    async def _restarted(self) -> bool:
        """Whether the stream changed epoch since the feed started (Redis lost it: its new
        events may be numbered below the cursor, and this feed would wait for them forever);
        its subscriptions then end with ``ResumeTooOld``, which tells clients to reload.
        Checked whenever a read waited ``block_ms`` for nothing."""
        epoch = await self.bus.epoch(self.account_id)
        if epoch == self.epoch:
            return False
        self._restart(epoch)
        return True

    def _foreign(self, entries: Sequence[Any]) -> bool:
        """Whether some of the entries read were published under another epoch (entries
        written before epochs existed carry none)."""
        return any(e is not None and e != self.epoch for e in map(_entry_epoch, entries))

    def _restart(self, epoch: str) -> None:
        error = resume_too_old(self.account_id, self.cursor, None)
        error.details["epoch"] = epoch
        for inbox in self.inboxes:
            inbox.fail(error)
        self.inboxes.clear()

    def _skipped(self, cursor: int, first: int) -> None:
        """Events after ``cursor`` were trimmed before the feed read them: the subscriptions
        that take only some events cannot notice the gap themselves, so they end here."""
        error = too_slow(self.account_id, after=cursor, first_kept=first)
        for inbox in [inbox for inbox in self.inboxes if inbox.operator is not None]:
            inbox.fail(error)
            self.inboxes.discard(inbox)


def _entry_epoch(entry: Any) -> str | None:
    """The epoch a stream entry was published under (``e``), if it says."""
    _entry_id, raw_fields = entry
    value = raw_fields.get(b"e", raw_fields.get("e"))
    return None if value is None else as_text(value)


def _only_stream(reply: Any) -> list[Any]:
    """The entries of a one-stream XREAD reply, whichever shape the client parsed it into."""
    if not reply:
        return []
    values = list(reply.values()) if isinstance(reply, dict) else [item[1] for item in reply]
    (entries,) = values
    if entries and isinstance(entries[0], list):  # RESP3's {stream: [entries]}
        (entries,) = entries
    return list(entries)
