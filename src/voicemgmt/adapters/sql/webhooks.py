"""The webhook store on SQLAlchemy Core (SQLite and PostgreSQL): subscriptions, the outbox.

The outbox is shared by every node. Writing it is idempotent (one row per subscription and
event, whoever copies the event first), and claiming due deliveries is one ``UPDATE … WHERE id
IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`` that sets a lease, so two nodes never send
the same delivery at once; on SQLite the statement takes the database's write lock.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, exists, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicemgmt.adapters.secret_box import SecretBox, SecretUnreadable
from voicemgmt.adapters.sql.tables import (
    UtcDateTime,
    webhook_accounts,
    webhook_attempts,
    webhook_deliveries,
    webhook_subscriptions,
)
from voicemgmt.adapters.sql.webhook_log import SqlWebhookLog
from voicemgmt.domain.webhooks import Claimed, Outcome, Subscription

log = logging.getLogger(__name__)

_s = webhook_subscriptions.c
_d = webhook_deliveries.c
_a = webhook_attempts.c
_w = webhook_accounts.c


class SqlWebhooks(SqlWebhookLog):
    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box
        self._dialect = engine.dialect.name

    def _open(self, sealed: bytes | None, subscription_id: int) -> str | None:
        if sealed is None:
            return None
        try:
            return self._box.open(sealed)
        except SecretUnreadable:
            # The platform's secret key changed: the subscription stays manageable (and its
            # secret can be rotated) but sends nothing until then. "" is never a secret.
            log.error("webhook %s: its signing secret does not decrypt; rotate it", subscription_id)
            return ""

    def _subscription(self, row: Row[Any]) -> Subscription:
        return Subscription(
            id=row.id,
            account_id=row.account_id,
            url=row.url,
            description=row.description,
            event_kinds=None if row.event_kinds is None else tuple(row.event_kinds),
            active=row.active,
            disabled_reason=row.disabled_reason,
            secret=self._open(row.secret, row.id) or "",
            previous_secret=self._open(row.previous_secret, row.id) or None,
            previous_secret_expires_at=row.previous_secret_expires_at,
            failing_since=row.failing_since,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    # subscriptions

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
    ) -> Subscription:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                insert(webhook_subscriptions).values(
                    account_id=account_id,
                    url=url,
                    description=description,
                    event_kinds=None if event_kinds is None else list(event_kinds),
                    active=active,
                    disabled_reason=None if active else "admin",
                    secret=self._box.seal(secret),
                    created_at=now,
                    updated_at=now,
                )
            )
            (new_id,) = result.inserted_primary_key or (None,)
            row = (
                await connection.execute(select(webhook_subscriptions).where(_s.id == new_id))
            ).one()
        return self._subscription(row)

    async def get(self, account_id: int, subscription_id: int) -> Subscription | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(webhook_subscriptions).where(
                        _s.id == subscription_id, _s.account_id == account_id
                    )
                )
            ).first()
        return None if row is None else self._subscription(row)

    async def subscriptions(
        self, account_id: int, *, limit: int, offset: int
    ) -> list[Subscription]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(webhook_subscriptions)
                .where(_s.account_id == account_id)
                .order_by(_s.id)
                .limit(limit)
                .offset(offset)
            )
            return [self._subscription(row) for row in rows]

    async def every_subscription(self) -> list[Subscription]:
        """Every account's subscriptions, active or not."""
        query = select(webhook_subscriptions).order_by(_s.id)
        async with self._engine.connect() as connection:
            return [self._subscription(row) for row in await connection.execute(query)]

    async def by_ids(self, ids: Collection[int]) -> dict[int, Subscription]:
        query = select(webhook_subscriptions).where(_s.id.in_(list(ids)))
        async with self._engine.connect() as connection:
            return {row.id: self._subscription(row) for row in await connection.execute(query)}

    async def accounts_allowing_private_targets(self, account_ids: Collection[int]) -> set[int]:
        query = select(_w.account_id).where(
            _w.account_id.in_(list(account_ids)), _w.allow_private_targets.is_(True)
        )
        async with self._engine.connect() as connection:
            return set((await connection.scalars(query)).all())

    async def update(
        self, account_id: int, subscription_id: int, values: Mapping[str, Any], now: datetime
    ) -> Subscription | None:
        """Change columns; ``secret`` and ``previous_secret`` are given in clear."""
        changes = dict(values)
        for name in ("secret", "previous_secret"):
            if changes.get(name) is not None:
                changes[name] = self._box.seal(changes[name])
        async with self._engine.begin() as connection:
            done = await connection.execute(
                update(webhook_subscriptions)
                .where(_s.id == subscription_id, _s.account_id == account_id)
                .values(updated_at=now, **changes)
            )
            if not done.rowcount:
                return None
            row = (
                await connection.execute(
                    select(webhook_subscriptions).where(_s.id == subscription_id)
                )
            ).one()
        return self._subscription(row)

    async def delete(self, account_id: int, subscription_id: int) -> bool:
        async with self._engine.begin() as connection:
            done = await connection.execute(
                delete(webhook_subscriptions).where(
                    _s.id == subscription_id, _s.account_id == account_id
                )
            )
        return bool(done.rowcount)

    # per-account settings and stream position

    async def _ensure_account(self, connection: AsyncConnection, account_id: int) -> None:
        await connection.execute(
            self._insert(webhook_accounts)
            .values(
                account_id=account_id, allow_private_targets=False, stream_epoch=0, stream_seq=0
            )
            .on_conflict_do_nothing(index_elements=["account_id"])
        )

    async def allows_private_targets(self, account_id: int) -> bool:
        async with self._engine.connect() as connection:
            allowed = await connection.scalar(
                select(_w.allow_private_targets).where(_w.account_id == account_id)
            )
        return bool(allowed)

    async def allow_private_targets(self, account_id: int, allowed: bool) -> None:
        async with self._engine.begin() as connection:
            await self._ensure_account(connection, account_id)
            await connection.execute(
                update(webhook_accounts)
                .where(_w.account_id == account_id)
                .values(allow_private_targets=allowed)
            )

    async def position(self, account_id: int) -> tuple[int, int]:
        """How far the account's stream is copied: (epoch, seq); (0, 0) at first."""
        async with self._engine.begin() as connection:
            await self._ensure_account(connection, account_id)
            row = (
                await connection.execute(
                    select(_w.stream_epoch, _w.stream_seq).where(_w.account_id == account_id)
                )
            ).one()
        return row.stream_epoch, row.stream_seq

    async def record(
        self, account_id: int, epoch: int, seq: int, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Add outbox rows (each at most once) and move the position forward, atomically."""
        async with self._engine.begin() as connection:
            if rows:
                await connection.execute(
                    self._insert(webhook_deliveries).on_conflict_do_nothing(
                        index_elements=["subscription_id", "stream_epoch", "seq"]
                    ),
                    [dict(row) for row in rows],
                )
            await connection.execute(
                update(webhook_accounts)
                .where(
                    _w.account_id == account_id,
                    or_(
                        _w.stream_epoch < epoch,
                        and_(_w.stream_epoch == epoch, _w.stream_seq < seq),
                    ),
                )
                .values(stream_epoch=epoch, stream_seq=seq)
            )

    # the delivery queue

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries of active subscriptions, oldest first, never
        one with an earlier delivery of the same call (order key) still pending."""
        earlier = webhook_deliveries.alias("earlier")
        due = (
            select(_d.id)
            .join(webhook_subscriptions, _s.id == _d.subscription_id)
            .where(
                _d.state == "pending",
                _d.next_attempt_at <= now,
                or_(_d.lease_until.is_(None), _d.lease_until < now),
                _s.active.is_(True),
                ~exists().where(
                    earlier.c.subscription_id == _d.subscription_id,
                    earlier.c.order_key == _d.order_key,
                    earlier.c.state == "pending",
                    earlier.c.id < _d.id,
                ),
            )
            .order_by(_d.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=webhook_deliveries)
        )
        statement = (
            update(webhook_deliveries)
            .where(_d.id.in_(due.scalar_subquery()))
            .values(lease_until=now + lease)
            .returning(
                _d.id,
                _d.delivery_id,
                _d.subscription_id,
                _d.account_id,
                _d.event_kind,
                _d.body,
                _d.attempts,
                _d.expires_at,
            )
        )
        async with self._engine.begin() as connection:
            rows = (await connection.execute(statement)).all()
        return sorted(
            (
                Claimed(
                    r.id,
                    r.delivery_id,
                    r.subscription_id,
                    r.account_id,
                    r.event_kind,
                    r.body,
                    r.attempts,
                    r.expires_at,
                )
                for r in rows
            ),
            key=lambda c: c.row,
        )

    async def release(self, rows: Collection[int]) -> None:
        """Give leased deliveries back unattempted (a node stopping)."""
        if not rows:
            return
        async with self._engine.begin() as connection:
            await connection.execute(
                update(webhook_deliveries)
                .where(_d.id.in_(list(rows)), _d.state == "pending")
                .values(lease_until=None)
            )

    async def finish(
        self, outcomes: Sequence[Outcome], disable_after: timedelta
    ) -> list[Subscription]:
        """Store attempts and their consequences; returns the subscriptions this disabled
        (failing for ``disable_after`` with no success)."""
        if not outcomes:
            return []
        now = max(o.at for o in outcomes)
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(webhook_attempts),
                [
                    {
                        "delivery_row": o.claimed.row,
                        "at": o.at,
                        "ok": o.ok,
                        "latency_ms": o.latency_ms,
                        "response_code": o.response_code,
                        "error": None if o.error is None else o.error[:500],
                    }
                    for o in outcomes
                ],
            )
            changes = []
            for o in outcomes:
                state = "delivered" if o.ok else ("pending" if o.retry_at else "failed")
                changes.append(
                    {
                        "row": o.claimed.row,
                        "new_state": state,
                        "next": o.retry_at or o.at,
                        "finished": None if state == "pending" else o.at,
                    }
                )
            await connection.execute(
                update(webhook_deliveries)
                .where(_d.id == bindparam("row"))
                .values(
                    state=bindparam("new_state"),
                    attempts=_d.attempts + 1,
                    next_attempt_at=bindparam("next", type_=UtcDateTime),
                    lease_until=None,
                    finished_at=bindparam("finished", type_=UtcDateTime),
                ),
                changes,
            )
            succeeded = {o.claimed.subscription_id for o in outcomes if o.ok}
            failed = {o.claimed.subscription_id for o in outcomes if not o.ok} - succeeded
            if succeeded:
                await connection.execute(
                    update(webhook_subscriptions)
                    .where(_s.id.in_(succeeded), _s.failing_since.is_not(None))
                    .values(failing_since=None)
                )
            if not failed:
                return []
            await connection.execute(
                update(webhook_subscriptions)
                .where(_s.id.in_(failed), _s.failing_since.is_(None))
                .values(failing_since=now)
            )
            disabled = (
                await connection.execute(
                    update(webhook_subscriptions)
                    .where(
                        _s.id.in_(failed),
                        _s.active.is_(True),
                        _s.failing_since <= now - disable_after,
                    )
                    .values(active=False, disabled_reason="failing", updated_at=now)
                    .returning(*webhook_subscriptions.c)
                )
            ).all()
        return [self._subscription(row) for row in disabled]
