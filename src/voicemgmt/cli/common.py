"""What the ``voicemgmt`` commands share: options, settings, the runner, tables, errors.

Human tables by default, ``--json`` for scripts. Wrong input gives one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from voicemgmt.bootstrap import Container, build
from voicemgmt.config import Settings, load_settings
from voicemgmt.domain.directory import Account, Membership
from voicemgmt.domain.errors import VoiceManagementError

T = TypeVar("T")

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="SQLAlchemy URL (sqlite+aiosqlite:///path or postgresql+asyncpg://...); "
        "default VM_DATABASE_URL, then var/voicemgmt.db",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
AccountOpt = Annotated[str, typer.Option("--account", help="The account's API login.")]


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def settings_for(database: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(database_url=database, **overrides)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        fail(f"configuration {where} (VM_{where.upper()}): {message}")


def run_with(database: str | None, job: Callable[[Container], Awaitable[T]]) -> T:
    """Run one job against a started container, turning known errors into exit code 2.

    The container has no telephony (no SIP or RTP socket): a command runs beside a server
    started with the same settings."""

    async def main() -> T:
        container = build(settings_for(database), telephony=False)
        try:
            await container.start()
            return await job(container)
        finally:
            await container.close()

    try:
        return asyncio.run(main())
    except VoiceManagementError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(f"cannot reach the database: {exc.strerror or exc}")
    except Exception as exc:  # a driver error (wrong URL, server down): one line, no traceback
        if type(exc).__module__.startswith(("sqlalchemy", "asyncpg", "sqlite3")):
            fail(f"database error: {str(exc).splitlines()[0][:300]}")
        raise


def show(rows: Sequence[dict[str, Any]], as_json: bool, *, single: bool = False) -> None:
    if as_json:
        print(json.dumps(rows[0] if single else list(rows), ensure_ascii=False))
        return
    if not rows:
        print("(none)")
        return
    table = Table(show_header=True, header_style="bold")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


async def account_named(container: Container, login: str) -> Account:
    return await container.directory.account_by_login(login)


def parse_groups(values: list[str]) -> list[Membership]:
    memberships = []
    for value in values:
        group, colon, priority = value.partition(":")
        try:
            memberships.append(Membership(int(group), int(priority) if colon else 1))
        except ValueError:
            fail(f"--group takes ID or ID:PRIORITY (e.g. 3 or 3:2), not {value!r}")
    return memberships
