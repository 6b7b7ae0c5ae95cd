"""schemathesis over ``/openapi.json``: every operation, with each kind of credentials.

A real server on loopback with two seeded accounts. Each case generated from the schema is
sent with the account's Basic credentials, an operator's session token and a supervisor's:
never a 5xx, never a response that contradicts its schema (checks ``not_a_server_error`` and
``response_schema_conformance``). ``make test`` runs a few cases per operation and credential
(CASES); ``make fuzz`` (HYPOTHESIS_PROFILE=fuzz) runs 300 (VM_FUZZ_API_CASES) and the
coverage phase (boundary and negative values of each parameter).

The identities the cases authenticate as are never deleted by them (a DELETE aimed at one is
sent to an id no account has, which must be answered 404 like any unknown id); a token that
a case made unusable (a status change, a logout) is minted again.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support import (
    LiveServer,
    SeededAccount,
    live_server,
    make_settings,
    seed_two_accounts,
    token_for,
)
from voicemgmt.bootstrap import build
from voicemgmt.web.app import create_app

FUZZING = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
# generated cases per operation (about 75 operations, each case sent with 3 credentials)
CASES = int(os.environ.get("VM_FUZZ_API_CASES", "300")) if FUZZING else 10
CHECKS = [not_a_server_error, response_schema_conformance]
UNKNOWN_ID = 987_654_321


@dataclass
class Api:
    server: LiveServer
    acme: SeededAccount
    password: str  # the account's API password: a case may change it (PATCH /api/v1/account)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    # answers /openapi.json gives no schema for (nothing for schemathesis to check them with)
    undescribed: Counter[str] = field(default_factory=Counter)
    mints: int = 0

    def mint(self) -> None:
        acme = replace(self.acme, password=self.password)
        basic = base64.b64encode(f"{acme.login}:{acme.password}".encode()).decode()
        operator = token_for(self.server, acme, id_agent=acme.id_agent)
        supervisor = token_for(self.server, acme, id_admin=acme.id_admin)
        self.headers = {
            "account": {"Authorization": f"Basic {basic}"},
            "operator": {"Authorization": f"Bearer {operator}"},
            "supervisor": {"Authorization": f"Bearer {supervisor}"},
        }

    def protected(self) -> dict[str, int]:
        return {"id_agent": self.acme.id_agent, "id_admin": self.acme.id_admin}

    def tokens_work(self) -> bool:
        with self.server.client() as client:
            mine = client.get("/api/v1/me/state", headers=self.headers["operator"])
            live = client.get("/api/v1/supervision/live", headers=self.headers["supervisor"])
        return mine.status_code != 401 and live.status_code != 401


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data = tmp_path_factory.mktemp("openapi")
    configured = make_settings(Path(data))
    acme, _globex = seed_two_accounts(configured)
    with live_server(configured) as server:
        running = Api(server, acme, acme.password)
        running.mint()
        yield running


def _openapi() -> dict[str, Any]:
    """The application's ``/openapi.json``, at collection time (the parametrisation needs the
    operations before any server runs; ``test_the_schema_is_the_one_served`` compares)."""
    with tempfile.TemporaryDirectory() as data:
        document: dict[str, Any] = create_app(build(make_settings(Path(data)))).openapi()
    return document


OPENAPI = _openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)
# make test: the examples in the schema and CASES generated cases per operation; make fuzz:
# also schemathesis's coverage phase (boundary and negative values of every parameter).
schema.config.phases.update(
    phases=["examples", "coverage", "fuzzing"] if FUZZING else ["examples", "fuzzing"]
)


def _described(method: str, path: str, status: int) -> bool:
    """Whether /openapi.json gives a JSON schema for this answer (or says it has no body)."""
    responses = OPENAPI["paths"].get(path, {}).get(method.lower(), {}).get("responses", {})
    described = responses.get(str(status)) or responses.get("default")
    if described is None:
        return False
    content = described.get("content")
    if not content:
        return status in (204, 304) or method == "HEAD"
    return all("schema" in media and media["schema"] != {} for media in content.values())


def test_the_schema_is_the_one_served(api: Api) -> None:
    with api.server.client() as client:
        assert client.get("/openapi.json").json() == OPENAPI


@schema.parametrize()
@settings(
    max_examples=CASES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_with_each_credential(case: schemathesis.Case[Any], api: Api) -> None:
    if case.method == "DELETE" and case.path_parameters:
        protected = api.protected()
        for name, value in list(case.path_parameters.items()):
            if name in protected and str(value).strip() == str(protected[name]):
                case.path_parameters[name] = UNKNOWN_ID
    refused = False
    for who in ("account", "operator", "supervisor"):
        response = case.call_and_validate(
            base_url=api.server.base_url, headers=api.headers[who], checks=CHECKS, timeout=30
        )
        api.statuses[(who, response.status_code)] += 1
        if not _described(case.method, case.path, response.status_code):
            api.undescribed[f"{case.method} {case.path} {response.status_code}"] += 1
        if (case.method, case.path, response.status_code) == ("PATCH", "/api/v1/account", 200):
            new_password = case.body.get("password") if isinstance(case.body, dict) else None
            if isinstance(new_password, str):
                api.password = new_password
                api.mint()
        refused |= who != "account" and response.status_code == 401
    if refused and not api.tokens_work():
        api.mints += 1
        api.mint()  # a case logged a token out, or changed who it belongs to


def test_each_credential_reached_the_api(api: Api) -> None:
    """Not 401 everywhere: each kind of credentials got answers past authentication."""
    if not api.statuses:
        pytest.skip("the schemathesis cases did not run (deselected)")
    answers = sorted(api.statuses.items())
    print(f"schemathesis answers by (credentials, status): {answers}; tokens minted {api.mints}")
    print(f"answers without a schema in /openapi.json: {sorted(api.undescribed)}")
    for who in ("account", "operator", "supervisor"):
        past_auth = sum(n for (w, s), n in api.statuses.items() if w == who and s != 401)
        assert past_auth > 0, f"{who}: every answer was 401"
