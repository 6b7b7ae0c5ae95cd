"""Webhook delivery: from each account's event stream to a durable outbox, then to receivers.

Two loops, on every node that serves:

- **Recorders**, one per account with subscriptions, read the account's stream from the
  position stored in the database and write, in one transaction, one outbox row per matching
  active subscription and the new position. An event published while no recorder ran (a
  restart) is copied when the recorder resumes, as long as the bus still keeps it (Redis); an
  in-memory bus starts afresh with the process, which the recorder notices (the stored
  position is beyond the bus's latest event) and follows as a new *epoch* of the stream.
  Writing the outbox is idempotent, so several nodes may copy the same stream.
- **The sender** claims due deliveries with a lease (``SELECT … FOR UPDATE SKIP LOCKED`` on
  PostgreSQL), so exactly one node attempts each, keeps up to ``concurrency`` attempts in
  flight (a slow receiver holds one slot, never the loop), and stores the outcomes: delivered,
  retried later (:class:`~voicemgmt.domain.webhooks.RetryPolicy`), or given up once expired.
  A subscription whose deliveries have all failed for ``disable_after`` is disabled, and a
  ``webhook.disabled`` event goes out on the account's stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from voicemgmt.domain.errors import ResumeTooOld, SubscriberTooSlow
from voicemgmt.domain.webhooks import (
    WEBHOOK_DISABLED,
    Claimed,
    Outcome,
    RetryPolicy,
    Subscription,
    order_key,
    signature_header,
)
from voicemgmt.services.events import Event, EventBus
from voicemgmt.services.ports import Clock
from voicemgmt.services.webhooks import WebhookStore

log = logging.getLogger(__name__)

USER_AGENT = "VoiceManagement-Webhooks/1"
POSITION_EVERY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class SendResult:
    """One attempt as the receiver answered it (``ok``: a 2xx)."""

    ok: bool
    latency_ms: int
    response_code: int | None
    error: str | None
    # success, http_error (an answer, not 2xx), timeout, connection_error, refused (the
    # target's address is not allowed): observability's WEBHOOK_RESULTS
    result: str


class Sender(Protocol):
    async def send(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        allow_http: bool,
        allow_private: bool,
    ) -> SendResult: ...

    async def aclose(self) -> None: ...


def delivery_body(delivery_id: str, event: Event) -> str:
    """What a receiver gets: the stream's event (``seq``, ``kind``, ``at``, ``data``) and the
    delivery's ``id``, as compact JSON."""
    return '{"id":"' + delivery_id + '",' + event.frame()[1:]


