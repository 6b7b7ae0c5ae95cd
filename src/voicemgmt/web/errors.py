"""The one place where domain errors become HTTP answers.

Every error answer has the same JSON shape, ``ErrorBody``: ``{"status", "err_code", "err_msg",
"details"}`` (the platform API's ``status``/``err_code``/``err_msg`` plus what exactly was
wrong). ``details`` is always there: an object, ``{}`` when there is nothing to add, so a client
can read ``body["details"].get("field")`` without checking first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from voicemgmt.domain import errors
from voicemgmt.web.json_body import InvalidJsonBody

log = logging.getLogger(__name__)

BASIC_CHALLENGE = 'Basic realm="Voice Management", charset="UTF-8"'

# Most specific first: the first class an error is an instance of decides its status.
STATUS_BY_ERROR: tuple[tuple[type[errors.VoiceManagementError], int], ...] = (
    (errors.InvalidInput, 400),
    (errors.AuthenticationFailed, 401),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.TooManyAttempts, 429),
    (errors.ResumeTooOld, 410),
    (errors.SubscriberTooSlow, 429),
    (errors.Unavailable, 503),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_failed",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_attempts",
}


def status_of(error: errors.VoiceManagementError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    raise LookupError(f"{type(error).__name__} has no HTTP status")


class FieldProblem(BaseModel):
    field: str = Field(
        description="where: a body field as a dotted path (groups.0.id_group), or "
        "query.<name> / path.<name>; empty when the body as a whole is wrong"
    )
    problem: str = Field(description="what is wrong with it, for a person to read")


class ErrorDetails(BaseModel):
    """What exactly was wrong; which keys appear depends on ``err_code``. Later versions may
    add keys: ignore the ones you do not know."""

    model_config = ConfigDict(extra="allow")

    field: str | None = Field(
        default=None, description="the input field that was refused (invalid_input and kin)"
    )
    errors: list[FieldProblem] | None = Field(
        default=None, description="validation_failed: each problem found, at most 20"
    )
    retry_after: int | None = Field(
        default=None, description="too_many_attempts: seconds to wait (also in Retry-After)"
    )
    numbers: list[str] | None = Field(
        default=None, description="group_in_use: the numbers still routed to the group"
    )
    value: str | None = Field(
        default=None, description="invalid_phone_number: the refused number, cut to 32 chars"
    )
    unknown: list[str] | None = Field(
        default=None, description="unknown_call: the call ids not in this account"
    )
    reason: str | None = Field(
        default=None,
        description="number_not_allowed: which dial-out rule refused it (premium_not_allowed, "
        "international_not_allowed, prefix_not_allowed, invalid_number, dial_out_disabled, "
        "no_trunk)",
    )
    timeout_seconds: float | None = Field(
        default=None, description="header_timeout: the time the request head had"
    )
    max_header_bytes: int | None = Field(
        default=None, description="headers_too_large: the request head's size limit"
    )
    max_header_count: int | None = Field(
        default=None, description="headers_too_large: the most header fields allowed"
    )
    id_webhook: int | None = Field(
        default=None, description="unknown_webhook, unknown_webhook_delivery: the subscription"
    )
    delivery: str | None = Field(
        default=None, description="unknown_webhook_delivery: the delivery id asked for"
    )
    known: list[str] | None = Field(
        default=None, description="an unknown event kind was given: the kinds there are"
    )
    address: str | None = Field(
        default=None, description="webhook_target_refused: the address the URL reaches"
    )
    origin: str | None = Field(default=None, description="the refused allowed origin")
    crm_url: str | None = Field(
        default=None, description="the refused CRM URL, cut to 100 characters"
    )


class ErrorBody(BaseModel):
    """Every error answer of the API (any 4xx or 5xx), whatever the endpoint."""

    status: int = Field(description="the HTTP status, repeated", examples=[400])
    err_code: str = Field(
        description="stable machine-readable code: branch on it, not on err_msg",
        examples=["invalid_json"],
    )
    err_msg: str = Field(description="what went wrong and how to fix it, for a person to read")
    details: ErrorDetails = Field(description="what exactly was wrong; {} when nothing to add")


def error_body(status: int, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"status": status, "err_code": code, "err_msg": message, "details": details or {}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status, code, message, details), status, headers=dict(headers or {})
    )


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.VoiceManagementError)
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.InvalidSessionToken):
        headers["WWW-Authenticate"] = 'Bearer realm="Voice Management"'
    elif isinstance(exc, errors.AuthenticationFailed):
        headers["WWW-Authenticate"] = BASIC_CHALLENGE
    if isinstance(exc, errors.TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(status, exc.error_id, exc.message, exc.details, headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for problem in exc.errors():
        if problem.get("type") == "json_invalid":
            return error_response(400, "invalid_json", "the body is not valid JSON")
        location = ".".join(str(p) for p in problem.get("loc", ()) if p != "body")
        problems.append({"field": location, "problem": str(problem.get("msg", ""))[:200]})
    first = problems[0] if problems else {"field": "", "problem": "invalid request"}
    message = f"{first['field']}: {first['problem']}" if first["field"] else first["problem"]
    return error_response(400, "validation_failed", message, {"errors": problems[:20]})


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, InvalidJsonBody):
        return error_response(400, "invalid_json", str(exc.detail))
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = str(exc.detail) if exc.detail else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal_error", "an unexpected error occurred; it was logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.VoiceManagementError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
