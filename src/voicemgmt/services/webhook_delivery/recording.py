"""Webhook recorders: each account's event stream copied into the durable outbox.

One recorder per account with subscriptions reads the stream from the position stored in the
database and writes, in one transaction, one outbox row per matching active subscription and
the new position. A bus that began afresh (an in-memory bus after a restart, or a Redis stream
numbered anew under another epoch) is followed as a new epoch of the stored position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from voicemgmt.domain.errors import ResumeTooOld, SubscriberTooSlow
from voicemgmt.domain.webhooks import order_key
from voicemgmt.services.events import Event
from voicemgmt.services.webhook_delivery.base import DispatcherBase

log = logging.getLogger("voicemgmt.services.webhook_delivery")

POSITION_EVERY_SECONDS = 1.0


def delivery_body(delivery_id: str, event: Event) -> str:
    """What a receiver gets: the stream's event (``seq``, ``kind``, ``at``, ``data``) and the
    delivery's ``id``, as compact JSON."""
    return '{"id":"' + delivery_id + '",' + event.frame()[1:]


class Recording(DispatcherBase):
    """The recorders of ``WebhookDispatcher``."""

    async def _record(self, account_id: int) -> None:
        while True:
            try:
                epoch, seq = await self._store.position(account_id)
                stream = await self._bus.epoch(account_id)
                seen = self._streams.get(account_id)
                # The bus began afresh: an in-memory bus after a restart, or a bus whose epoch
                # changed since this recorder last read (unless another node moved on already).
                afresh = seen is not None and seen[1] != stream and seen[0] == epoch
                if afresh or seq > await self._bus.last_seq(account_id):
                    epoch, seq = epoch + 1, 0
                    await self._store.record(account_id, epoch, seq, [])
                self._streams[account_id] = (epoch, stream)
                await self._copy(account_id, epoch, seq)
            except ResumeTooOld as exc:
                if exc.details.get("epoch") is not None:
                    continue  # the stream was lost (Redis): start again on the new one
                first_kept = exc.details.get("first_kept") or await self._bus.last_seq(account_id)
                log.error(
                    "webhooks of account %s missed events %s to %s: no longer kept by the bus",
                    account_id,
                    exc.details.get("after"),
                    first_kept - 1,
                )
                await self._store.record(account_id, epoch, int(first_kept) - 1, [])
            except SubscriberTooSlow:
                continue  # resume from the stored position
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("copying account %s's events to its webhooks failed", account_id)
                await asyncio.sleep(1)

    async def _copy(self, account_id: int, epoch: int, after: int) -> None:
        queue: asyncio.Queue[Event] = asyncio.Queue()

        async def read() -> None:
            async with self._bus.subscribe(account_id, after=after) as events:
                async for event in events:
                    queue.put_nowait(event)

        reader = asyncio.get_running_loop().create_task(read())
        written = time.monotonic()
        self._copied[account_id] = (epoch, after)
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    reader.result()  # raises what ended the subscription
                    return
                batch = [getter.result()]
                await asyncio.sleep(self._batch_wait)  # a step's events come together
                while not queue.empty() and len(batch) < 500:
                    batch.append(queue.get_nowait())
                rows = self._rows(account_id, epoch, batch)
                # Events no subscription wants need not move the stored position each time:
                # copying them again after a restart adds nothing.
                if rows or time.monotonic() - written > POSITION_EVERY_SECONDS:
                    await self._store.record(account_id, epoch, batch[-1].seq, rows)
                    written = time.monotonic()
                if rows:
                    self._claim_due = True
                    self._wake.set()
                self._copied[account_id] = (epoch, batch[-1].seq)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    def _rows(self, account_id: int, epoch: int, events: Sequence[Event]) -> list[dict[str, Any]]:
        now = self._clock.now()
        rows = []
        for event in events:
            for subscription in self._subscriptions.get(account_id, ()):
                if not subscription.wants(event.kind):
                    continue
                delivery_id = str(uuid.uuid4())
                rows.append(
                    {
                        "delivery_id": delivery_id,
                        "subscription_id": subscription.id,
                        "account_id": account_id,
                        "stream_epoch": epoch,
                        "seq": event.seq,
                        "event_kind": event.kind,
                        "order_key": order_key(event.kind, event.data),
                        "body": delivery_body(delivery_id, event),
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "expires_at": now + self.policy.retry_for,
                        "created_at": now,
                    }
                )
        return rows
