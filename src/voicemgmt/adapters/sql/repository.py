"""The storage port on SQLAlchemy Core: one ``SqlUnitOfWork`` per transaction.

Its ``directory`` (``SqlDirectory``) is made of one query class per aggregate: accounts
(``accounts.py``, with the base that translates integrity errors from the database into the
domain's ``Conflict``), people (``people.py``: operators, supervisors), groups and numbers
(``groups.py``); its ``tokens`` are ``SqlTokens`` (``tokens.py``).
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from voicemgmt.adapters.sql.accounts import CONFLICT, SqlAccounts
from voicemgmt.adapters.sql.groups import SqlGroups
from voicemgmt.adapters.sql.people import SqlPeople
from voicemgmt.adapters.sql.tables import metadata
from voicemgmt.adapters.sql.tokens import SqlTokens
from voicemgmt.domain.errors import Conflict


class SqlDirectory(SqlAccounts, SqlPeople, SqlGroups):
    """``DirectoryRepository`` over one transaction's connection."""


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
            raise Conflict(CONFLICT) from exc


async def count_rows(engine: AsyncEngine, table_name: str) -> int:
    """Rows in a table: for tests and diagnostics that check nothing changed."""
    async with engine.connect() as connection:
        table = metadata.tables[table_name]
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())
