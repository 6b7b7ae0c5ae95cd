"""Phones' SIP registrations on SQLAlchemy Core (SQLite and PostgreSQL): one row per device."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from voicemgmt.adapters.sql.tables import sip_registrations
from voicemgmt.domain.sip import SipRegistration

_c = sip_registrations.c


def _registration(row: Row[Any]) -> SipRegistration:
    return SipRegistration(
        operator_id=row.operator_id,
        account_id=row.account_id,
        username=row.username,
        contact=row.contact,
        source_host=row.source_host,
        source_port=row.source_port,
        expires_at=row.expires_at,
    )


class SqlSipRegistrations:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def save(self, registration: SipRegistration) -> None:
        """Replace the device's registration (its operator's row, or its username's)."""
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    delete(sip_registrations).where(
                        (_c.operator_id == registration.operator_id)
                        | (_c.username == registration.username)
                    )
                )
                await connection.execute(
                    insert(sip_registrations).values(
                        operator_id=registration.operator_id,
                        account_id=registration.account_id,
                        username=registration.username,
                        contact=registration.contact,
                        source_host=registration.source_host,
                        source_port=registration.source_port,
                        expires_at=registration.expires_at,
                    )
                )
        except IntegrityError:
            return  # the device was deleted meanwhile: nothing to keep

    async def delete(self, username: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(delete(sip_registrations).where(_c.username == username))

    async def current(self, now: datetime) -> list[SipRegistration]:
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(sip_registrations).where(_c.expires_at > now).order_by(_c.operator_id)
                )
            ).all()
        return [_registration(row) for row in rows]

    async def purge(self, now: datetime) -> int:
        async with self._engine.begin() as connection:
            done = await connection.execute(delete(sip_registrations).where(_c.expires_at <= now))
        return int(done.rowcount or 0)
