"""Strict JSON request bodies with messages an integrator can act on."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from voicemgmt.domain.errors import InvalidInput, InvalidJson

_TYPOGRAPHIC_QUOTES = "“”„‘’‚«»"  # noqa: RUF001


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
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


async def json_body(request: Request, *, required: bool) -> Any:
    """The parsed body; ``None`` when it is empty and not ``required``."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise InvalidInput('the body must be a JSON object, e.g. {"id_agent": 12}')
        return None
    return parse_json(raw)
