"""The directory's groups and the phone numbers that route to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update

from voicemgmt.adapters.sql.accounts import SqlRows
from voicemgmt.adapters.sql.tables import groups, numbers
from voicemgmt.domain.directory import Group, Number, NumberState


def _group(row: Row[Any]) -> Group:
    return Group(id=row.id, account_id=row.account_id, name=row.name, settings=dict(row.settings))


def _number(row: Row[Any]) -> Number:
    return Number(
        e164=row.e164,
        account_id=row.account_id,
        group_id=row.group_id,
        label=row.label,
        ivr=row.ivr,
        state=NumberState(row.state),
        record=bool(row.record),
    )


class SqlGroups(SqlRows):
    """The groups and numbers of ``DirectoryRepository``."""

    async def groups(self, account_id: int, *, limit: int, offset: int) -> list[Group]:
        rows = await self._c.execute(
            select(groups)
            .where(groups.c.account_id == account_id)
            .order_by(groups.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [_group(r) for r in rows]

    async def group(self, account_id: int, group_id: int) -> Group | None:
        row = (
            await self._c.execute(
                select(groups).where(groups.c.account_id == account_id, groups.c.id == group_id)
            )
        ).first()
        return _group(row) if row else None

    async def group_by_name(self, account_id: int, name: str) -> Group | None:
        row = (
            await self._c.execute(
                select(groups).where(
                    groups.c.account_id == account_id, groups.c.name_key == name.strip().lower()
                )
            )
        ).first()
        return _group(row) if row else None

    async def add_group(
        self, account_id: int, *, name: str, settings: dict[str, Any], now: datetime
    ) -> Group:
        result = await self._insert(
            insert(groups)
            .values(
                account_id=account_id,
                name=name.strip(),
                name_key=name.strip().lower(),
                settings=settings,
                created_at=now,
            )
            .returning(groups)
        )
        return _group(result.one())

    async def save_group(self, group: Group) -> None:
        await self._insert(
            update(groups)
            .where(groups.c.id == group.id)
            .values(
                name=group.name.strip(),
                name_key=group.name.strip().lower(),
                settings=group.settings,
            )
        )

    async def delete_group(self, account_id: int, group_id: int) -> bool:
        result = await self._insert(
            delete(groups).where(groups.c.account_id == account_id, groups.c.id == group_id)
        )
        return bool(result.rowcount)

    async def numbers_of_group(self, account_id: int, group_id: int) -> list[Number]:
        rows = await self._c.execute(
            select(numbers)
            .where(numbers.c.account_id == account_id, numbers.c.group_id == group_id)
            .order_by(numbers.c.e164)
        )
        return [_number(r) for r in rows]

    # numbers

    async def numbers(self, account_id: int, *, limit: int, offset: int) -> list[Number]:
        rows = await self._c.execute(
            select(numbers)
            .where(numbers.c.account_id == account_id)
            .order_by(numbers.c.e164)
            .limit(limit)
            .offset(offset)
        )
        return [_number(r) for r in rows]

    async def number(self, e164: str) -> Number | None:
        row = (await self._c.execute(select(numbers).where(numbers.c.e164 == e164))).first()
        return _number(row) if row else None

    async def add_number(self, number: Number, *, now: datetime) -> None:
        await self._insert(
            insert(numbers).values(
                e164=number.e164,
                account_id=number.account_id,
                group_id=number.group_id,
                label=number.label,
                ivr=number.ivr,
                state=number.state.value,
                record=number.record,
                created_at=now,
            )
        )

    async def save_number(self, number: Number) -> None:
        await self._c.execute(
            update(numbers)
            .where(numbers.c.e164 == number.e164, numbers.c.account_id == number.account_id)
            .values(
                group_id=number.group_id,
                label=number.label,
                ivr=number.ivr,
                state=number.state.value,
                record=number.record,
            )
        )

    async def delete_number(self, account_id: int, e164: str) -> bool:
        result = await self._c.execute(
            delete(numbers).where(numbers.c.account_id == account_id, numbers.c.e164 == e164)
        )
        return bool(result.rowcount)
