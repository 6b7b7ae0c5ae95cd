"""The webhook sender: due outbox rows claimed with a lease, attempted, outcomes stored.

Up to ``concurrency`` attempts are in flight (a slow receiver holds one slot, never the loop);
outcomes are stored in batches: delivered, retried later (``RetryPolicy``), or given up once
expired. A subscription whose deliveries have all failed for ``disable_after`` is disabled,
and a ``webhook.disabled`` event goes out on the account's stream.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from voicemgmt.domain.webhooks import (
    WEBHOOK_DISABLED,
    Claimed,
    Outcome,
    Subscription,
    signature_header,
)
from voicemgmt.services.webhook_delivery.base import DispatcherBase

log = logging.getLogger("voicemgmt.services.webhook_delivery")

USER_AGENT = "VoiceManagement-Webhooks/1"


class Sending(DispatcherBase):
    """The sender of ``WebhookDispatcher``."""

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