class WebhookDispatcher:
    def __init__(
        self,
        store: WebhookStore,
        bus: EventBus,
        sender: Sender,
        clock: Clock,
        policy: RetryPolicy,
        *,
        allow_http: bool,
        lease: timedelta = timedelta(seconds=60),
        concurrency: int = 100,
        poll_seconds: float = 1.0,
        refresh_seconds: float = 10.0,
        batch_wait: float = 0.01,
        draw: Callable[[], float] = random.random,
        on_attempt: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._on_attempt = on_attempt  # told each attempt's result (the metrics)
        self._bus = bus
        self._sender = sender
        self._clock = clock
        self.policy = policy
        self._allow_http = allow_http
        self._lease = lease
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._refresh_every = refresh_seconds
        self._batch_wait = batch_wait
        self._draw = draw
        self._subscriptions: dict[int, list[Subscription]] = {}  # account → active ones
        self._by_id: dict[int, Subscription] = {}  # the active ones by id
        self._private: set[int] = set()  # accounts allowing private targets
        self._claim_due = True
        self._recorders: dict[int, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._copied: dict[int, tuple[int, int]] = {}  # account → (epoch, seq) copied
        self._leased: set[int] = set()  # outbox rows claimed, outcome not yet stored
        self._outcomes: list[Outcome] = []
        self._wake = asyncio.Event()
        self._refresh_lock = asyncio.Lock()
        self._started = False

    # lifecycle

    async def start(self) -> None:
        self._started = True
        await self.refresh(resume=True)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send_loop()), loop.create_task(self._refresh_loop())]

    async def close(self, drain_seconds: float = 5.0) -> None:
        """Copy what the stream holds into the outbox (bounded wait), then stop."""
        for _ in range(max(1, round(drain_seconds / 0.02))):
            if await self._all_copied():
                break
            await asyncio.sleep(0.02)
        self._started = False
        tasks = [*self._tasks, *self._recorders.values(), *self._in_flight]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            for account_id, (epoch, seq) in self._copied.items():
                await self._store.record(account_id, epoch, seq, [])
            if self._outcomes:  # attempts that ended: store them rather than send them again
                await self._store.finish(self._outcomes, self.policy.disable_after)
            # attempts cut short: due again at once, for this node's successor or another
            await self._store.release(self._leased)
        except Exception:
            log.exception("could not store the last webhook attempts; they will be retried")
        await self._sender.aclose()

    async def _all_copied(self) -> bool:
        for account_id, task in self._recorders.items():
            _, seq = self._copied.get(account_id, (0, -1))
            if not task.done() and seq < await self._bus.last_seq(account_id):
                return False
        return True

    async def subscriptions_changed(self, account_id: int) -> None:
        if self._started:  # a CLI command changes subscriptions without delivering
            await self.refresh()
            self._wake.set()

    async def refresh(self, *, resume: bool = False) -> None:
        """Reload every subscription; start a recorder for each account that has some (from
        its stored position when ``resume``, else from now), stop the others'."""
        async with self._refresh_lock:
            everything = await self._store.every_subscription()
            accounts: dict[int, list[Subscription]] = {}
            for subscription in everything:
                accounts.setdefault(subscription.account_id, [])
                if subscription.active and subscription.secret:  # "": unreadable, see store
                    accounts[subscription.account_id].append(subscription)
            self._subscriptions = accounts
            self._by_id = {s.id: s for subs in accounts.values() for s in subs}
            self._private = await self._store.accounts_allowing_private_targets(set(accounts))
            self._claim_due = True
            loop = asyncio.get_running_loop()
            for account_id in accounts:
                task = self._recorders.get(account_id)
                if task is None or task.done():
                    if not resume:  # a first subscription: from the stream's present on
                        epoch, seq = await self._store.position(account_id)
                        now_seq = await self._bus.last_seq(account_id)
                        if now_seq < seq:  # the bus began afresh since (see _record)
                            epoch += 1
                        await self._store.record(account_id, epoch, now_seq, [])
                    self._recorders[account_id] = loop.create_task(self._record(account_id))
            for account_id in list(self._recorders):
                if account_id not in accounts:
                    self._recorders.pop(account_id).cancel()

    async def _refresh_loop(self) -> None:
        while True:  # subscriptions changed on another node show up here
            await asyncio.sleep(self._refresh_every)
            try:
                await self.refresh()
            except Exception:
                log.exception("could not reload webhook subscriptions; will retry")

    # recording: the stream into the outbox

    async def _record(self, account_id: int) -> None:
        while True:
            try:
                epoch, seq = await self._store.position(account_id)
                if seq > await self._bus.last_seq(account_id):
                    # The bus began afresh (an in-memory bus after a restart): a new epoch.
                    epoch, seq = epoch + 1, 0
                    await self._store.record(account_id, epoch, seq, [])
                await self._copy(account_id, epoch, seq)
            except ResumeTooOld as exc:
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

    # sending: the outbox to the receivers

    async def _send_loop(self) -> None:
        while True:
            self._wake.clear()  # before the step: a wake-up during it is not lost
            try:
                worked = await self._send_step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook delivery step failed; will retry")
                worked = False
                await asyncio.sleep(self._poll)
            if worked and self._in_flight:
                # let more attempts end, to store their outcomes together
                await asyncio.sleep(self._batch_wait)
            elif not worked:
                try:
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
                except TimeoutError:
                    self._claim_due = True  # retries fall due with time

    async def _send_step(self) -> bool:
        """Store finished attempts, then start due ones; False when there was nothing to do."""
        worked = False
        if self._outcomes:
            done, self._outcomes = self._outcomes, []
            try:
                disabled = await self._store.finish(done, self.policy.disable_after)
            except Exception:
                self._outcomes = done + self._outcomes  # stored at the next step
                raise
            self._leased.difference_update(o.claimed.row for o in done)
            for gone in disabled:
                await self._announce_disabled(gone)
            worked = True
            self._claim_due = True  # the next deliveries of those calls may go now
        free = self._concurrency - len(self._in_flight)
        if not self._claim_due or free <= 0:
            return worked  # claims cost a query: only when something may be due
        if self._in_flight and free < self._concurrency // 4:
            return worked  # and make each one count
        self._claim_due = False
        claimed = await self._store.claim(self._clock.now(), self._lease, free)
        if not claimed:
            return worked
        subscriptions = {
            c.subscription_id: self._by_id[c.subscription_id]
            for c in claimed
            if c.subscription_id in self._by_id
        }
        unknown = {c.subscription_id for c in claimed} - set(subscriptions)
        if unknown:  # made by another node since the last refresh
            subscriptions.update(await self._store.by_ids(unknown))
        private = self._private
        if {c.account_id for c in claimed} - set(self._subscriptions):
            private = await self._store.accounts_allowing_private_targets(
                {c.account_id for c in claimed}
            )
        loop = asyncio.get_running_loop()
        for item in claimed:
            subscription = subscriptions.get(item.subscription_id)
            if subscription is None or not subscription.secret:
                continue  # deleted meanwhile (with its outbox), or its secret is unreadable
            self._leased.add(item.row)
            task = loop.create_task(self._attempt(item, subscription, item.account_id in private))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return True

    async def _attempt(self, item: Claimed, subscription: Subscription, private: bool) -> None:
        now = self._clock.now()
        timestamp = int(now.timestamp())
        body = item.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "VM-Webhook-Id": item.delivery_id,
            "VM-Webhook-Timestamp": str(timestamp),
            "VM-Webhook-Signature": signature_header(
                subscription.signing_secrets(now), timestamp, body
            ),
            "VM-Webhook-Event": item.kind,
            "VM-Webhook-Attempt": str(item.attempts + 1),
        }
        try:
            result = await self._sender.send(
                subscription.url, body, headers, allow_http=self._allow_http, allow_private=private
            )
            ok, latency, code, error = (
                result.ok,
                result.latency_ms,
                result.response_code,
                result.error,
            )
            kind = result.result
        except Exception as exc:  # a bug in sending must not lose the delivery
            log.exception("sending webhook delivery %s failed", item.delivery_id)
            ok, latency, code, error = False, 0, None, f"internal error: {type(exc).__name__}"
            kind = "internal_error"
        if self._on_attempt is not None:
            self._on_attempt(kind)
        at = self._clock.now()
        retry_at: datetime | None = None
        if not ok:
            retry_at = at + self.policy.delay(item.attempts + 1, self._draw())
            if retry_at > item.expires_at:
                retry_at = None
        self._outcomes.append(Outcome(item, at, ok, latency, code, error, retry_at))
        self._wake.set()

    async def _announce_disabled(self, subscription: Subscription) -> None:
        log.warning(
            "webhook %s of account %s disabled: every delivery failed since %s",
            subscription.id,
            subscription.account_id,
            subscription.failing_since,
        )
        await self.refresh()  # first, so that the disabled one does not get this event
        failing_since = subscription.failing_since
        await self._bus.publish(
            subscription.account_id,
            WEBHOOK_DISABLED,
            {
                "id_webhook": subscription.id,
                "url": subscription.url,
                "reason": "failing",
                "failing_since": None if failing_since is None else failing_since.isoformat(),
            },
            self._clock.now(),
        )
