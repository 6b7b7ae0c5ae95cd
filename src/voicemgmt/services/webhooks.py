"""Webhook subscriptions of an account: the use cases shared by the REST API and the CLI.

Every method checks its input before touching storage, so a refused request changes nothing.
A subscription's URL is checked when it is given (syntax, scheme, and every address its host
resolves to, unless the account may target private addresses); the delivery checks it again
at each attempt. The signing secret is generated here, shown once (in what ``create`` and
``rotate_secret`` return) and kept encrypted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from voicemgmt.domain.errors import (
    InvalidInput,
    InvalidWebhookUrl,
    NoSuchWebhook,
    NoSuchWebhookDelivery,
)
from voicemgmt.domain.webhooks import (
    AttemptView,
    Claimed,
    DeliveryView,
    Outcome,
    RetryPolicy,
    Subscription,
    check_description,
    check_event_kinds,
    check_url,
    new_secret,
    refuse_non_public,
)
from voicemgmt.services.ports import Clock

MAX_PAGE = 1000
MAX_KEEP_PREVIOUS = timedelta(days=7)
DEFAULT_KEEP_PREVIOUS = timedelta(hours=24)
DELIVERY_STATES = ("pending", "delivered", "failed")

Resolver = Callable[[str, int], Awaitable[Sequence[Any]]]
ChangeListener = Callable[[int], Awaitable[None]]


class WebhookStore(Protocol):
    """Subscriptions, per-account settings and stream positions, and the outbox."""

    async def add(
        self,
        account_id: int,
        *,
        url: str,
        description: str,
        event_kinds: tuple[str, ...] | None,
        active: bool,
        secret: str,
        now: datetime,
    ) -> Subscription: ...
    async def get(self, account_id: int, subscription_id: int) -> Subscription | None: ...
    async def subscriptions(
        self, account_id: int, *, limit: int, offset: int
    ) -> list[Subscription]: ...
    async def every_subscription(self) -> list[Subscription]: ...
    async def by_ids(self, ids: Collection[int]) -> dict[int, Subscription]: ...
    async def update(
        self, account_id: int, subscription_id: int, values: Mapping[str, Any], now: datetime
    ) -> Subscription | None: ...
    async def delete(self, account_id: int, subscription_id: int) -> bool: ...
    async def allows_private_targets(self, account_id: int) -> bool: ...
    async def allow_private_targets(self, account_id: int, allowed: bool) -> None: ...
    async def accounts_allowing_private_targets(self, account_ids: Collection[int]) -> set[int]: ...
    async def position(self, account_id: int) -> tuple[int, int]: ...
    async def record(
        self, account_id: int, epoch: int, seq: int, rows: Sequence[Mapping[str, Any]]
    ) -> None: ...
    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Claimed]: ...
    async def release(self, rows: Collection[int]) -> None: ...
    async def finish(
        self, outcomes: Sequence[Outcome], disable_after: timedelta
    ) -> list[Subscription]: ...
    async def deliveries(
        self, account_id: int, subscription_id: int, *, state: str | None, limit: int, offset: int
    ) -> list[DeliveryView]: ...
    async def delivery(
        self, account_id: int, subscription_id: int, delivery_id: str
    ) -> tuple[DeliveryView, list[AttemptView]] | None: ...
    async def last_attempts(
        self, account_id: int, subscription_id: int, limit: int
    ) -> list[tuple[str, str, AttemptView]]: ...
    async def redeliver(
        self,
        account_id: int,
        subscription_id: int,
        delivery_id: str,
        now: datetime,
        expires_at: datetime,
    ) -> bool: ...


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE} and offset not negative")


class WebhookService:
    def __init__(
        self,
        store: WebhookStore,
        clock: Clock,
        resolve: Resolver,
        *,
        allow_http: bool,
        policy: RetryPolicy,
    ) -> None:
        self._store = store
        self._clock = clock
        self._resolve = resolve
        self.allow_http = allow_http
        self.policy = policy
        self._listeners: list[ChangeListener] = []

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener(account_id)`` after each change to an account's subscriptions."""
        self._listeners.append(listener)

    async def _changed(self, account_id: int) -> None:
        for listener in self._listeners:
            await listener(account_id)

    async def _checked_url(self, account_id: int, url: object) -> str:
        target = check_url(url, allow_http=self.allow_http)
        assert isinstance(url, str)
        if await self._store.allows_private_targets(account_id):
            return url
        if target.address is not None:
            refuse_non_public(target.host, [target.address])
            return url
        try:
            addresses = await self._resolve(target.host, target.port)
        except OSError as exc:
            raise InvalidWebhookUrl(
                f"url host {target.host} does not resolve: {exc}", field="url"
            ) from exc
        if not addresses:
            raise InvalidWebhookUrl(f"url host {target.host} does not resolve", field="url")
        refuse_non_public(target.host, addresses)
        return url

    async def create(
        self,
        account_id: int,
        *,
        url: str,
        events: Sequence[str] | None = None,
        description: str = "",
        active: bool = True,
    ) -> Subscription:
        kinds = check_event_kinds(None if events is None else list(events))
        description = check_description(description)
        url = await self._checked_url(account_id, url)
        subscription = await self._store.add(
            account_id,
            url=url,
            description=description,
            event_kinds=kinds,
            active=active,
            secret=new_secret(),
            now=self._clock.now(),
        )
        await self._changed(account_id)
        return subscription

    async def subscriptions(
        self, account_id: int, *, limit: int = 100, offset: int = 0
    ) -> list[Subscription]:
        _page(limit, offset)
        return await self._store.subscriptions(account_id, limit=limit, offset=offset)

    async def subscription(self, account_id: int, subscription_id: int) -> Subscription:
        found = await self._store.get(account_id, subscription_id)
        if found is None:
            raise NoSuchWebhook(f"no webhook {subscription_id}", id_webhook=subscription_id)
        return found

    async def update(
        self,
        account_id: int,
        subscription_id: int,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        description: str | None = None,
        active: bool | None = None,
    ) -> Subscription:
        """Change what is given; ``active=True`` also forgets past failures."""
        changes: dict[str, Any] = {}
        if events is not None:
            kinds = check_event_kinds(list(events))
            changes["event_kinds"] = None if kinds is None else list(kinds)
        if description is not None:
            changes["description"] = check_description(description)
        if url is not None:
            changes["url"] = await self._checked_url(account_id, url)
        if active is not None:
            changes["active"] = active
            changes["disabled_reason"] = None if active else "admin"
            if active:
                changes["failing_since"] = None
        await self.subscription(account_id, subscription_id)
        updated = await self._store.update(account_id, subscription_id, changes, self._clock.now())
        if updated is None:
            raise NoSuchWebhook(f"no webhook {subscription_id}", id_webhook=subscription_id)
        await self._changed(account_id)
        return updated

    async def rotate_secret(
        self,
        account_id: int,
        subscription_id: int,
        *,
        keep_previous: timedelta = DEFAULT_KEEP_PREVIOUS,
    ) -> Subscription:
        """A new secret; the current one keeps signing too (a second ``v1``) for
        ``keep_previous`` (0 to 7 days), so that receivers can switch without losing any."""
        if not timedelta(0) <= keep_previous <= MAX_KEEP_PREVIOUS:
            raise InvalidInput(
                "the previous secret can be kept from 0 seconds to 7 days",
                field="keep_previous_seconds",
            )
        current = await self.subscription(account_id, subscription_id)
        now = self._clock.now()
        keep = keep_previous > timedelta(0) and current.secret != ""  # "": unreadable
        updated = await self._store.update(
            account_id,
            subscription_id,
            {
                "secret": new_secret(),
                "previous_secret": current.secret if keep else None,
                "previous_secret_expires_at": now + keep_previous if keep else None,
            },
            now,
        )
        if updated is None:
            raise NoSuchWebhook(f"no webhook {subscription_id}", id_webhook=subscription_id)
        await self._changed(account_id)
        return updated

    async def delete(self, account_id: int, subscription_id: int) -> None:
        """Remove a subscription with its outbox and log."""
        if not await self._store.delete(account_id, subscription_id):
            raise NoSuchWebhook(f"no webhook {subscription_id}", id_webhook=subscription_id)
        await self._changed(account_id)

    async def deliveries(
        self,
        account_id: int,
        subscription_id: int,
        *,
        state: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DeliveryView]:
        """The subscription's deliveries, newest first."""
        _page(limit, offset)
        if state is not None and state not in DELIVERY_STATES:
            raise InvalidInput(f"state must be one of {', '.join(DELIVERY_STATES)}", field="state")
        await self.subscription(account_id, subscription_id)
        return await self._store.deliveries(
            account_id, subscription_id, state=state, limit=limit, offset=offset
        )

    async def delivery(
        self, account_id: int, subscription_id: int, delivery_id: str
    ) -> tuple[DeliveryView, list[AttemptView]]:
        await self.subscription(account_id, subscription_id)
        found = await self._store.delivery(account_id, subscription_id, delivery_id)
        if found is None:
            raise NoSuchWebhookDelivery(
                f"webhook {subscription_id} has no delivery {delivery_id}",
                id_webhook=subscription_id,
                delivery=delivery_id,
            )
        return found

    async def last_attempts(
        self, account_id: int, subscription_id: int, limit: int = 20
    ) -> list[tuple[str, str, AttemptView]]:
        _page(limit, 0)
        await self.subscription(account_id, subscription_id)
        return await self._store.last_attempts(account_id, subscription_id, limit)

    async def redeliver(
        self, account_id: int, subscription_id: int, delivery_id: str
    ) -> tuple[DeliveryView, list[AttemptView]]:
        """Send a delivery again (same id and body), whatever became of it, with a fresh
        retry period; it goes out once the subscription is active."""
        await self.delivery(account_id, subscription_id, delivery_id)
        now = self._clock.now()
        await self._store.redeliver(
            account_id, subscription_id, delivery_id, now, now + self.policy.retry_for
        )
        await self._changed(account_id)
        return await self.delivery(account_id, subscription_id, delivery_id)

    async def allows_private_targets(self, account_id: int) -> bool:
        return await self._store.allows_private_targets(account_id)

    async def allow_private_targets(self, account_id: int, allowed: bool) -> None:
        """The platform administrator's choice (CLI only): may this account's webhooks go to
        loopback, private and link-local addresses (an on-premises CRM)?"""
        await self._store.allow_private_targets(account_id, allowed)
        await self._changed(account_id)
