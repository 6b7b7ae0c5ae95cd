"""The storage port on SQLAlchemy Core: one ``SqlUnitOfWork`` per transaction.

Integrity errors from the database (a concurrent insert won the race for an email, a login, a
number) are translated here into the domain's ``Conflict`` errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Row, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicemgmt.adapters.sql.tables import (
    accounts,
    groups,
    memberships,
    metadata,
    numbers,
    operators,
    session_tokens,
    supervisors,
)
from voicemgmt.domain.directory import (
    Account,
    Group,
    Membership,
    Number,
    NumberState,
    Operator,
    Supervisor,
    UserRef,
    UserType,
    normalize_email,
)
from voicemgmt.domain.errors import Conflict
from voicemgmt.domain.tokens import SessionToken


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        login=row.login,
        name=row.name,
        password_hash=row.password_hash,
        crm_url=row.crm_url,
        allowed_origins=tuple(row.allowed_origins),
        settings=dict(row.settings),
    )


def _supervisor(row: Row[Any]) -> Supervisor:
    return Supervisor(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        email=row.email,
        password_hash=row.password_hash,
    )


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


class SqlDirectory:
    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def _insert(self, statement: Any, params: Any = None) -> Any:
        try:
            return await self._c.execute(statement, params)
        except IntegrityError as exc:
            raise Conflict("that conflicts with something already stored") from exc

    # accounts

    async def account(self, account_id: int) -> Account | None:
        row = (await self._c.execute(select(accounts).where(accounts.c.id == account_id))).first()
        return _account(row) if row else None

    async def account_by_login(self, login: str) -> Account | None:
        row = (await self._c.execute(select(accounts).where(accounts.c.login == login))).first()
        return _account(row) if row else None

    async def accounts(self) -> list[Account]:
        rows = await self._c.execute(select(accounts).order_by(accounts.c.id))
        return [_account(r) for r in rows]

    async def add_account(
        self, *, login: str, name: str, password_hash: str, now: datetime
    ) -> Account:
        result = await self._insert(
            insert(accounts)
            .values(
                login=login,
                name=name,
                password_hash=password_hash,
                allowed_origins=[],
                settings={},
                created_at=now,
            )
            .returning(accounts)
        )
        return _account(result.one())

    async def save_account(self, account: Account) -> None:
        await self._c.execute(
            update(accounts)
            .where(accounts.c.id == account.id)
            .values(
                name=account.name,
                password_hash=account.password_hash,
                crm_url=account.crm_url,
                allowed_origins=list(account.allowed_origins),
                settings=account.settings,
            )
        )

    async def delete_account(self, account_id: int) -> bool:
        result = await self._c.execute(delete(accounts).where(accounts.c.id == account_id))
        return bool(result.rowcount)

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
            raise Conflict("that conflicts with something already stored") from exc
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

    # groups

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


class SqlUnitOfWork:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def __aenter__(self) -> Self:
        self._connection = await self._engine.connect()
        await self._connection.begin()
        self.directory = SqlDirectory(self._connection)
        self.tokens = SqlTokens(self._connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._connection.in_transaction():
                await self._connection.rollback()
        finally:
            await self._connection.close()

    async def commit(self) -> None:
        try:
            await self._connection.commit()
        except IntegrityError as exc:
            raise Conflict("that conflicts with something already stored") from exc


async def count_rows(engine: AsyncEngine, table_name: str) -> int:
    """Rows in a table: for tests and diagnostics that check nothing changed."""
    async with engine.connect() as connection:
        table = metadata.tables[table_name]
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())
