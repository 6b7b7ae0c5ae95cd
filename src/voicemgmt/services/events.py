"""The event bus port: one ordered, resumable stream of events per account.

Everything that watches an account (operator banners, supervisor pages, ``cnx.js``, webhooks)
reads the same stream. The bus gives each account's events a sequence number — 1, 2, 3… with
no gaps — and keeps the recent ones (see :class:`Retention`), so a client that lost its
connection resumes from the last number it saw and misses nothing.

Two implementations honour this contract: ``voicemgmt.adapters.events.memory`` (one process,
the embedded default) and ``voicemgmt.adapters.events.redis`` (several nodes).

A subscription starts when it is entered (``async with``) or at its first ``__anext__``,
whichever comes first; :class:`ResumeTooOld` and ``InvalidInput`` are raised then. After that it
yields, in sequence order with no duplicates and no gaps, every kept event after ``after``
(nothing when ``after`` is ``None``), then the live ones. It ends with
:class:`SubscriberTooSlow` if its reader falls behind, and simply stops once closed.

A subscription for one operator (``operator=``) yields only the events that concern them
(:func:`operators_concerned`), still in order and without gaps among those. The bus finds an
event's operators once, whatever the number of subscribers: an account with a thousand
banners open does not wake a thousand readers for each event.

Errors (to be added to the tree in ``voicemgmt.domain.errors``)::

    VoiceManagementError
    ├── ResumeTooOld          the events after the client's position are no longer kept
    └── SubscriberTooSlow     the subscriber fell behind; resume from its last sequence number
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from voicemgmt.domain.errors import ResumeTooOld, SubscriberTooSlow

__all__ = [
    "EPOCH_PATTERN",
    "Event",
    "EventBus",
    "ResumeTooOld",
    "Retention",
    "SubscriberTooSlow",
    "Subscription",
    "is_epoch",
    "new_epoch",
    "operators_concerned",
]

DEFAULT_MAX_EVENTS = 10_000
DEFAULT_BUFFER_SIZE = 1_000
EPOCH_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_EPOCH = re.compile(EPOCH_PATTERN)


def new_epoch() -> str:
    """A fresh stream identity: 16 random URL-safe characters."""
    return secrets.token_urlsafe(12)


def is_epoch(text: str) -> bool:
    """Whether ``text`` has the form of a stream identity (:data:`EPOCH_PATTERN`)."""
    return _EPOCH.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened in an account, as stored and delivered."""

    account_id: int
    seq: int
    kind: str
    at: datetime
    data: Mapping[str, Any]
    _frame: str | None = field(default=None, init=False, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """What a client receives: ``{"seq", "kind", "at", "data"}``, ``at`` in ISO 8601 UTC."""
        at = self.at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return {"seq": self.seq, "kind": self.kind, "at": at, "data": dict(self.data)}

    def frame(self) -> str:
        """:meth:`to_json` as compact JSON text, encoded once for every subscriber."""
        if self._frame is None:
            text = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
            object.__setattr__(self, "_frame", text)  # a cache, not state: frozen otherwise
            return text
        return self._frame


# kind → the data fields naming the operator(s) it concerns
_OPERATOR_FIELDS: dict[str, tuple[str, ...]] = {
    "operator.status": ("id_op",),
    "call.offered": ("id_op",),
    "call.offer_withdrawn": ("id_op",),
    "call.answered": ("id_op",),
    "call.held": ("id_op",),
    "call.resumed": ("id_op",),
    "call.outbound": ("id_op",),
    "call.transferred": ("from_op", "to_op"),
}


def operators_concerned(kind: str, data: Mapping[str, Any]) -> tuple[int, ...]:
    """The operators (``id_agent``) whose own stream carries this event; may repeat one.

    Their status, the calls offered to them or taken by them, the end of a call they were
    offered, and the end of one of their sessions (``session.revoked``). A supervisor's stream
    carries every event of the account.
    """
    names = _OPERATOR_FIELDS.get(kind)
    if names is not None:
        return tuple(value for name in names if type(value := data.get(name)) is int)
    if kind == "call.ended":
        record = data.get("record")
        if not isinstance(record, Mapping):
            return ()
        offered = record.get("operators_offered")
        found = [o for o in offered if type(o) is int] if isinstance(offered, list | tuple) else []
        if type(answered := record.get("id_op")) is int:
            found.append(answered)
        return tuple(found)
    if kind == "session.revoked" and data.get("user_type") == "agent":
        agent = data.get("id_agent")
        return (agent,) if type(agent) is int else ()
    return ()


@dataclass(frozen=True, slots=True)
class Retention:
    """How long an account's events stay available for resuming.

    At most ``max_events`` per account are kept (the newest). With ``max_age``, publishing also
    drops the events whose ``at`` is older than the published ``at`` minus ``max_age``. The
    kept events are always a contiguous run of sequence numbers ending at the latest one.
    """

    max_events: int = DEFAULT_MAX_EVENTS
    max_age: timedelta | None = None

    def __post_init__(self) -> None:
        if self.max_events < 1:
            raise ValueError("max_events must be at least 1")
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise ValueError("max_age must be positive")


class Subscription(Protocol):
    """An account's events from a position on; iterate it, close it when done.

    One task reads it. ``aclose()`` may be called from any task of the same event loop; a
    reader waiting in ``__anext__`` then stops with ``StopAsyncIteration``.
    """

    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> Event: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def aclose(self) -> None: ...


class EventBus(Protocol):
    """Publishes and delivers each account's events in one gapless order.

    ``data`` must be JSON-serialisable (``TypeError``/``ValueError`` otherwise) and ``at``
    timezone-aware (``ValueError`` otherwise); delivered events carry ``at`` in UTC and
    ``data`` as decoded from JSON. Publishing never waits for a subscriber.
    """

    async def publish(
        self, account_id: int, kind: str, data: Mapping[str, Any], at: datetime
    ) -> Event: ...

    async def publish_many(
        self,
        account_id: int,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        at: datetime,
    ) -> list[Event]:
        """Publish ``items`` as one block of consecutive sequence numbers, in order."""
        ...

    async def last_seq(self, account_id: int) -> int:
        """The sequence number of the account's latest event, 0 if it has none."""
        ...

    async def epoch(self, account_id: int) -> str:
        """The identity of the account's stream: the same on every node and for as long as its
        sequence numbers go on from the same start; different once they may have restarted.
        Opaque, at most 64 characters of ``[A-Za-z0-9_-]``."""
        ...

    def subscribe(
        self, account_id: int, after: int | None = None, *, operator: int | None = None
    ) -> Subscription:
        """The account's events with ``seq > after`` (kept ones first), or live ones only;
        with ``operator``, only those that concern that operator (``operators_concerned``).

        Raised when the subscription starts: ``ResumeTooOld`` if some of those events are no
        longer kept, ``InvalidInput`` if ``after`` is negative or beyond ``last_seq``.
        """
        ...

    async def aclose(self) -> None:
        """End every subscription and release the bus's resources."""
        ...
