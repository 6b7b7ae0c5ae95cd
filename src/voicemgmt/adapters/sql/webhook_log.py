"""The webhook delivery log on SQLAlchemy Core: what an account sees of its outbox (each
delivery and its attempts) and redelivery. Part of :class:`SqlWebhooks`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from voicemgmt.adapters.sql.tables import webhook_attempts, webhook_deliveries
from voicemgmt.domain.webhooks import AttemptView, DeliveryView

_d = webhook_deliveries.c
_a = webhook_attempts.c


class SqlWebhookLog:
    _engine: AsyncEngine

    async def deliveries(
        self, account_id: int, subscription_id: int, *, state: str | None, limit: int, offset: int
    ) -> list[DeliveryView]:
        query = (
            select(webhook_deliveries)
            .where(_d.subscription_id == subscription_id, _d.account_id == account_id)
            .order_by(_d.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if state is not None:
            query = query.where(_d.state == state)
        async with self._engine.connect() as connection:
            return [_view(row) for row in await connection.execute(query)]

    async def delivery(
        self, account_id: int, subscription_id: int, delivery_id: str
    ) -> tuple[DeliveryView, list[AttemptView]] | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(webhook_deliveries).where(
                        _d.delivery_id == delivery_id,
                        _d.subscription_id == subscription_id,
                        _d.account_id == account_id,
                    )
                )
            ).first()
            if row is None:
                return None
            attempts = await connection.execute(
                select(webhook_attempts).where(_a.delivery_row == row.id).order_by(_a.id)
            )
            return _view(row), [
                AttemptView(a.at, a.ok, a.latency_ms, a.response_code, a.error) for a in attempts
            ]

    async def last_attempts(
        self, account_id: int, subscription_id: int, limit: int
    ) -> list[tuple[str, str, AttemptView]]:
        """The newest attempts of a subscription: (delivery id, event kind, attempt)."""
        query = (
            select(_d.delivery_id, _d.event_kind, webhook_attempts)
            .join(webhook_deliveries, _d.id == _a.delivery_row)
            .where(_d.subscription_id == subscription_id, _d.account_id == account_id)
            .order_by(_a.id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            return [
                (
                    r.delivery_id,
                    r.event_kind,
                    AttemptView(r.at, r.ok, r.latency_ms, r.response_code, r.error),
                )
                for r in await connection.execute(query)
            ]

    async def redeliver(
        self,
        account_id: int,
        subscription_id: int,
        delivery_id: str,
        now: datetime,
        expires_at: datetime,
    ) -> bool:
        """Queue a delivery again, whatever its state, with the same id and body."""
        async with self._engine.begin() as connection:
            done = await connection.execute(
                update(webhook_deliveries)
                .where(
                    _d.delivery_id == delivery_id,
                    _d.subscription_id == subscription_id,
                    _d.account_id == account_id,
                )
                .values(
                    state="pending",
                    next_attempt_at=now,
                    expires_at=expires_at,
                    lease_until=None,
                    finished_at=None,
                )
            )
        return bool(done.rowcount)

    async def pending_count(self) -> int:
        async with self._engine.connect() as connection:
            count = await connection.scalar(
                select(func.count()).select_from(webhook_deliveries).where(_d.state == "pending")
            )
        return int(count or 0)


def _view(row: Row[Any]) -> DeliveryView:
    return DeliveryView(
        delivery_id=row.delivery_id,
        subscription_id=row.subscription_id,
        seq=row.seq,
        kind=row.event_kind,
        state=row.state,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at if row.state == "pending" else None,
        finished_at=row.finished_at,
        body=row.body,
    )
