"""Event-bus adapters: ``memory`` (one process, the default) and ``redis`` (several nodes).

This module holds what both share: the checks and JSON encoding applied when publishing,
:class:`Inbox`, the bounded buffer between the publishing side and one subscriber, and
:class:`Audience`, an account's inboxes indexed by whom they are for.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from voicemgmt.domain.errors import InvalidInput
from voicemgmt.services.events import (
    Event,
    ResumeTooOld,
    SubscriberTooSlow,
    operators_concerned,
)


def normalized_at(at: datetime) -> datetime:
    """``at`` in UTC; a naive datetime is a programming error."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("event times must be timezone-aware")
    return at.astimezone(UTC)


def checked_kind(kind: str) -> str:
    if not isinstance(kind, str) or not kind:
        raise ValueError("an event kind is a non-empty string")
    return kind


def encode_data(data: Mapping[str, Any]) -> str:
    """Strict JSON (no NaN), so that browsers and webhooks read what was published."""
    if not isinstance(data, Mapping):
        raise TypeError(f"event data must be a mapping, not {type(data).__name__}")
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def decode_data(text: str | bytes) -> Mapping[str, Any]:
    """Read-only at the top level: one event object is shared by every subscriber."""
    return MappingProxyType(json.loads(text))


def check_after(account_id: int, after: int, last_seq: int) -> None:
    if after < 0 or after > last_seq:
        raise InvalidInput(
            f"cannot resume after event {after}: the latest is {last_seq}",
            account_id=account_id,
            after=after,
            last_seq=last_seq,
        )


def resume_too_old(account_id: int, after: int, first_kept: int | None) -> ResumeTooOld:
    return ResumeTooOld(
        f"events of account {account_id} after {after} are no longer kept; start afresh",
        account_id=account_id,
        after=after,
        first_kept=first_kept,
    )


def too_slow(account_id: int, **details: Any) -> SubscriberTooSlow:
    return SubscriberTooSlow(
        f"the subscriber to account {account_id} fell behind; resume from the last event seen",
        account_id=account_id,
        **details,
    )


class Inbox:
    """One subscriber's bounded buffer of live events.

    The publishing side calls :meth:`offer`, which never waits: when the buffer is full the
    inbox fails with :class:`SubscriberTooSlow`, drops what it holds and refuses anything more,
    so a stalled reader costs at most ``size`` events.
    """

    def __init__(self, account_id: int, size: int, operator: int | None = None) -> None:
        if size < 1:
            raise ValueError("a subscriber buffer holds at least one event")
        self.account_id = account_id
        self.size = size
        self.operator = operator  # None: every event of the account
        # ``None`` wakes a reader waiting on an empty queue once the inbox is shut.
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(size)
        self._error: Exception | None = None
        self._open = True

    @property
    def is_open(self) -> bool:
        return self._open

    def offer(self, event: Event) -> bool:
        """Buffer ``event``; ``False`` if the inbox is (now) shut and should be forgotten."""
        if not self._open:
            return False
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.fail(too_slow(self.account_id, buffer_size=self.size))
            return False
        return True

    def fail(self, error: Exception) -> None:
        """Shut the inbox; its reader gets ``error`` next, then the end of iteration."""
        if self._open:
            self._error = error
            self._shut()

    def close(self) -> None:
        """Shut the inbox; its reader sees the end of iteration."""
        if self._open:
            self._shut()

    def raise_if_failed(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    async def get(self) -> Event:
        """The next live event; raises the failure, or ``StopAsyncIteration`` once shut."""
        self.raise_if_failed()
        if not self._open:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            self.raise_if_failed()
            raise StopAsyncIteration
        return event

    def _shut(self) -> None:
        self._open = False
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)


def concerns(operator: int | None, event: Event) -> bool:
    """Whether a subscription for ``operator`` (None: the whole account) yields ``event``."""
    return operator is None or operator in operators_concerned(event.kind, event.data)


class Audience:
    """An account's open inboxes: those taking every event, and those of each operator.

    :meth:`deliver` finds each event's operators once, so its cost grows with the inboxes
    that take the event, not with all the inboxes open on the account.
    """

    __slots__ = ("_by_operator", "_everything")

    def __init__(self) -> None:
        self._everything: set[Inbox] = set()
        self._by_operator: dict[int, set[Inbox]] = {}

    def __len__(self) -> int:
        return len(self._everything) + sum(map(len, self._by_operator.values()))

    def __bool__(self) -> bool:
        return bool(self._everything or self._by_operator)

    def __iter__(self) -> Iterator[Inbox]:
        yield from self._everything
        for inboxes in self._by_operator.values():
            yield from inboxes

    def add(self, inbox: Inbox) -> None:
        if inbox.operator is None:
            self._everything.add(inbox)
        else:
            self._by_operator.setdefault(inbox.operator, set()).add(inbox)

    def discard(self, inbox: Inbox) -> None:
        if inbox.operator is None:
            self._everything.discard(inbox)
            return
        inboxes = self._by_operator.get(inbox.operator)
        if inboxes is not None:
            inboxes.discard(inbox)
            if not inboxes:
                del self._by_operator[inbox.operator]

    def clear(self) -> None:
        self._everything.clear()
        self._by_operator.clear()

    def deliver(self, events: Iterable[Event]) -> None:
        """Offer each event to the inboxes it is for, in order; forget the inboxes shut."""
        by_operator = self._by_operator
        for event in events:
            targets = list(self._everything)
            if by_operator:
                for operator in set(operators_concerned(event.kind, event.data)):
                    inboxes = by_operator.get(operator)
                    if inboxes:
                        targets.extend(inboxes)
            for inbox in targets:
                if not inbox.offer(event):
                    self.discard(inbox)
