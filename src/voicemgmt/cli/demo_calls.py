"""``voicemgmt serve --demo-calls N``: the server, and a simulated caller every N seconds.

The caller goes through the public API like any client: the demo account's credentials (from
the file ``voicemgmt demo`` keeps) mint a supervisor's token to see who is available, and
``POST /api/v1/sim/calls`` places the call. A call is placed only while one of the demo's
operators is available and no call is going on, so that nothing piles up while nobody
watches. Callers key an order number in the demo IVR and hang up after a while if nobody
answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from voicemgmt.config import Settings
from voicemgmt.observability.logs import uvicorn_log_config
from voicemgmt.services.demo import (
    DEMO_CALLERS,
    DemoCredentials,
    credentials_path,
    load_credentials,
)
from voicemgmt.web.serving import uvicorn_config

log = logging.getLogger(__name__)

GIVE_UP_AFTER = (45.0, 90.0)  # seconds before an unanswered demo caller hangs up


def serve_with_demo_calls(app: Any, settings: Settings, *, every: float) -> None:
    async def main() -> None:
        config = uvicorn_config(
            app,
            settings,
            log_level=settings.log_level,
            log_config=uvicorn_log_config(settings.log_format),
        )
        server = uvicorn.Server(config)
        caller = asyncio.create_task(_call_now_and_then(server, settings, every))
        try:
            await server.serve()
        finally:
            caller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await caller

    asyncio.run(main())


async def _call_now_and_then(server: uvicorn.Server, settings: Settings, every: float) -> None:
    while not server.started:  # noqa: ASYNC110 (uvicorn says so with a flag only)
        await asyncio.sleep(0.1)
    path = credentials_path(Path(settings.data_dir), settings.database_url)
    credentials = await asyncio.to_thread(load_credentials, path)
    if credentials is None:
        log.warning("no demo account (run 'voicemgmt demo'): no demo calls")
        return
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    base = f"http://{host}:{settings.port}"
    rng = random.Random()  # noqa: S311 (who calls, not a secret)
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        await _show_the_example(client, credentials, base)
        print(
            f"Demo calls: every {every:g} s to {credentials.number} while an operator is "
            "available (voicemgmt serve --demo-calls 0: none).",
            flush=True,
        )
        while True:
            await asyncio.sleep(every)
            try:
                await _maybe_call(client, credentials, rng)
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                log.warning("demo call not placed: %s", exc)


async def _show_the_example(
    client: httpx.AsyncClient, credentials: DemoCredentials, base: str
) -> None:
    """The last thing on the screen: where to watch a call arrive."""
    basic = (credentials.api_login, credentials.api_password)
    try:
        answer = await client.post(
            "/vm/token", auth=basic, json={"id_agent": credentials.id_agent, "keep": 1}
        )
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("could not open a session for the demo operator: %s", exc)
        return
    token = answer.json()["token"]
    print(
        f"\nThe example CRM, logged in as {credentials.operator_email}:\n"
        f"  {base}/example/index.htm?token_session={token}\n",
        flush=True,
    )


async def _maybe_call(
    client: httpx.AsyncClient, credentials: DemoCredentials, rng: random.Random
) -> None:
    basic = (credentials.api_login, credentials.api_password)
    answer = await client.post(
        "/vm/token", auth=basic, json={"id_admin": credentials.id_admin, "keep": 1}
    )
    answer.raise_for_status()
    live = await client.get(
        "/api/v1/supervision/live",
        headers={"Authorization": f"Bearer {answer.json()['token']}"},
    )
    live.raise_for_status()
    snapshot = live.json()
    if snapshot["calls"] or not any(o["presence"] == "online" for o in snapshot["operators"]):
        return
    caller, order = rng.choice(DEMO_CALLERS)
    body = {
        "from": caller,
        "to": credentials.number,
        "dtmf": f"{order}#" if order else "",
        "hangup_after": rng.uniform(*GIVE_UP_AFTER),
    }
    placed = await client.post("/api/v1/sim/calls", auth=basic, json=body)
    placed.raise_for_status()
