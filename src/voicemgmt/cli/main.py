"""``voicemgmt``: serve the product and administer the directory.

Human tables by default, ``--json`` for scripts. Wrong input gives one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from voicemgmt.bootstrap import Container, build
from voicemgmt.cli.sim import sim_app
from voicemgmt.cli.webhooks import webhook_app
from voicemgmt.config import Settings, load_settings
from voicemgmt.domain.directory import Account, Membership, UserType, screen_pop_mode
from voicemgmt.domain.errors import VoiceManagementError

T = TypeVar("T")

app = typer.Typer(
    name="voicemgmt",
    help="Voice Management: a self-hostable contact center built for CRM integration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
account_app = typer.Typer(help="API accounts (one per CRM / company).", no_args_is_help=True)
operator_app = typer.Typer(help="Operators (id_agent).", no_args_is_help=True)
admin_app = typer.Typer(help="Supervisors (id_admin).", no_args_is_help=True)
group_app = typer.Typer(help="Groups (queues, id_group).", no_args_is_help=True)
number_app = typer.Typer(help="Phone numbers routed to groups.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
for sub, name in (
    (account_app, "account"),
    (operator_app, "operator"),
    (admin_app, "admin"),
    (group_app, "group"),
    (number_app, "number"),
    (db_app, "db"),
):
    app.add_typer(sub, name=name)
app.add_typer(sim_app, name="sim")
app.add_typer(webhook_app, name="webhook")

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

_err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _settings(database: str | None, **overrides: Any) -> Settings:
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
        container = build(_settings(database), telephony=False)
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


async def _account(container: Container, login: str) -> Account:
    return await container.directory.account_by_login(login)


def _parse_groups(values: list[str]) -> list[Membership]:
    memberships = []
    for value in values:
        group, colon, priority = value.partition(":")
        try:
            memberships.append(Membership(int(group), int(priority) if colon else 1))
        except ValueError:
            fail(f"--group takes ID or ID:PRIORITY (e.g. 3 or 3:2), not {value!r}")
    return memberships


# serve


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (VM_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (VM_PORT).")] = None,
    demo_calls: Annotated[
        float,
        typer.Option(
            help="Every this many seconds, a simulated call to the demo number while one of "
            "its operators is available (0: none).",
            min=0,
        ),
    ] = 0,
    database: DatabaseOpt = None,
) -> None:
    """Run the HTTP server (migrating the database first)."""
    import uvicorn

    from voicemgmt.cli.demo_calls import serve_with_demo_calls
    from voicemgmt.observability.logs import configure_logging, uvicorn_log_config
    from voicemgmt.runtime import tune_garbage_collector
    from voicemgmt.web.app import create_app
    from voicemgmt.web.serving import uvicorn_config

    settings = _settings(database, host=host, port=port)
    configure_logging(settings.log_level, settings.log_format)

    async def migrate_first(_container: Container) -> None:
        return None  # run_with starts the container, which migrates, and reports errors

    run_with(database, migrate_first)
    app_ = create_app(build(settings))
    tune_garbage_collector()
    if demo_calls > 0:
        serve_with_demo_calls(app_, settings, every=demo_calls)
        return
    config = uvicorn_config(
        app_,
        settings,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(settings.log_format),
    )
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:  # uvicorn has logged why (the port is taken, say)
        raise typer.Exit(3)


# db


@db_app.command("upgrade")
def db_upgrade(database: DatabaseOpt = None) -> None:
    """Create or migrate the schema (the server also does this at start)."""

    async def job(_container: Container) -> None:
        return None

    run_with(database, job)
    print("database is up to date")


# accounts


def _account_row(account: Account) -> dict[str, Any]:
    return {
        "login": account.login,
        "name": account.name,
        "crm_url": account.crm_url,
        "allowed_origins": list(account.allowed_origins),
        "screen_pop": screen_pop_mode(account),
    }


@account_app.command("create")
def account_create(
    name: Annotated[str, typer.Option(help="Company name.")],
    login: Annotated[str, typer.Option(help="API login for Basic auth.")],
    password: Annotated[str, typer.Option(help="API password (8+ characters).")],
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an account with its API credentials."""

    async def job(c: Container) -> Account:
        return await c.directory.create_account(login=login, name=name, password=password)

    show([_account_row(run_with(database, job))], as_json, single=True)


