"""The in-process event bus: the embedded default, for a single node.

Each account has a ring buffer of its kept events and its subscribers' inboxes (an
:class:`~voicemgmt.adapters.events.Audience`). Publishing appends to the ring and offers the
events to the inboxes they are for without ever awaiting, so within one
event loop a publish is atomic: sequence numbers are gapless and every subscriber sees them in
order. A subscription snapshots the events it must replay and registers its inbox in the same
synchronous step, so the hand-over from replay to live can neither lose nor repeat an event.

Nothing survives the process: every account's numbering starts again at 1 with the next one,
so the bus draws its :meth:`~InMemoryEventBus.epoch` afresh each time it is created.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from types import TracebackType
from typing import Any, Self

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
)
from voicemgmt.services.events import DEFAULT_BUFFER_SIZE, Event, Retention, new_epoch


@dataclass(eq=False, slots=True)
class _AccountLog:
    events: deque[Event]
    last_seq: int = 0
    inboxes: Audience = field(default_factory=Audience)

    def first_kept(self) -> int:
        return self.events[0].seq if self.events else self.last_seq + 1


class InMemoryEventBus:
    """An :class:`~voicemgmt.services.events.EventBus` living in this process's memory.

    ``buffer_size`` bounds each subscriber's backlog of live events (see ``SubscriberTooSlow``).
    """

    def __init__(
        self, *, retention: Retention | None = None, buffer_size: int = DEFAULT_BUFFER_SIZE
    ) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.retention = retention or Retention()
        self.buffer_size = buffer_size
        self._logs: dict[int, _AccountLog] = {}
        self._closed = False
        self._epoch = new_epoch()

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
        # Encode everything before taking any seq, so a bad item leaves no trace.
        prepared = [(checked_kind(kind), decode_data(encode_data(data))) for kind, data in items]
        log = self._log(account_id)
        first = log.last_seq + 1
        events = [
            Event(account_id, first + offset, kind, at, data)
            for offset, (kind, data) in enumerate(prepared)
        ]
        if not events:
            return []
        log.last_seq = events[-1].seq
        log.events.extend(events)
        self._drop_expired(log, at)
        log.inboxes.deliver(events)
        return events

    async def last_seq(self, account_id: int) -> int:
        log = self._logs.get(account_id)
        return log.last_seq if log else 0

    async def epoch(self, account_id: int) -> str:
        """One identity for every account, drawn when this bus (this process) started."""
        return self._epoch

    def subscribe(
        self, account_id: int, after: int | None = None, *, operator: int | None = None
    ) -> InMemorySubscription:
        return InMemorySubscription(self, account_id, after, operator)

    def subscriber_count(self, account_id: int | None = None) -> int:
        """Live subscriptions, on one account or on all of them."""
        logs = self._logs.values() if account_id is None else [self._logs.get(account_id)]
        return sum(len(log.inboxes) for log in logs if log is not None)

    async def aclose(self) -> None:
        self._closed = True
        for log in self._logs.values():
            for inbox in log.inboxes:
                inbox.close()
            log.inboxes.clear()

    def _log(self, account_id: int) -> _AccountLog:
        log = self._logs.get(account_id)
        if log is None:
            log = _AccountLog(deque(maxlen=self.retention.max_events))
            self._logs[account_id] = log
        return log

    def _drop_expired(self, log: _AccountLog, now: datetime) -> None:
        if self.retention.max_age is None:
            return
        horizon = now - self.retention.max_age
        while log.events and log.events[0].at < horizon:
            log.events.popleft()

    def _join(
        self, account_id: int, after: int | None, operator: int | None
    ) -> tuple[deque[Event], Inbox]:
        """The events to replay and a registered inbox for the rest, taken atomically."""
        log = self._log(account_id)
        replay: deque[Event] = deque()
        if after is not None:
            check_after(account_id, after, log.last_seq)
            first_kept = log.first_kept()
            if after + 1 < first_kept:
                raise resume_too_old(account_id, after, first_kept)
            kept = islice(log.events, after + 1 - first_kept, None)
            replay.extend(e for e in kept if concerns(operator, e))
        inbox = Inbox(account_id, self.buffer_size, operator)
        if self._closed:
            inbox.close()
        else:
            log.inboxes.add(inbox)
        return replay, inbox

    def _leave(self, account_id: int, inbox: Inbox) -> None:
        inbox.close()
        log = self._logs.get(account_id)
        if log is not None:
            log.inboxes.discard(inbox)


class InMemorySubscription:
    """See :class:`~voicemgmt.services.events.Subscription`."""

    def __init__(
        self, bus: InMemoryEventBus, account_id: int, after: int | None, operator: int | None
    ) -> None:
        self._bus = bus
        self._account_id = account_id
        self._after = after
        self._operator = operator
        self._replay: deque[Event] = deque()
        self._inbox: Inbox | None = None
        self._closed = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if self._closed:
            raise StopAsyncIteration
        inbox = self._start()
        try:
            inbox.raise_if_failed()
            if not inbox.is_open:  # the bus was closed
                raise StopAsyncIteration
            if self._replay:
                return self._replay.popleft()
            return await inbox.get()
        except Exception:  # its failure or its end; a cancelled read leaves it usable
            self._end()
            raise

    async def __aenter__(self) -> Self:
        if not self._closed:
            self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        self._end()

    def _start(self) -> Inbox:
        if self._inbox is None:
            try:
                self._replay, self._inbox = self._bus._join(
                    self._account_id, self._after, self._operator
                )
            except Exception:
                self._closed = True
                raise
        return self._inbox

    def _end(self) -> None:
        self._closed = True
        self._replay.clear()
        if self._inbox is not None:
            self._bus._leave(self._account_id, self._inbox)
