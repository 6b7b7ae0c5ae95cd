"""The HTTP application: routers, error handlers and limits around one ``Container``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from voicemgmt import __version__
from voicemgmt.bootstrap import Container
from voicemgmt.web import (
    admin_api,
    calls_api,
    event_schema_api,
    events_ws,
    metrics_api,
    pages,
    platform_api,
    sim_api,
    supervision_api,
    token_api,
    webhooks_api,
)
from voicemgmt.web.body_limit import BodyLimitMiddleware
from voicemgmt.web.call_context import CallContextMiddleware
from voicemgmt.web.errors import install_error_handlers
from voicemgmt.web.responses import APP_WIDE_ERRORS, OutModel, install_openapi
from voicemgmt.web.security_headers import SecurityHeadersMiddleware

log = logging.getLogger(__name__)


class Health(OutModel):
    status: Literal["ok"]


PURGE_INTERVAL_SECONDS = 3600


async def _purge_expired_tokens(container: Container) -> None:
    while True:
        try:
            await container.tokens.purge_expired()
        except Exception:  # a database hiccup must not end housekeeping for good
            log.exception("purging expired tokens failed; will retry")
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)


def create_app(container: Container) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await container.start(serving=True)
        housekeeping = asyncio.create_task(_purge_expired_tokens(container))
        try:
            yield
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            await container.close()

    app = FastAPI(
        title="Voice Management",
        version=__version__,
        summary="Self-hostable contact center built for CRM integration",
        lifespan=lifespan,
        responses=APP_WIDE_ERRORS,
    )
    install_openapi(app)
    app.state.container = container
    app.state.any_account_origins = pages.AnyAccountOrigins()
    container.directory.on_change(app.state.any_account_origins.directory_changed)
    app.state.stream_slots = events_ws.StreamSlots(
        container.settings.streams_per_token, container.settings.streams_per_user
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=container.settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(CallContextMiddleware)
    app.include_router(token_api.router)
    app.include_router(token_api.sessions_router)
    app.include_router(admin_api.router)
    app.include_router(webhooks_api.router)
    app.include_router(webhooks_api.supervision_router)
    app.include_router(calls_api.router)
    app.include_router(supervision_api.router)
    app.include_router(sim_api.router)
    app.include_router(platform_api.router)
    app.include_router(events_ws.router)
    app.include_router(metrics_api.router)
    app.include_router(event_schema_api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    app.mount("/example", StaticFiles(directory=pages.STATIC_DIR / "example"), name="example")

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Liveness: answers while the server runs",
        response_model=Health,
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
