"""``GET /metrics``: the platform's metrics in the Prometheus text format, for a scraper.

Who may read them (docs/operations.md):

- ``VM_METRICS_TOKEN`` set: the request must carry ``Authorization: Bearer <token>``
  (compared in constant time); without it 401 ``metrics_token_required``, with another
  token 401 ``invalid_metrics_token``;
- ``VM_METRICS_ALLOWED_SOURCES`` set: the client's address must be in one of those networks,
  else 403 ``forbidden_source``;
- both set: both are required; neither: the endpoint is off and answers 404 like any unknown
  path (a fresh install publishes nothing about its traffic).
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.exceptions import HTTPException as StarletteHTTPException

from voicemgmt.web.dependencies import ContainerDep
from voicemgmt.web.errors import ErrorBody, error_response

router = APIRouter(tags=["operations"])

METRICS_CHALLENGE = 'Bearer realm="Voice Management metrics"'

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


_EXPOSITION_EXAMPLE = """\
# HELP voicemgmt_calls_waiting Calls waiting in a group's queue (queued or ringing an operator).
# TYPE voicemgmt_calls_waiting gauge
voicemgmt_calls_waiting{account="1",group="1"} 3.0
"""


@router.get(
    "/metrics",
    summary="Metrics in the Prometheus text format (off unless configured)",
    response_class=Response,
    responses={
        200: {
            "description": "Every metric (docs/operations.md), Prometheus text format 0.0.4",
            "content": {
                CONTENT_TYPE_PLAIN_0_0_4: {
                    "schema": {"type": "string"},
                    "example": _EXPOSITION_EXAMPLE,
                }
            },
        },
        401: {"model": ErrorBody, "description": "No Bearer token, or not the right one"},
        403: {"model": ErrorBody, "description": "The client's address is not allowed"},
        404: {"model": ErrorBody, "description": "The endpoint is off (nothing configured)"},
    },
)
async def metrics(request: Request, container: ContainerDep) -> Response:
    settings = container.settings
    token = settings.metrics_token
    sources = settings.metrics_allowed_sources
    if token is None and not sources:
        raise StarletteHTTPException(404)  # the very answer of an unknown path
    if sources and not _allowed(request, tuple(sources)):
        return error_response(403, "forbidden_source", "this address may not read the metrics")
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return error_response(
                401,
                "metrics_token_required",
                "a Bearer token (VM_METRICS_TOKEN) is required",
                headers={"WWW-Authenticate": METRICS_CHALLENGE},
            )
        if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
            return error_response(
                401,
                "invalid_metrics_token",
                "the metrics token is not valid",
                headers={"WWW-Authenticate": METRICS_CHALLENGE},
            )
    return Response(
        container.metrics.exposition(),
        media_type=CONTENT_TYPE_PLAIN_0_0_4,
        headers={"Cache-Control": "no-store"},
    )


def _allowed(request: Request, sources: tuple[str, ...]) -> bool:
    if request.client is None:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    return any(address in network for network in _networks(sources))


@lru_cache(maxsize=8)
def _networks(sources: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(source, strict=False) for source in sources)
