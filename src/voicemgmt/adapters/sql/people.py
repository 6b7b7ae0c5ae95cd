"""The directory's people: operators (with their group memberships) and supervisors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from voicemgmt.adapters.sql.accounts import CONFLICT, SqlRows
from voicemgmt.adapters.sql.tables import memberships, operators, supervisors
from voicemgmt.domain.directory import (
    Membership,
    Operator,
    Supervisor,
    UserRef,
    UserType,
    normalize_email,
)
from voicemgmt.domain.errors import Conflict


def _supervisor(row: Row[Any]) -> Supervisor:
    return Supervisor(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        email=row.email,
        password_hash=row.password_hash,
    )


class SqlPeople(SqlRows):
    """The operators and supervisors of ``DirectoryRepository``, and finding people to log in."""

    async def person_id(
        self, account_id: int, user_type: UserType, *, user_id: int | None, email: str | None
    ) -> int | None:
        table = operators if user_type is UserType.AGENT else supervisors
        query = select(table.c.id).where(table.c.account_id == account_id)
        if user_id is not None:
            query = query.where(table.c.id == user_id)
        else:
            query = query.where(table.c.email_key == normalize_email(email or ""))
        found: int | None = (await self._c.execute(query)).scalar_one_or_none()
        return found

    async def people_with_password(
        self, user_type: UserType, email: str, *, limit: int
    ) -> list[tuple[UserRef, str]]:
        table = operators if user_type is UserType.AGENT else supervisors
        rows = await self._c.execute(
            select(table.c.account_id, table.c.id, table.c.password_hash)
            .where(
                table.c.email_key == normalize_email(email),
                table.c.password_hash.is_not(None),
            )
            .order_by(table.c.account_id)
            .limit(limit)
        )
        return [(UserRef(r.account_id, user_type, r.id), r.password_hash) for r in rows]

    # operators

    async def _memberships(self, operator_ids: Sequence[int]) -> dict[int, list[Membership]]:
        found: dict[int, list[Membership]] = {i: [] for i in operator_ids}
        if not operator_ids:
            return found
        rows = await self._c.execute(
            select(memberships)
            .where(memberships.c.operator_id.in_(operator_ids))
            .order_by(memberships.c.priority, memberships.c.group_id)
        )
        for row in rows:
            found[row.operator_id].append(Membership(row.group_id, row.priority))
        return found

    async def _operators(self, where: Any, *, limit: int = 1, offset: int = 0) -> list[Operator]:
        rows = list(
            await self._c.execute(
                select(operators).where(where).order_by(operators.c.id).limit(limit).offset(offset)
            )
        )
        groups_of = await self._memberships([r.id for r in rows])
        return [
            Operator(
                id=r.id,
                account_id=r.account_id,
                name=r.name,
                email=r.email,
                password_hash=r.password_hash,
                memberships=tuple(groups_of[r.id]),
            )
            for r in rows
        ]

    async def operators(self, account_id: int, *, limit: int, offset: int) -> list[Operator]:
        return await self._operators(
            operators.c.account_id == account_id, limit=limit, offset=offset
        )

    async def operator(self, account_id: int, operator_id: int) -> Operator | None:
        found = await self._operators(
            and_(operators.c.account_id == account_id, operators.c.id == operator_id)
        )
        return found[0] if found else None

    async def operator_by_email(self, account_id: int, email: str) -> Operator | None:
        found = await self._operators(
            and_(
                operators.c.account_id == account_id,
                operators.c.email_key == normalize_email(email),
            )
        )
        return found[0] if found else None

    async def add_operator(
        self,
        account_id: int,
        *,
        name: str,
        email: str,
        password_hash: str | None,
        memberships: Sequence[Membership],
        now: datetime,
    ) -> Operator:
        result = await self._insert(
            insert(operators)
            .values(
                account_id=account_id,
                name=name,
                email=email.strip(),
                email_key=normalize_email(email),
                password_hash=password_hash,
                created_at=now,
            )
            .returning(operators.c.id)
        )
        operator = Operator(
            id=result.scalar_one(),
            account_id=account_id,
            name=name,
            email=email.strip(),
            password_hash=password_hash,
            memberships=tuple(memberships),
        )
        await self._write_memberships(operator)
        return operator

    async def _write_memberships(self, operator: Operator) -> None:
        await self._c.execute(delete(memberships).where(memberships.c.operator_id == operator.id))
        if operator.memberships:
            await self._insert(
                insert(memberships),
                [
                    {"operator_id": operator.id, "group_id": m.group_id, "priority": m.priority}
                    for m in operator.memberships
                ],
            )

    async def save_operator(self, operator: Operator) -> None:
        try:
            await self._c.execute(
                update(operators)
                .where(operators.c.id == operator.id)
                .values(
                    name=operator.name,
                    email=operator.email,
                    email_key=normalize_email(operator.email),
                    password_hash=operator.password_hash,
                )
            )
        except IntegrityError as exc:
            raise Conflict(CONFLICT) from exc
        await self._write_memberships(operator)

    async def delete_operator(self, account_id: int, operator_id: int) -> bool:
        result = await self._c.execute(
            delete(operators).where(
                operators.c.account_id == account_id, operators.c.id == operator_id
            )
        )
        return bool(result.rowcount)

    # supervisors

    async def supervisors(self, account_id: int, *, limit: int, offset: int) -> list[Supervisor]:
        rows = await self._c.execute(
            select(supervisors)
            .where(supervisors.c.account_id == account_id)
            .order_by(supervisors.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [_supervisor(r) for r in rows]

    async def supervisor(self, account_id: int, supervisor_id: int) -> Supervisor | None:
        row = (
            await self._c.execute(
                select(supervisors).where(
                    supervisors.c.account_id == account_id, supervisors.c.id == supervisor_id
                )
            )
        ).first()
        return _supervisor(row) if row else None

    async def supervisor_by_email(self, account_id: int, email: str) -> Supervisor | None:
        row = (
            await self._c.execute(
                select(supervisors).where(
                    supervisors.c.account_id == account_id,
                    supervisors.c.email_key == normalize_email(email),
                )
            )
        ).first()
        return _supervisor(row) if row else None

    async def add_supervisor(
        self,
        account_id: int,
        *,
        name: str,
        email: str,
        password_hash: str | None,
        now: datetime,
    ) -> Supervisor:
        result = await self._insert(
            insert(supervisors)
            .values(
                account_id=account_id,
                name=name,
                email=email.strip(),
                email_key=normalize_email(email),
                password_hash=password_hash,
                created_at=now,
            )
            .returning(supervisors)
        )
        return _supervisor(result.one())

    async def save_supervisor(self, supervisor: Supervisor) -> None:
        await self._insert(
            update(supervisors)
            .where(supervisors.c.id == supervisor.id)
            .values(
                name=supervisor.name,
                email=supervisor.email,
                email_key=normalize_email(supervisor.email),
                password_hash=supervisor.password_hash,
            )
        )

    async def delete_supervisor(self, account_id: int, supervisor_id: int) -> bool:
        result = await self._c.execute(
            delete(supervisors).where(
                supervisors.c.account_id == account_id, supervisors.c.id == supervisor_id
            )
        )
        return bool(result.rowcount)
