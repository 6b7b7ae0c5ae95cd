"""``voicemgmt``: serve the product and administer the directory.

The commands live by subject: ``directory.py`` (accounts, operators, supervisors, groups,
numbers), ``webhooks.py``, ``sim.py``; what they share is ``common.py``. Here: the application,
``serve``, ``db`` and ``demo``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

import typer

from voicemgmt.bootstrap import Container, build
from voicemgmt.cli.common import DatabaseOpt, JsonOpt, run_with, settings_for
from voicemgmt.cli.directory import DIRECTORY_APPS
from voicemgmt.cli.sim import sim_app
from voicemgmt.cli.webhooks import webhook_app
from voicemgmt.domain.directory import UserType

app = typer.Typer(
    name="voicemgmt",
    help="Voice Management: a self-hostable contact center built for CRM integration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
for sub, name in (*DIRECTORY_APPS, (db_app, "db")):
    app.add_typer(sub, name=name)
app.add_typer(sim_app, name="sim")
app.add_typer(webhook_app, name="webhook")


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

    settings = settings_for(database, host=host, port=port)
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


def run() -> None:
    """Console-script entry point."""
    app()


# demo


@app.command()
def demo(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Seed the demo account once, and print how to use it."""
    from pathlib import Path

    from voicemgmt.services.demo import credentials_path, demo_token, seed_demo

    settings = settings_for(database)
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
