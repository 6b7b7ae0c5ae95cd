"""The SIP device store on SQLAlchemy Core (SQLite and PostgreSQL): one row per operator."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from voicemgmt.adapters.sql.tables import operators, sip_devices
from voicemgmt.domain.errors import DuplicateSipUsername, NoSuchOperator
from voicemgmt.domain.sip import SipDevice

_c = sip_devices.c


def _device(row: Row[Any]) -> SipDevice:
    return SipDevice(
        operator_id=row.operator_id,
        account_id=row.account_id,
        username=row.username,
        realm=row.realm,
        ha1_md5=row.ha1_md5,
        ha1_sha256=row.ha1_sha256,
        contact=row.contact,
        media_encryption=row.media_encryption,
    )


class SqlSipDevices:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def device(self, account_id: int, operator_id: int) -> SipDevice | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(sip_devices).where(
                        _c.account_id == account_id, _c.operator_id == operator_id
                    )
                )
            ).first()
        return None if row is None else _device(row)

    async def by_username(self, username: str) -> SipDevice | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(sip_devices).where(_c.username == username))
            ).first()
        return None if row is None else _device(row)

    async def save(self, device: SipDevice, now: datetime) -> None:
        values = {
            "account_id": device.account_id,
            "username": device.username,
            "realm": device.realm,
            "ha1_md5": device.ha1_md5,
            "ha1_sha256": device.ha1_sha256,
            "contact": device.contact,
            "media_encryption": device.media_encryption,
        }
        try:
            async with self._engine.begin() as connection:
                owner = (
                    await connection.execute(
                        select(operators.c.id).where(
                            operators.c.id == device.operator_id,
                            operators.c.account_id == device.account_id,
                        )
                    )
                ).first()
                if owner is None:
                    raise NoSuchOperator(f"no operator {device.operator_id}")
                done = await connection.execute(
                    update(sip_devices).where(_c.operator_id == device.operator_id).values(values)
                )
                if done.rowcount == 0:
                    await connection.execute(
                        insert(sip_devices).values(
                            operator_id=device.operator_id, created_at=now, **values
                        )
                    )
        except IntegrityError as exc:
            raise DuplicateSipUsername(
                f"sip username {device.username!r} is taken", field="username"
            ) from exc

    async def delete(self, account_id: int, operator_id: int) -> bool:
        async with self._engine.begin() as connection:
            done = await connection.execute(
                delete(sip_devices).where(
                    _c.account_id == account_id, _c.operator_id == operator_id
                )
            )
        return bool(done.rowcount)
