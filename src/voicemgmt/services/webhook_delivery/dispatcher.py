"""``WebhookDispatcher``: webhook delivery on a serving node — its recorders and its sender
started and stopped, and the subscriptions reloaded when they change (here or on another node).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from voicemgmt.domain.webhooks import Subscription
from voicemgmt.services.webhook_delivery.recording import Recording
from voicemgmt.services.webhook_delivery.sending import Sending

log = logging.getLogger("voicemgmt.services.webhook_delivery")


class WebhookDispatcher(Recording, Sending):
    """Copies each account's events into the outbox and delivers them (see the package)."""

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
