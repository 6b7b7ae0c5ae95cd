"""Each account's outbox: what routing steps leave behind, delivered in the order of the steps.

A step of the routing core ends some calls (their records), changes others (their traces,
``services/live_calls.py``) and causes events. The routing service posts them here while it
holds the account's lock, so posts are in step order, and returns the lock at once; one task
per account then delivers them: the records and traces of every waiting post in one
transaction, then each post's events on the account's stream. So a call is durable before
anything about it is published or acknowledged, a record is always stored before its
``call.ended`` is published (a client that sees the event can read the record), events keep
the order of the steps, and the database sees one write per batch instead of one per call.

A post's future resolves once its records are stored and its events published (or fails
with the storage's error, in which case its events are not published).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from voicemgmt.domain.routing.model import CallRecord
from voicemgmt.observability.logs import no_call
from voicemgmt.services.events import EventBus

if TYPE_CHECKING:  # live_calls reports to an OutboxObserver
    from voicemgmt.services.live_calls import LiveCallStore

log = logging.getLogger(__name__)


class OutboxObserver(Protocol):
    """Told what an outbox delivered (metrics): records once stored, events once published,
    with the ``time.monotonic()`` at which their step was posted."""

    def records_stored(self, account_id: int, records: Sequence[CallRecord]) -> None: ...

    def events_published(self, kinds: Iterable[str], posted_at: float) -> None: ...


def _future() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    # A failure is logged where it happens; a caller that went away must not warn again.
    future.add_done_callback(lambda f: None if f.cancelled() else f.exception())
    return future


@dataclass(slots=True)
class _Post:
    records: Sequence[CallRecord]
    traces: Sequence[tuple[str, dict[str, Any]]]
    events: Sequence[tuple[str, Mapping[str, Any]]]
    at: datetime
    done: asyncio.Future[None] = field(default_factory=_future)
    posted_at: float = field(default_factory=time.monotonic)


class AccountOutbox:
    def __init__(
        self,
        account_id: int,
        store: LiveCallStore,
        node: str,
        bus: EventBus,
        observer: OutboxObserver | None = None,
    ) -> None:
        self._account_id = account_id
        self._store = store
        self._node = node
        self._bus = bus
        self._observer = observer
        self._pending: list[_Post] = []
        self._worker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def post(
        self,
        records: Sequence[CallRecord],
        traces: Sequence[tuple[str, dict[str, Any]]],
        events: Sequence[tuple[str, Mapping[str, Any]]],
        at: datetime,
    ) -> asyncio.Future[None]:
        """Queue one step's records, traces (call id, trace) and events; never waits."""
        item = _Post(records, traces, events, at)
        if not records and not traces and not events:
            item.done.set_result(None)
            return item.done
        self._pending.append(item)
        self._idle.clear()
        if self._worker is None or self._worker.done():
            # the worker serves every later step too: it is about no call in particular
            self._worker = asyncio.get_running_loop().create_task(
                self._deliver(), context=no_call()
            )
        return item.done

    async def drained(self) -> None:
        """Wait until everything posted so far is delivered."""
        await self._idle.wait()

    async def _deliver(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            records = [record for item in batch for record in item.records]
            traces = {id_call: (trace, item.at) for item in batch for id_call, trace in item.traces}
            for record in records:  # ended in this batch: the record replaces the trace
                traces.pop(record.id_call, None)
            try:
                if records or traces:
                    await self._store.commit(self._account_id, self._node, records, traces)
            except Exception as exc:
                for item in batch:
                    _fail(item, exc)
                continue
            if records and self._observer is not None:
                self._observer.records_stored(self._account_id, records)
            for item in batch:
                try:
                    if item.events:
                        await self._bus.publish_many(self._account_id, item.events, item.at)
                except Exception as exc:
                    _fail(item, exc)
                else:
                    if self._observer is not None:
                        self._observer.events_published(
                            (kind for kind, _data in item.events), item.posted_at
                        )
                    if not item.done.done():
                        item.done.set_result(None)
        self._idle.set()


def _fail(item: _Post, exc: Exception) -> None:
    if not item.done.done():
        item.done.set_exception(exc)
    # Nobody may be waiting (a timer's step): say it here too.
    log.error("could not deliver a routing step's records or events: %r", exc)
