"""How the HTTP server runs: uvicorn's options derived from ``Settings``, in one place for
``voicemgmt serve``, the demo-calls server and the tests' live server.

- **Client address.** ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only when the
  TCP peer is one of ``trusted_proxies`` (addresses or networks; nginx's address in a
  cluster). By default none is trusted: the peer is the client, whatever the headers say, so
  a client cannot pick the address that the login throttle and ``/metrics`` key on.
- **Request heads.** A head larger than ``max_header_bytes``, with more than
  ``max_header_count`` fields, or not complete ``header_timeout_seconds`` after its first
  byte (or after the connection opened) is refused at the protocol layer, before any
  application code runs (``web/http_protocol.py``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import uvicorn

from voicemgmt.config import Settings
from voicemgmt.web.http_protocol import HeadLimits, guarded_http_protocol


def uvicorn_config(
    app: Any, settings: Settings, *, host: str | None = None, port: int | None = None, **extra: Any
) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` under ``settings``; ``extra`` adds logging options."""
    trusted = [str(ipaddress.ip_network(p, strict=False)) for p in settings.trusted_proxies]
    limits = HeadLimits(
        max_bytes=settings.max_header_bytes,
        max_count=settings.max_header_count,
        timeout=settings.header_timeout_seconds,
    )
    return uvicorn.Config(
        app,
        host=settings.host if host is None else host,
        port=settings.port if port is None else port,
        http=guarded_http_protocol(limits),
        proxy_headers=bool(trusted),
        # uvicorn's default trusts 127.0.0.1 (and FORWARDED_ALLOW_IPS): never fall back to it
        forwarded_allow_ips=trusted or [],
        **extra,
    )