@account_app.command("list")
def account_list(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List accounts."""

    async def job(c: Container) -> list[Account]:
        return await c.directory.accounts()

    show([_account_row(a) for a in run_with(database, job)], as_json)


@account_app.command("set")
def account_set(
    account: AccountOpt,
    crm_url: Annotated[
        str | None, typer.Option(help="URL opened on a screen-pop ('' removes it).")
    ] = None,
    allowed_origin: Annotated[
        list[str] | None,
        typer.Option(help="A CRM origin allowed to frame the banner (repeat; replaces the list)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Company name.")] = None,
    password: Annotated[str | None, typer.Option(help="New API password.")] = None,
    screen_pop: Annotated[
        str | None,
        typer.Option(help="When the banner opens the CRM URL: presentation, answer or off."),
    ] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an account's CRM URL, allowed origins, screen-pop, name or API password."""

    async def job(c: Container) -> Account:
        found = await _account(c, account)
        settings = None if screen_pop is None else {**found.settings, "screen_pop": screen_pop}
        return await c.directory.update_account(
            found.id,
            name=name,
            crm_url=crm_url,
            allowed_origins=allowed_origin,
            settings=settings,
            password=password,
        )

    show([_account_row(run_with(database, job))], as_json, single=True)


# operators


@operator_app.command("create")
def operator_create(
    account: AccountOpt,
    name: Annotated[str, typer.Option(help="Full name.")],
    email: Annotated[str, typer.Option(help="Email, unique in the account.")],
    password: Annotated[
        str | None, typer.Option(help="Password for login_credential (8+ characters).")
    ] = None,
    group: Annotated[
        list[str] | None, typer.Option(help="Group ID, or ID:PRIORITY (repeat).")
    ] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an operator; prints its id_agent."""
    memberships = _parse_groups(group or [])

    async def job(c: Container) -> dict[str, Any]:
        found = await _account(c, account)
        operator = await c.directory.create_operator(
            found.id, name=name, email=email, password=password, memberships=memberships
        )
        return _operator_row(operator)

    show([run_with(database, job)], as_json, single=True)


@operator_app.command("sip-device")
def operator_sip_device(
    account: AccountOpt,
    id_agent: Annotated[int, typer.Option("--id", help="The operator's id_agent.")],
    username: Annotated[str, typer.Option(help="SIP username the phone registers with.")],
    password: Annotated[
        str | None, typer.Option(help="SIP password (8+ characters; kept as digest HA1 only).")
    ] = None,
    contact: Annotated[
        str | None,
        typer.Option(help="Static contact, e.g. sip:ana@192.0.2.10:5060 or sips:ana@host:5061."),
    ] = None,
    media_encryption: Annotated[
        str | None,
        typer.Option(help="SRTP with the phone: required, optional or off (default: unchanged)."),
    ] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give an operator a SIP phone: one that registers (password) or a static contact."""

    async def job(c: Container) -> dict[str, Any]:
        found = await _account(c, account)
        device = await c.sip_devices.set_device(
            found.id,
            id_agent,
            username=username,
            password=password,
            contact=contact,
            media_encryption=media_encryption,
        )
        return {
            "id_agent": device.operator_id,
            "username": device.username,
            "realm": device.realm,
            "contact": device.contact,
            "has_password": device.ha1_md5 is not None,
            "media_encryption": device.media_encryption,
        }

    show([run_with(database, job)], as_json, single=True)


def _operator_row(operator: Any) -> dict[str, Any]:
    return {
        "id_agent": operator.id,
        "name": operator.name,
        "email": operator.email,
        "groups": [f"{m.group_id}:{m.priority}" for m in operator.memberships],
    }


@operator_app.command("list")
def operator_list(
    account: AccountOpt, database: DatabaseOpt = None, as_json: JsonOpt = False
) -> None:
    """List an account's operators."""

    async def job(c: Container) -> list[dict[str, Any]]:
        found = await _account(c, account)
        return [_operator_row(o) for o in await c.directory.operators(found.id, limit=1000)]

    show(run_with(database, job), as_json)


@operator_app.command("delete")
def operator_delete(
    account: AccountOpt,
    id_agent: Annotated[int, typer.Option("--id", help="The operator's id_agent.")],
    database: DatabaseOpt = None,
) -> None:
    """Delete an operator (its tokens stop working at once)."""

    async def job(c: Container) -> None:
        await c.directory.delete_operator((await _account(c, account)).id, id_agent)

    run_with(database, job)
    print(f"operator {id_agent} deleted")


# supervisors


def _admin_row(supervisor: Any) -> dict[str, Any]:
    return {"id_admin": supervisor.id, "name": supervisor.name, "email": supervisor.email}


@admin_app.command("create")
def admin_create(
    account: AccountOpt,
    name: Annotated[str, typer.Option(help="Full name.")],
    email: Annotated[str, typer.Option(help="Email, unique in the account.")],
    password: Annotated[str | None, typer.Option(help="Password (8+ characters).")] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a supervisor; prints its id_admin."""

    async def job(c: Container) -> dict[str, Any]:
        found = await _account(c, account)
        return _admin_row(
            await c.directory.create_supervisor(found.id, name=name, email=email, password=password)
        )

    show([run_with(database, job)], as_json, single=True)


@admin_app.command("list")
def admin_list(account: AccountOpt, database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List an account's supervisors."""

    async def job(c: Container) -> list[dict[str, Any]]:
        found = await _account(c, account)
        return [_admin_row(s) for s in await c.directory.supervisors(found.id, limit=1000)]

    show(run_with(database, job), as_json)


# groups


def _group_row(group: Any) -> dict[str, Any]:
    return {"id_group": group.id, "name": group.name, "settings": group.settings}


@group_app.command("create")
def group_create(
    account: AccountOpt,
    name: Annotated[str, typer.Option(help="Group name, unique in the account.")],
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a group; prints its id_group."""

    async def job(c: Container) -> dict[str, Any]:
        found = await _account(c, account)
        return _group_row(await c.directory.create_group(found.id, name=name))

    show([run_with(database, job)], as_json, single=True)


@group_app.command("list")
def group_list(account: AccountOpt, database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List an account's groups."""

    async def job(c: Container) -> list[dict[str, Any]]:
        found = await _account(c, account)
        return [_group_row(g) for g in await c.directory.groups(found.id, limit=1000)]

    show(run_with(database, job), as_json)


# numbers


def _number_row(number: Any) -> dict[str, Any]:
    return {"e164": number.e164, "id_group": number.group_id, "label": number.label}


@number_app.command("create")
def number_create(
    account: AccountOpt,
    e164: Annotated[str, typer.Option(help="E.164 digits, e.g. 33170200200.")],
    group: Annotated[int, typer.Option(help="id_group receiving its calls.")],
    label: Annotated[str, typer.Option(help="What callers dialled it for.")] = "",
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Route a phone number to a group."""

    async def job(c: Container) -> dict[str, Any]:
        found = await _account(c, account)
        return _number_row(
            await c.directory.create_number(found.id, e164=e164, group_id=group, label=label)
        )

    show([run_with(database, job)], as_json, single=True)


@number_app.command("list")
def number_list(
    account: AccountOpt, database: DatabaseOpt = None, as_json: JsonOpt = False
) -> None:
    """List an account's numbers."""

    async def job(c: Container) -> list[dict[str, Any]]:
        found = await _account(c, account)
        return [_number_row(n) for n in await c.directory.numbers(found.id, limit=1000)]

    show(run_with(database, job), as_json)


def run() -> None:
    """Console-script entry point."""
    app()


# demo


@app.command()
def demo(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Seed the demo account once, and print how to use it."""
    from pathlib import Path

    from voicemgmt.services.demo import credentials_path, demo_token, seed_demo

    settings = _settings(database)
    path = credentials_path(Path(settings.data_dir), settings.database_url)

    base = f"http://{settings.host}:{settings.port}"

    async def job(c: Container) -> Any:
        credentials = await seed_demo(c.directory, path, base)
        operator = await demo_token(c, credentials)
        return credentials, operator, await demo_token(c, credentials, UserType.ADMIN)

    creds, token, supervisor_token = run_with(database, job)
    banner = f"{base}/operateurs/index.htm?token_session={token}"
    example = f"{base}/example/index.htm?token_session={token}"
    supervision = f"{base}/superviseur/index.htm?token_session={supervisor_token}"
    if as_json:
        from dataclasses import asdict

        urls = {"banner_url": banner, "example_url": example, "supervisor_url": supervision}
        print(json.dumps({**asdict(creds), **urls}))
        return
    state = "created" if creds.created else "already there"
    print(
        f"""
Demo account ({state}):
  API login   {creds.api_login} / {creds.api_password}
  operator    id_agent {creds.id_agent}  {creds.operator_email} / {creds.operator_password}
  supervisor  id_admin {creds.id_admin}  {creds.supervisor_email} / {creds.supervisor_password}
  group       id_group {creds.id_group}  number {creds.number}

Open (logged in as the demo operator, {creds.operator_email}):
  the example CRM, with the banner and cnx.js (set yourself Available; calls arrive)
              {example}
  the operator banner alone
              {banner}
Open (logged in as the demo supervisor, {creds.supervisor_email}):
  the supervisor page: operators, queues, today's figures and charts, live
              {supervision}
  API docs    {base}/docs
Get an operator's SSO token (guide §1.1):
  curl -X POST -u "{creds.api_login}:{creds.api_password}" -H "Content-Type: application/json" \\
       -d '{{"id_agent":{creds.id_agent}}}' {base}/vm/token
"""
    )
