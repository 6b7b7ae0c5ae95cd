"""Strict JSON request bodies with messages an integrator can act on."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from voicemgmt.domain.errors import InvalidInput, InvalidJson

_TYPOGRAPHIC_QUOTES = "“”„‘’‚«»"  # noqa: RUF001


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _check_text(value: Any, text: str) -> Any:
    r"""Refuse lone surrogates (``"\ud800"``): valid JSON syntax, but no text can hold them."""
    if "\\ud" in text.lower():
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidJson("the body is not valid JSON: it has an unpaired surrogate") from exc
    return value


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
        return _check_text(
            json.loads(text, parse_constant=_no_constants, parse_float=_finite_float), text
        )
    except UnicodeDecodeError as exc:
        raise InvalidJson("the body is not valid JSON: it is not UTF-8 text") from exc
    except RecursionError as exc:
        raise InvalidJson("the body is not valid JSON: it is nested too deeply") from exc
    except ValueError as exc:
        text = raw.decode("utf-8", "replace")
        if any(q in text for q in _TYPOGRAPHIC_QUOTES):
            raise InvalidJson(
                "the body is not valid JSON: it uses typographic quotes (“ ” ‘ ’); "  # noqa: RUF001
                'JSON needs straight double quotes, e.g. {"id_agent": 12}',
            ) from exc
        raise InvalidJson(f"the body is not valid JSON: {exc}") from exc


class UnsupportedBody(HTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(415, message)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _replay(body: bytes) -> Receive:
    """A ``receive`` that hands over a body already read."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class InvalidJsonBody(HTTPException):
    """``InvalidJson`` in the shape FastAPI lets through its body reading unchanged."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json(await self.body())
            except InvalidJson as exc:
                raise InvalidJsonBody(exc.message) from exc
        return self._json


class StrictJsonRoute(APIRoute):
    """Routes whose JSON bodies go through ``parse_json`` (FastAPI's default is lenient)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH") and not _is_json(
                request.headers.get("content-type", "")
            ):
                body = await request.body()
                if body.strip():
                    # Only JSON: a cross-site form cannot send it without a CORS preflight.
                    raise UnsupportedBody(
                        "send the body as JSON, with the header Content-Type: application/json"
                    )
                request = StrictJsonRequest(request.scope, _replay(body))
                return await handler(request)
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler


async def json_body(request: Request, *, required: bool) -> Any:
    """The parsed body; ``None`` when it is empty and not ``required``.

    A body must come as ``Content-Type: application/json`` (else 415): a cross-site form can
    send ``text/plain``, urlencoded or multipart bodies with the browser's Basic credentials,
    but not JSON without a CORS preflight. A body with typographic quotes (the guide's
    examples pasted into a shell) is answered with the hint about them, as before.
    """
    raw = await request.body()
    if not raw.strip():
        if required:
            raise InvalidInput('the body must be a JSON object, e.g. {"id_agent": 12}')
        return None
    if not _is_json(request.headers.get("content-type", "")):
        text = raw.decode("utf-8", "replace")
        if any(q in text for q in _TYPOGRAPHIC_QUOTES):
            parse_json(raw)  # when it is not JSON either, its answer says why
        raise UnsupportedBody(
            "send the body as JSON, with the header Content-Type: application/json"
        )
    return parse_json(raw)
