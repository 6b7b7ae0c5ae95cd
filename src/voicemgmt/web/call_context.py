"""Requests about one call (``/api/v1/me/calls/<id_call>/…``) are logged as about that call.

The whole request runs in ``about_call``, the server's access-log line included (it is written
while the answer is sent), so every line it causes carries ``id_call`` (``VM_LOG_FORMAT``).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from voicemgmt.observability.logs import about_call

_CALL_PATH = re.compile(r"^/api/v1/me/calls/([0-9A-Za-z_-]{1,64})/")


class CallContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = _CALL_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        with about_call(found.group(1)):
            await self.app(scope, receive, send)
