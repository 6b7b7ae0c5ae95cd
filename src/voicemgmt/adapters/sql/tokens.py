"""Session tokens (``TokenRepository``): stored by digest, looked up, renewed, revoked, purged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voicemgmt.adapters.sql.tables import session_tokens
from voicemgmt.domain.directory import UserRef, UserType
from voicemgmt.domain.tokens import SessionToken


def _token(row: Row[Any]) -> SessionToken:
    return SessionToken(
        id=row.id,
        user=UserRef(row.account_id, UserType(row.user_type), row.user_id),
        digest=bytes(row.digest),
        seed=bytes(row.seed),
        ip=row.ip,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked=row.revoked,
    )


class SqlTokens:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def add(
        self,
        user: UserRef,
        *,
        digest: bytes,
        seed: bytes,
        ip: str | None,
        now: datetime,
        expires_at: datetime,
    ) -> SessionToken:
        result = await self._c.execute(
            insert(session_tokens)
            .values(
                account_id=user.account_id,
                user_type=user.user_type.value,
                user_id=user.user_id,
                digest=digest,
                seed=seed,
                ip=ip,
                created_at=now,
                expires_at=expires_at,
                revoked=False,
            )
            .returning(session_tokens.c.id)
        )
        return SessionToken(
            id=result.scalar_one(),
            user=user,
            digest=digest,
            seed=seed,
            ip=ip,
            created_at=now,
            expires_at=expires_at,
        )

    async def by_digest(self, digest: bytes) -> SessionToken | None:
        row = (
            await self._c.execute(select(session_tokens).where(session_tokens.c.digest == digest))
        ).first()
        return _token(row) if row else None

    async def latest_live(self, user: UserRef, now: datetime) -> SessionToken | None:
        row = (
            await self._c.execute(
                select(session_tokens)
                .where(
                    session_tokens.c.account_id == user.account_id,
                    session_tokens.c.user_type == user.user_type.value,
                    session_tokens.c.user_id == user.user_id,
                    session_tokens.c.revoked.is_(False),
                    session_tokens.c.expires_at > now,
                )
                .order_by(session_tokens.c.expires_at.desc())
                .limit(1)
            )
        ).first()
        return _token(row) if row else None

    async def set_expiry(self, token_id: int, expires_at: datetime) -> None:
        await self._c.execute(
            update(session_tokens)
            .where(session_tokens.c.id == token_id)
            .values(expires_at=expires_at)
        )

    async def revoke(self, token_id: int) -> None:
        await self._c.execute(
            update(session_tokens).where(session_tokens.c.id == token_id).values(revoked=True)
        )

    async def revoke_user(self, account_id: int, user_type: UserType, user_id: int) -> int:
        result = await self._c.execute(
            update(session_tokens)
            .where(
                session_tokens.c.account_id == account_id,
                session_tokens.c.user_type == user_type.value,
                session_tokens.c.user_id == user_id,
                session_tokens.c.revoked.is_(False),
            )
            .values(revoked=True)
        )
        return int(result.rowcount)

    async def purge_expired(self, before: datetime) -> int:
        result = await self._c.execute(
            delete(session_tokens).where(session_tokens.c.expires_at < before)
        )
        return int(result.rowcount)
