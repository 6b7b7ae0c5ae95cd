"""What ``/openapi.json`` says about answers: the error statuses of each operation, and the
document's final touches.

Each route names the error statuses it can really give, composed from what it does:
``errors(BASIC_AUTH, JSON_BODY, 404)`` for a route with the account's credentials, a JSON body
and an id to look up. Every error answer is an ``ErrorBody``; 408 and 431 (the request head's
limits, enforced before any route) and 500 (a bug, logged) are described on every operation.
FastAPI's own 422 never happens here (request validation answers 400 ``validation_failed``),
so it is taken out of the document. The document also names how each operation authenticates
(security schemes), and ``OutModel`` is the base of response bodies: strict when built, open
to later fields in the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict

from voicemgmt.web import dependencies
from voicemgmt.web.errors import ErrorBody

# What each status means here, whichever endpoint gives it.
ERROR_MEANINGS: dict[int, str] = {
    400: "Bad input: invalid JSON (invalid_json), a field or parameter out of range "
    "(validation_failed, with details.errors), or input the rules refuse (invalid_input and "
    "its kin, with details.field). Nothing was changed.",
    401: "Missing or wrong credentials (authentication_failed, with a Basic challenge) or an "
    "unknown, expired or deleted session token (invalid_token, with a Bearer challenge).",
    403: "Authenticated, but not allowed to do that (forbidden): e.g. an operator's token "
    "where a supervisor's is needed.",
    404: "No such thing in this account (unknown_operator, unknown_call, …). Another "
    "account's ids are answered the same way.",
    409: "Clashes with what is stored (duplicate_email, group_in_use, invalid_call_action, …). "
    "Nothing was changed.",
    408: "The request head did not arrive in time (header_timeout, details.timeout_seconds); "
    "the connection is closed. Any operation, before it is reached.",
    413: "The request body is larger than the server's limit (body_too_large).",
    415: "A body that is not JSON: send it with Content-Type: application/json "
    "(unsupported_media_type).",
    431: "The request head is too large (headers_too_large, details.max_header_bytes and "
    "max_header_count); the connection is closed. Any operation, before it is reached.",
    429: "Too many failed logins from this address (too_many_attempts): wait Retry-After "
    "seconds (also in details.retry_after).",
    500: "An unexpected error (internal_error); it was logged. Nothing to fix on your side.",
}

# Building blocks: what a route does decides what it can answer.
BASIC_AUTH = (401, 429)  # the account's API credentials (throttled)
BEARER = (401,)  # a session token
OPERATOR_ONLY = (401, 403)  # an operator's session token, refused to a supervisor
SUPERVISOR_ONLY = (401, 403)
PARAMS = (400,)  # validated path or query parameters
JSON_BODY = (400, 413, 415)  # a JSON body through StrictJsonRoute
NOT_JSON_BODY = (413, 415)  # a POST/PUT without a body: a non-JSON one is still refused

StatusSpec = int | tuple[int, ...]


def errors(*specs: StatusSpec) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each given status, described and shaped as ``ErrorBody``."""
    statuses: set[int] = set()
    for spec in specs:
        statuses.update((spec,) if isinstance(spec, int) else spec)
    unknown = statuses - ERROR_MEANINGS.keys()
    if unknown:
        raise ValueError(f"no meaning written for status {sorted(unknown)}")
    return {
        status: {"model": ErrorBody, "description": ERROR_MEANINGS[status]}
        for status in sorted(statuses)
    }


APP_WIDE_ERRORS = errors(408, 431, 500)  # the request head's limits, and a bug


def media(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 answer that is not JSON (a page, a script, CSV): its media type and a string."""
    return {
        200: {
            "description": description,
            "content": {media_type: {"schema": {"type": "string"}}},
        }
    }


# How callers authenticate. The routes check credentials themselves (so that every refusal
# is an ErrorBody), so the document is told which scheme each operation takes.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "accountBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "The account's API login and password (guide §1); failures are "
        "throttled per login and address (429).",
    },
    "sessionToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A session token from POST /vm/token or POST /vm/login, as "
        "'Authorization: Bearer <token>'; never in a query string.",
    },
}
BEARER_SECURITY: dict[str, Any] = {"security": [{"sessionToken": []}]}


def install_openapi(app: FastAPI) -> None:
    """Serve the document with its security schemes, without FastAPI's unused 422 answers
    and their schemas."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = with_security(errors_as_json(without_422(document)), app)
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010  FastAPI's documented way to replace it


def with_security(document: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, route in api_routes(app):
        calls = dependency_calls(route.dependant)
        scheme = (
            "accountBasic"
            if dependencies.get_account in calls
            else "sessionToken"
            if dependencies.get_token_owner in calls
            else None
        )
        for method in route.methods or ():
            if scheme is not None:
                document["paths"][path][method.lower()]["security"] = [{scheme: []}]
    return document


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Each documented route with its full path, the included routers' ones too."""
    # FastAPI 0.165 keeps included routers whole in app.routes; before, it copied their routes.
    contexts = getattr(fastapi_routing, "iter_route_contexts", None)
    if contexts is None:
        for route in app.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                yield route.path_format, route
        return
    for context in contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema and context.path_format:
            yield context.path_format, route


def dependency_calls(dependant: Dependant) -> set[Any]:
    """Every dependency a route runs, however deep."""
    found = set()
    for sub in dependant.dependencies:
        if sub.call is not None:
            found.add(sub.call)
        found |= dependency_calls(sub)
    return found


def errors_as_json(document: dict[str, Any]) -> dict[str, Any]:
    """Error bodies are JSON whatever the route answers on success; FastAPI gives a route's
    extra responses its success media type (a page's errors as text/html), so correct it."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and content and "application/json" not in content:
                    schemas = [c.get("schema") for c in content.values()]
                    response["content"] = {"application/json": {"schema": schemas[0]}}
    return document


def without_422(document: dict[str, Any]) -> dict[str, Any]:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # only the 422s used them
        schemas.pop(name, None)
    return document


def _open_in_document(schema: dict[str, Any]) -> None:
    schema.pop("additionalProperties", None)


class OutModel(BaseModel):
    """A response body. Strict when built (a key the code sends but the model lacks fails
    the request, so the document cannot drift from the answers); open in the document, since
    later versions may add fields and clients should ignore those they do not know."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_open_in_document)


DATE_TIME: dict[str, Any] = {"format": "date-time"}
