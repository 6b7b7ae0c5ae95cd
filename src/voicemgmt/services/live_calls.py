"""Live calls that outlive their process: traces, the node's heartbeat, and closing orphans.

Every routing step that changes a call stores the call's *trace* (``domain/routing/durable.py``)
in the same transaction as the step's records, and a call's trace is deleted in the
transaction that stores its record (``LiveCallStore.commit``, called by each account's outbox).
So from the moment a call is acknowledged (the HTTP 201 of a simulated call, the SIP 100
Trying) until its record exists, the database knows it, and which node holds it.

A serving node says it is alive every ``HEARTBEAT_SECONDS`` (``nodes.seen_at``). A trace whose
node stopped without ending it is an *orphan*:

- at start, a node closes the orphans it left itself (it was killed: same ``VM_NODE``);
- on every heartbeat, it closes those of nodes not seen for ``DEAD_AFTER_SECONDS`` (or never
  seen: a node that stopped cleanly but left traces).

An orphan is closed with a record (``failed``, or ``answered`` if an operator had answered it,
``disconnect_reason`` ``node_died``), its spans ending when its node was last known alive, and a
``call.ended`` event on its account's stream (webhooks included). Claiming is atomic (the trace
is deleted where it still names the dead node, in the record's transaction), so two nodes never
both close one call, and a record is never written twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.durable import NODE_DIED, UnreadableTrace, call_of, orphan_record
from voicemgmt.domain.routing.model import CallRecord
from voicemgmt.observability.logs import no_call
from voicemgmt.services.events import EventBus
from voicemgmt.services.live_state import event_json
from voicemgmt.services.outbox import OutboxObserver
from voicemgmt.services.ports import Clock

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
DEAD_AFTER_SECONDS = 30.0
BATCH = 500  # orphans read at once


@dataclass(frozen=True, slots=True)
class Orphan:
    """A stored trace whose node may be gone, and when that node was last seen alive."""

    account_id: int
    id_call: str
    node: str
    trace: dict[str, Any]
    updated_at: datetime
    node_seen_at: datetime | None


class LiveCallStore(Protocol):
    """Traces of live calls and the nodes' heartbeats; each method is one transaction."""

    async def commit(
        self,
        account_id: int,
        node: str,
        records: Sequence[CallRecord],
        traces: Mapping[str, tuple[dict[str, Any], datetime]],
    ) -> None:
        """One delivery of routing steps: ``records`` stored and their calls' traces deleted;
        ``traces`` (call id → trace, as of when) stored for ``node``."""
        ...

    async def heartbeat(self, node: str, at: datetime) -> None: ...

    async def leave(self, node: str) -> None:
        """``node`` stopped cleanly (its calls have their records)."""
        ...

    async def orphans(
        self, node: str, stale_before: datetime, *, own: bool, limit: int
    ) -> list[Orphan]:
        """Traces of nodes not seen since ``stale_before`` (or never), other than ``node``;
        with ``own``, ``node``'s own traces too."""
        ...

    async def close_orphans(
        self, account_id: int, node: str, records: Sequence[CallRecord], dropped: Sequence[str]
    ) -> list[str]:
        """Delete the traces of ``records``' calls and ``dropped`` that still name ``node``, and
        store the records of those deleted; return the ids of the records stored."""
        ...


class LiveCalls:
    """This node's part: its heartbeat, and closing what dead nodes left open."""

    def __init__(
        self,
        store: LiveCallStore,
        bus: EventBus,
        clock: Clock,
        node: str,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        dead_after: float = DEAD_AFTER_SECONDS,
        observer: OutboxObserver | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self.node = node
        self._heartbeat = heartbeat
        self._dead_after = timedelta(seconds=dead_after)
        self._observer = observer  # told of the records stored, as the outboxes tell it
        self._task: asyncio.Task[None] | None = None
        self.closed_orphans = 0  # since this process started

    async def start(self) -> int:
        """Close what this node left open when it last died, say it is alive, and keep
        saying it (closing other dead nodes' calls as it goes). Returns the calls closed."""
        closed = await self.sweep(own=True)
        await self._store.heartbeat(self.node, self._clock.now())
        self._task = asyncio.get_running_loop().create_task(self._beat(), context=no_call())
        return closed

    async def close(self) -> None:
        """Stop the heartbeat (if ``start`` did start it); called once routing has ended this
        node's calls."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        try:
            await self._store.leave(self.node)
        except Exception:  # dead after DEAD_AFTER_SECONDS all the same
            log.exception("could not tell the database that node %s stopped", self.node)

    async def sweep(self, *, own: bool = False) -> int:
        """Close the calls of dead nodes (and this node's earlier life's, with ``own``)."""
        closed = 0
        while True:
            now = self._clock.now()
            orphans = await self._store.orphans(
                self.node, now - self._dead_after, own=own, limit=BATCH
            )
            if not orphans:
                return closed
            by_owner: dict[tuple[int, str], list[Orphan]] = defaultdict(list)
            for orphan in orphans:
                by_owner[(orphan.account_id, orphan.node)].append(orphan)
            for (account_id, node), found in by_owner.items():
                closed += await self._close(account_id, node, found, now)
            if len(orphans) < BATCH:
                return closed

    async def _close(self, account_id: int, node: str, orphans: list[Orphan], now: datetime) -> int:
        records: list[CallRecord] = []
        dropped: list[str] = []
        for orphan in orphans:
            try:
                call = call_of(orphan.trace)
            except UnreadableTrace as exc:  # written by another version: nothing to close it with
                log.error("dropping the unreadable trace of call %s: %s", orphan.id_call, exc)
                dropped.append(orphan.id_call)
                continue
            alive = max(orphan.updated_at, orphan.node_seen_at or orphan.updated_at)
            records.append(orphan_record(call, min(alive, now).timestamp(), NODE_DIED))
        stored = set(await self._store.close_orphans(account_id, node, records, dropped))
        ended = [record for record in records if record.id_call in stored]
        if ended:
            log.warning(
                "closed %d call(s) of account %s left open by node %s", len(ended), account_id, node
            )
            if self._observer is not None:
                self._observer.records_stored(account_id, ended)
            events = [("call.ended", event_json(ev.CallEnded(record))) for record in ended]
            try:
                await self._bus.publish_many(account_id, events, now)
            except Exception:  # the records are stored: the stream misses their end
                log.exception("could not publish the end of %d orphaned call(s)", len(ended))
        self.closed_orphans += len(ended)
        return len(ended)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await self._store.heartbeat(self.node, self._clock.now())
                await self.sweep()
            except Exception:  # the database is away: try again on the next beat
                log.exception("node %s: heartbeat or sweep failed", self.node)
