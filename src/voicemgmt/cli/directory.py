"""``voicemgmt account|operator|admin|group|number …``: the directory from the command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from voicemgmt.bootstrap import Container
from voicemgmt.cli.common import (
    AccountOpt,
    DatabaseOpt,
    JsonOpt,
    account_named,
    parse_groups,
    run_with,
    show,
)
from voicemgmt.domain.directory import Account, screen_pop_mode

account_app = typer.Typer(help="API accounts (one per CRM / company).", no_args_is_help=True)
operator_app = typer.Typer(help="Operators (id_agent).", no_args_is_help=True)
admin_app = typer.Typer(help="Supervisors (id_admin).", no_args_is_help=True)
group_app = typer.Typer(help="Groups (queues, id_group).", no_args_is_help=True)
number_app = typer.Typer(help="Phone numbers routed to groups.", no_args_is_help=True)
DIRECTORY_APPS = (
    (account_app, "account"),
    (operator_app, "operator"),
    (admin_app, "admin"),
    (group_app, "group"),
    (number_app, "number"),
)


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
        found = await account_named(c, account)
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
    memberships = parse_groups(group or [])

    async def job(c: Container) -> dict[str, Any]:
        found = await account_named(c, account)
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
        found = await account_named(c, account)
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
        found = await account_named(c, account)
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
        await c.directory.delete_operator((await account_named(c, account)).id, id_agent)

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
        found = await account_named(c, account)
        return _admin_row(
            await c.directory.create_supervisor(found.id, name=name, email=email, password=password)
        )

    show([run_with(database, job)], as_json, single=True)


@admin_app.command("list")
def admin_list(account: AccountOpt, database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List an account's supervisors."""

    async def job(c: Container) -> list[dict[str, Any]]:
        found = await account_named(c, account)
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
        found = await account_named(c, account)
        return _group_row(await c.directory.create_group(found.id, name=name))

    show([run_with(database, job)], as_json, single=True)


@group_app.command("list")
def group_list(account: AccountOpt, database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List an account's groups."""

    async def job(c: Container) -> list[dict[str, Any]]:
        found = await account_named(c, account)
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
        found = await account_named(c, account)
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
        found = await account_named(c, account)
        return [_number_row(n) for n in await c.directory.numbers(found.id, limit=1000)]

    show(run_with(database, job), as_json)
