"""The directory's queries: their base, and the accounts table.

``SqlRows`` holds one transaction's connection; ``_insert`` runs a statement that may violate
a unique constraint and translates the database's integrity error (a concurrent insert won the
race for a login, an email, a number) into the domain's ``Conflict``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voicemgmt.adapters.sql.tables import accounts
from voicemgmt.domain.directory import Account
from voicemgmt.domain.errors import Conflict

CONFLICT = "that conflicts with something already stored"


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


class SqlRows:
    """Queries over one transaction's connection."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def _insert(self, statement: Any, params: Any = None) -> Any:
        try:
            return await self._c.execute(statement, params)
        except IntegrityError as exc:
            raise Conflict(CONFLICT) from exc


class SqlAccounts(SqlRows):
    """The accounts of ``DirectoryRepository``."""

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
