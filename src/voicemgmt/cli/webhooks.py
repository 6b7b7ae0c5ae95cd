"""``voicemgmt webhook …``: an account's webhook subscriptions, their log and redelivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer

from voicemgmt.bootstrap import Container
from voicemgmt.domain.webhooks import ALL_KINDS, Subscription
from voicemgmt.web.webhook_schemas import (
    DeliveryDetailOut,
    DeliveryOut,
    WebhookOut,
    WebhookWithSecretOut,
)

webhook_app = typer.Typer(
    help="Webhooks: signed POSTs of an account's events (docs/webhooks.md).",
    no_args_is_help=True,
)

IdOpt = Annotated[int, typer.Option("--id", help="The webhook's id_webhook.")]
AccountOpt = Annotated[str, typer.Option("--account", help="The account's API login.")]
DatabaseOpt = Annotated[str | None, typer.Option("--database", show_default=False)]


def _main() -> Any:
    from voicemgmt.cli import common  # the shared options and runner

    return common


def _row(subscription: Subscription, *, secret: bool = False) -> dict[str, Any]:
    out = (WebhookWithSecretOut if secret else WebhookOut).of(subscription)
    return out.model_dump(mode="json")


@webhook_app.command("add")
def webhook_add(
    account: AccountOpt,
    url: Annotated[str, typer.Option(help="https:// URL receiving the POSTs.")],
    event: Annotated[
        list[str] | None,
        typer.Option(help="An event kind to send (repeat); default: every kind."),
    ] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    database: DatabaseOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Subscribe a URL; prints the signing secret, shown only this once."""
    m = _main()

    async def job(c: Container) -> dict[str, Any]:
        found = await c.directory.account_by_login(account)
        created = await c.webhooks.create(
            found.id, url=url, events=event or [ALL_KINDS], description=description
        )
        return _row(created, secret=True)

    m.show([m.run_with(database, job)], as_json, single=True)


@webhook_app.command("list")
def webhook_list(
    account: AccountOpt,
    database: DatabaseOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List an account's webhooks with their state."""
    m = _main()

    async def job(c: Container) -> list[dict[str, Any]]:
        found = await c.directory.account_by_login(account)
        return [_row(s) for s in await c.webhooks.subscriptions(found.id, limit=1000)]

    m.show(m.run_with(database, job), as_json)


@webhook_app.command("show")
def webhook_show(
    account: AccountOpt,
    id_webhook: IdOpt,
    database: DatabaseOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """One webhook and its last attempts."""
    m = _main()

    async def job(c: Container) -> dict[str, Any]:
        found = await c.directory.account_by_login(account)
        row = _row(await c.webhooks.subscription(found.id, id_webhook))
        attempts = await c.webhooks.last_attempts(found.id, id_webhook, 10)
        row["last_attempts"] = [
            f"{a.at:%Y-%m-%d %H:%M:%S} {kind} {delivery} "
            f"{'ok' if a.ok else 'failed'} {a.response_code or '-'} {a.latency_ms} ms"
            + (f" {a.error}" if a.error else "")
            for delivery, kind, a in attempts
        ]
        return row

    m.show([m.run_with(database, job)], as_json, single=True)


def _set_active(account: str, id_webhook: int, active: bool, database: str | None) -> None:
    m = _main()

    async def job(c: Container) -> dict[str, Any]:
        found = await c.directory.account_by_login(account)
        return _row(await c.webhooks.update(found.id, id_webhook, active=active))

    m.show([m.run_with(database, job)], False, single=True)


@webhook_app.command("disable")
def webhook_disable(
    account: AccountOpt,
    id_webhook: IdOpt,
    database: DatabaseOpt = None,
) -> None:
    """Stop deliveries (pending ones wait)."""
    _set_active(account, id_webhook, False, database)


@webhook_app.command("enable")
def webhook_enable(
    account: AccountOpt,
    id_webhook: IdOpt,
    database: DatabaseOpt = None,
) -> None:
    """Resume deliveries, also after an automatic disabling."""
    _set_active(account, id_webhook, True, database)


@webhook_app.command("delete")
def webhook_delete(
    account: AccountOpt,
    id_webhook: IdOpt,
    database: DatabaseOpt = None,
) -> None:
    """Remove a webhook with its outbox and log."""
    m = _main()

    async def job(c: Container) -> None:
        found = await c.directory.account_by_login(account)
        await c.webhooks.delete(found.id, id_webhook)

    m.run_with(database, job)
    print(f"webhook {id_webhook} deleted")


@webhook_app.command("rotate-secret")
def webhook_rotate_secret(
    account: AccountOpt,
    id_webhook: IdOpt,
    keep_previous: Annotated[
        int,
        typer.Option(help="Seconds the previous secret keeps signing too (0 to 604800).", min=0),
    ] = 86_400,
    database: DatabaseOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """A new signing secret, printed once."""
    m = _main()

    async def job(c: Container) -> dict[str, Any]:
        found = await c.directory.account_by_login(account)
        rotated = await c.webhooks.rotate_secret(
            found.id, id_webhook, keep_previous=timedelta(seconds=keep_previous)
        )
        return _row(rotated, secret=True)

    m.show([m.run_with(database, job)], as_json, single=True)


@webhook_app.command("deliveries")
def webhook_deliveries(
    account: AccountOpt,
    id_webhook: IdOpt,
    state: Annotated[
        str | None, typer.Option(help="Only pending, delivered or failed ones.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=1000)] = 50,
    database: DatabaseOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """A webhook's deliveries, newest first."""
    m = _main()

    async def job(c: Container) -> list[dict[str, Any]]:
        found = await c.directory.account_by_login(account)
        found_deliveries = await c.webhooks.deliveries(
            found.id, id_webhook, state=state, limit=limit
        )
        return [DeliveryOut.of(d).model_dump(mode="json") for d in found_deliveries]

    m.show(m.run_with(database, job), as_json)


@webhook_app.command("redeliver")
def webhook_redeliver(
    account: AccountOpt,
    id_webhook: IdOpt,
    delivery: Annotated[str, typer.Option(help="The delivery's id (VM-Webhook-Id).")],
    database: DatabaseOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Queue a delivery again (same id and body); the server sends it."""
    m = _main()

    async def job(c: Container) -> dict[str, Any]:
        found = await c.directory.account_by_login(account)
        view, attempts = await c.webhooks.redeliver(found.id, id_webhook, delivery)
        out = DeliveryDetailOut.with_attempts(view, attempts).model_dump(mode="json")
        out.pop("payload")
        out["attempt_log"] = len(out["attempt_log"])
        return out

    m.show([m.run_with(database, job)], as_json, single=True)


@webhook_app.command("allow-private")
def webhook_allow_private(
    account: AccountOpt,
    allow: Annotated[
        bool,
        typer.Option(
            "--allow/--deny",
            help="Let this account's webhooks reach loopback and private addresses "
            "(an on-premises CRM), or not (the default).",
        ),
    ],
    database: DatabaseOpt = None,
) -> None:
    """Platform administrators only: private webhook targets for one account (SSRF risk)."""
    m = _main()

    async def job(c: Container) -> None:
        found = await c.directory.account_by_login(account)
        await c.webhooks.allow_private_targets(found.id, allow)

    m.run_with(database, job)
    state = "may" if allow else "may not"
    print(f"webhooks of account {account} {state} target private addresses")
