"""Fuzzing JSON request bodies: ``parse_json`` alone, then the endpoints' models on a server.

Seeds are real bodies of the guide's and the admin API's requests; mutations break their
syntax (cut strings, stray bytes, invalid UTF-8, surrogate escapes, huge numbers, deep
nesting) or keep it and change values (numbers swapped for odd ones, fields dropped,
doubled). Properties: ``parse_json`` gives a value that serialises back, or ``InvalidJson``;
an endpoint answers each body without a 5xx, and every refusal is the documented error body
``{status, err_code, err_msg, details}`` (details only when there is some) with the HTTP
status in it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tests.fuzz.mutations import mutated
from tests.support import (
    LiveServer,
    SeededAccount,
    bearer,
    live_server,
    make_settings,
    seed_two_accounts,
    token_for,
)
from voicemgmt.domain.errors import InvalidJson
from voicemgmt.web.json_body import parse_json

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

WEEK = {"date": "2026-12-01", "date_end": "2026-12-07", "limit": 10, "offset": 0}
# (method, path, credentials, body): account Basic, an operator's or a supervisor's token
TARGETS: list[tuple[str, str, str, Any]] = [
    ("POST", "/vm/token", "account", {"id_agent": 1}),
    ("POST", "/vm/login", "none", {"login": "ana@acme.example", "password": "x"}),
    ("POST", "/vm/calls/in", "account", {**WEEK, "caller_number": "+33 6 98 76 54 32"}),
    ("POST", "/vm/calls/out", "account", WEEK),
    ("POST", "/vm/operators", "account", {"email": "ana@acme.example"}),
    ("POST", "/vm/service_numbers", "account", {"service_number": "33170200300", "id_group": 1}),
    ("PUT", "/vm/service_numbers", "account", {"service_number": "33170200200", "record": True}),
    ("POST", "/voice-management/variables", "account", ["c-in-1", "c-in-2"]),
    ("POST", "/api/v1/sim/calls", "account", {"from": "33612345678", "to": "33170200200"}),
    ("POST", "/api/v1/groups", "account", {"name": "Sales", "settings": {"moh": "jazz"}}),
    ("PATCH", "/api/v1/account", "account", {"allowed_origins": ["https://crm.acme.example"]}),
    ("PUT", "/api/v1/me/status", "operator", {"status": "online"}),
    ("POST", "/api/v1/me/calls", "operator", {"to": "33618220000"}),
    ("PUT", "/api/v1/supervision/operators/1/status", "supervisor", {"status": "pause"}),
]
SEEDS = [json.dumps(body).encode() for *_, body in TARGETS]
SHAPE = {"status", "err_code", "err_msg", "details"}  # details: absent when nothing to add


@FUZZ
@given(mutated(SEEDS, huge=200_000))
@example(b'{"id_agent": "\\ud800"}')
@example(b"[" * 100_000)
@example(b'{"limit": 1e999}')
@example(b'{"a": NaN}')
def test_parse_json_gives_a_serialisable_value_or_invalid_json(raw: bytes) -> None:
    try:
        value = parse_json(raw)
    except InvalidJson as exc:
        refusal: str | None = exc.message
    else:
        refusal = None
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert refusal is None or refusal.startswith("the body is not valid JSON")


@dataclass
class Api:
    server: LiveServer
    headers: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    configured = make_settings(Path(tmp_path_factory.mktemp("json")))
    acme, _globex = seed_two_accounts(configured)
    with live_server(configured) as server:
        yield Api(server, _headers(server, acme))


def _headers(server: LiveServer, acme: SeededAccount) -> dict[str, dict[str, str]]:
    basic = "Basic " + base64.b64encode(f"{acme.login}:{acme.password}".encode()).decode()
    return {
        "none": {},
        "account": {"Authorization": basic},
        "operator": bearer(token_for(server, acme, id_agent=acme.id_agent)),
        "supervisor": bearer(token_for(server, acme, id_admin=acme.id_admin)),
    }


@FUZZ
@given(target=st.integers(0, len(TARGETS) - 1), data=st.data())
def test_endpoints_answer_any_json_body_without_a_server_error(
    api: Api, target: int, data: st.DataObject
) -> None:
    method, path, who, _body = TARGETS[target]
    raw = data.draw(mutated([SEEDS[target], *SEEDS], huge=60_000), label="body")
    assume(not (path == "/api/v1/account" and b"password" in raw))  # the credentials stay
    headers = {**api.headers[who], "Content-Type": "application/json"}
    with api.server.client() as client:
        answer = client.request(method, path, content=raw, headers=headers)
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        error = answer.json()
        assert {"status", "err_code", "err_msg"} <= set(error) <= SHAPE, error
        assert error["status"] == answer.status_code
        assert error["err_code"]
        assert error["err_msg"]
