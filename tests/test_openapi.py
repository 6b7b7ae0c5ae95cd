"""``/openapi.json`` describes every answer: walked as a document, and checked against real
answers of every operation.

The walk fails on an operation without a described 2xx answer with a concrete schema (or a
non-JSON media type), on a schema that is a bare object or "anything", on an error answer not
shaped as ``ErrorBody``, and on an error status an operation can give but does not describe
(derived from what the route does: credentials, parameters, a JSON body). Each failure names
the operation and status and what it lacks.

Real answers are checked by ``LiveServer.client()`` itself (``tests.openapi_conformance``);
``test_every_operation_answers_as_documented`` makes sure each operation is answered once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import ValidationError

from tests.support import LiveServer, SeededAccount, bearer, make_settings, token_for
from tests.test_calls_api import FAST, Operator, eventually, place_call
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings
from voicemgmt.web import calls_api, dependencies, supervision_api
from voicemgmt.web.json_body import StrictJsonRoute
from voicemgmt.web.record_schemas import CallRecordOut
from voicemgmt.web.responses import api_routes, dependency_calls

ERROR_BODY = "#/components/schemas/ErrorBody"
METRICS_TOKEN = "a-metrics-token-for-the-test"
SCHEMA_KEYS = {"type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const", "not"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        "",
        **FAST,
        max_body_bytes=64 * 1024,
        metrics_token=METRICS_TOKEN,
        webhooks_allow_http=True,
    )


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


# the walk


def required_errors(route: APIRoute) -> dict[int, str]:
    """The error statuses a route can give, from what it does, with the reason."""
    needed: dict[int, str] = {500: "any operation can fail unexpectedly"}
    calls = dependency_calls(route.dependant)
    if dependencies.get_account in calls:
        needed[401] = "it takes the account's Basic credentials"
        needed[429] = "failed Basic logins are throttled"
    if dependencies.get_token_owner in calls:
        needed[401] = "it takes a session token"
    if {calls_api._agent, supervision_api._supervisor} & calls:
        needed[403] = "it is for one role only (operator or supervisor)"
    dependant = route.dependant
    if _validated_params(dependant):
        needed[400] = "its parameters are validated"
    if route.body_field is not None:
        needed[400] = "its JSON body is validated"
        needed[413] = "its body has a size limit"
    if isinstance(route, StrictJsonRoute) and set(route.methods or ()) & {"POST", "PUT", "PATCH"}:
        needed[413] = "it reads a body, which has a size limit"
        needed[415] = "a body that is not JSON is refused"
    return needed


def _validated_params(dependant: Dependant) -> bool:
    """Whether some parameter can be refused: a constraint, a type other than text, or a
    required query parameter (it can be missing). A bare text path parameter cannot."""
    params = [*dependant.path_params, *dependant.query_params, *dependant.header_params]
    for param in params:
        info = param.field_info
        missing = param in dependant.query_params and param.field_info.is_required()
        if info.annotation is not str or info.metadata or missing:
            return True
    return any(_validated_params(sub) for sub in dependant.dependencies)


def _is_any(schema: Any) -> bool:
    return isinstance(schema, dict) and not (SCHEMA_KEYS & schema.keys() or "properties" in schema)


def schema_problems(schema: Any, where: str, *, extra_of_known: bool = False) -> list[str]:
    """Bare objects and "anything" schemas in ``schema``; "anything" is accepted only as
    the value of keys beyond the ones an object names (settings kept as given)."""
    if schema is True or (_is_any(schema) and not extra_of_known):
        return [f"{where}: a schema that allows anything"]
    if not isinstance(schema, dict):
        return []
    found = []
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    if "object" in types and not properties and extra in (None, True, {}):
        found.append(f"{where}: a bare object (no properties, untyped values)")
    if "array" in types and "items" not in schema:
        found.append(f"{where}: an array of anything")
    for name, sub in properties.items():
        found += schema_problems(sub, f"{where}.{name}")
    if isinstance(extra, dict) and extra:
        found += schema_problems(extra, f"{where}.*", extra_of_known=bool(properties))
    if isinstance(schema.get("items"), dict):
        found += schema_problems(schema["items"], f"{where}[]")
    for key in ("anyOf", "oneOf", "allOf"):
        for index, sub in enumerate(schema.get(key, [])):
            found += schema_problems(sub, f"{where}/{key}/{index}")
    return found


def operation_problems(name: str, operation: dict[str, Any], needed: dict[int, str]) -> list[str]:
    responses: dict[str, Any] = operation.get("responses", {})
    found = []
    successes = [s for s in responses if s.startswith("2")]
    if not successes:
        found.append(f"{name}: no 2xx answer described")
    for status in successes:
        content = responses[status].get("content", {})
        if status == "204":
            if content:
                found.append(f"{name} 204: describes a body, but 204 has none")
            continue
        if not content:
            found.append(f"{name} {status}: no media type and schema (response_model=…)")
        for media, described in content.items():
            schema = described.get("schema")
            if not schema:
                found.append(f"{name} {status} {media}: no schema")
            elif media.endswith("json"):
                found += schema_problems(schema, f"{name} {status} {media}")
    for status, described in responses.items():
        if status[0] in "45":
            schema = described.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != ERROR_BODY:
                found.append(
                    f"{name} {status}: the error body is not ErrorBody "
                    "(responses=errors(...) from voicemgmt.web.responses)"
                )
    for code, reason in sorted(needed.items()):
        if str(code) not in responses:
            found.append(f"{name}: {code} not described, though {reason}")
    return found


def document_problems(document: dict[str, Any], app: FastAPI) -> list[str]:
    routes = {
        (method.lower(), path): route
        for path, route in api_routes(app)
        for method in route.methods or ()
    }
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            route = routes.get((method, path))
            assert route is not None, f"{method.upper()} {path}: no route serves it"
            needed = required_errors(route)
            found += operation_problems(f"{method.upper()} {path}", operation, needed)
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        found += schema_problems(schema, f"components.schemas.{name}")
    return found


def test_the_document_describes_every_answer(server: LiveServer, api: httpx.Client) -> None:
    answer = api.get("/openapi.json")
    assert answer.status_code == 200
    problems = document_problems(answer.json(), server.app)
    assert not problems, "/openapi.json is incomplete:\n" + "\n".join(problems)


def test_the_walk_finds_what_is_missing() -> None:
    """The walk itself: each kind of gap is reported, named."""
    operation: dict[str, Any] = {
        "responses": {
            "200": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "404": {"content": {"application/json": {"schema": {}}}},
        }
    }
    problems = operation_problems("GET /x", operation, {401: "it takes a session token"})
    assert problems == [
        "GET /x 200 application/json: a bare object (no properties, untyped values)",
        "GET /x 404: the error body is not ErrorBody "
        "(responses=errors(...) from voicemgmt.web.responses)",
        "GET /x: 401 not described, though it takes a session token",
    ]
    assert operation_problems("POST /y", {"responses": {}}, {}) == [
        "POST /y: no 2xx answer described"
    ]
    assert schema_problems({"type": "object", "additionalProperties": {}}, "S") == [
        "S: a bare object (no properties, untyped values)"
    ]
    assert schema_problems({"type": "array"}, "S") == ["S: an array of anything"]
    assert schema_problems({"description": "x"}, "S") == ["S: a schema that allows anything"]
    known = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert schema_problems({**known, "additionalProperties": {"description": "kept"}}, "S") == []


def test_the_walk_knows_what_each_route_does(server: LiveServer) -> None:
    """What the walk derives from the routes themselves (so that it cannot go blind)."""
    routes = {(m, path): r for path, r in api_routes(server.app) for m in r.methods or ()}
    assert set(required_errors(routes["POST", "/api/v1/operators"])) == {
        400,
        401,
        413,
        415,
        429,
        500,
    }
    assert set(required_errors(routes["GET", "/api/v1/me/state"])) == {401, 403, 500}
    assert set(required_errors(routes["GET", "/api/v1/supervision/charts"])) == {400, 401, 403, 500}
    assert set(required_errors(routes["GET", "/vm/token/{token}"])) == {401, 429, 500}
    assert set(required_errors(routes["GET", "/healthz"])) == {500}
    documented = server.app.openapi()["paths"]
    assert {(m.lower(), p) for m, p in routes} == {
        (m, p) for p, ops in documented.items() for m in ops
    }


def test_validation_never_answers_422(server: LiveServer, api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    statuses = {
        s for ops in document["paths"].values() for op in ops.values() for s in op["responses"]
    }
    assert "422" not in statuses
    assert "HTTPValidationError" not in document["components"]["schemas"]


# real answers


def expect(answer: httpx.Response, status: int) -> Any:
    assert answer.status_code == status, (
        f"{answer.request.method} {answer.request.url}: {answer.text}"
    )
    if not answer.content:
        return None
    return answer.json() if "json" in answer.headers.get("content-type", "") else answer.text


def test_every_operation_answers_as_documented(
    server: LiveServer, api: httpx.Client, acme: SeededAccount, globex: SeededAccount
) -> None:
    """Each operation once with success and the error kinds around it; the client's hook
    checks every answer against the document."""
    auth = acme.auth
    base = "/api/v1"
    for path in ("/healthz", "/cnx.js", "/cnx.d.ts", "/example/index.htm", "/events.schema.json"):
        expect(api.get(path), 200)
    _directory(api, auth, acme)
    _tokens_and_sessions(api, server, acme)
    _calls(api, server, acme)
    _reports(api, server, acme)
    _platform(api, acme)
    _webhooks(api, server, acme)
    expect(api.get("/metrics", headers=bearer(METRICS_TOKEN)), 200)
    expect(api.get("/metrics"), 401)
    # error kinds every route shares
    expect(api.get(f"{base}/operators", params={"limit": 0}, auth=auth), 400)
    expect(api.get(f"{base}/account"), 401)
    expect(api.post(f"{base}/groups", auth=auth, content=b"{oops", headers=JSON), 400)
    expect(api.post(f"{base}/groups", auth=auth, content=b"x" * 70_000, headers=JSON), 413)
    expect(api.post(f"{base}/groups", auth=auth, data={"name": "Form"}), 415)
    for _ in range(6):
        last = api.get(f"{base}/account", auth=(globex.login, "wrong password"))
    expect(last, 429)
    assert last.json()["details"]["retry_after"] > 0

    answered = {name for name, status in server.conformance.seen if 200 <= status < 300}
    documented = {op.name for op in server.conformance.operations}
    missing = sorted(documented - answered)
    assert not missing, (
        "operations never answered with success here; add a request for each to "
        "tests/test_openapi.py::test_every_operation_answers_as_documented:\n" + "\n".join(missing)
    )


JSON = {"Content-Type": "application/json"}


def _directory(api: httpx.Client, auth: tuple[str, str], acme: SeededAccount) -> None:
    base = "/api/v1"
    expect(api.get(f"{base}/account", auth=auth), 200)
    expect(
        api.patch(f"{base}/account", auth=auth, json={"settings": {"screen_pop": "answer"}}), 200
    )
    group = expect(api.post(f"{base}/groups", auth=auth, json={"name": "Sales"}), 201)
    gid = group["id_group"]
    expect(api.post(f"{base}/groups", auth=auth, json={"name": "Sales"}), 409)
    expect(api.get(f"{base}/groups", auth=auth), 200)
    expect(api.get(f"{base}/groups/{gid}", auth=auth), 200)
    expect(api.get(f"{base}/groups/{2**31 - 1}", auth=auth), 404)
    expect(
        api.patch(f"{base}/groups/{acme.id_group}", auth=auth, json={"settings": {"wrap_up": 0}}),
        200,
    )
    number = expect(
        api.post(f"{base}/numbers", auth=auth, json={"e164": "33170200210", "id_group": gid}), 201
    )["e164"]
    expect(api.get(f"{base}/numbers", auth=auth), 200)
    expect(api.get(f"{base}/numbers/{number}", auth=auth), 200)
    expect(api.patch(f"{base}/numbers/{number}", auth=auth, json={"label": "Sales line"}), 200)
    expect(api.delete(f"{base}/groups/{gid}", auth=auth), 409)
    expect(api.delete(f"{base}/numbers/{number}", auth=auth), 204)
    expect(api.delete(f"{base}/groups/{gid}", auth=auth), 204)
    person = {"name": "Cleo", "email": "cleo@acme.example", "groups": [{"id_group": acme.id_group}]}
    oid = expect(api.post(f"{base}/operators", auth=auth, json=person), 201)["id_agent"]
    expect(api.get(f"{base}/operators", auth=auth), 200)
    expect(api.get(f"{base}/operators/{oid}", auth=auth), 200)
    expect(api.patch(f"{base}/operators/{oid}", auth=auth, json={"name": "Cleo B"}), 200)
    device = {"username": "cleo", "password": "cleo-sip-secret"}
    expect(api.put(f"{base}/operators/{oid}/sip-device", auth=auth, json=device), 200)
    expect(api.get(f"{base}/operators/{oid}/sip-device", auth=auth), 200)
    expect(api.delete(f"{base}/operators/{oid}/sip-device", auth=auth), 204)
    expect(api.get(f"{base}/operators/{oid}/sip-device", auth=auth), 404)
    expect(api.delete(f"{base}/operators/{oid}", auth=auth), 204)
    sup = {"name": "Dee", "email": "dee@acme.example"}
    sid = expect(api.post(f"{base}/supervisors", auth=auth, json=sup), 201)["id_admin"]
    expect(api.get(f"{base}/supervisors", auth=auth), 200)
    expect(api.get(f"{base}/supervisors/{sid}", auth=auth), 200)
    expect(api.patch(f"{base}/supervisors/{sid}", auth=auth, json={"name": "Dee B"}), 200)
    expect(api.delete(f"{base}/supervisors/{sid}", auth=auth), 204)


def _tokens_and_sessions(api: httpx.Client, server: LiveServer, acme: SeededAccount) -> None:
    token = expect(api.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent}), 200)
    token = token["token"]
    expect(api.get(f"/vm/token/{token}", auth=acme.auth), 200)
    expect(api.get("/vm/me", headers=bearer(token)), 200)
    expect(api.get("/operateurs/index.htm", params={"token_session": token}), 200)
    expect(api.post("/vm/token", auth=acme.auth, json={"id_agent": 2**31 - 1}), 404)
    expect(api.delete(f"/vm/token/{token}", auth=acme.auth), 200)
    expect(api.get(f"/vm/token/{token}", auth=acme.auth), 404)
    login = {"login": acme.agent_email, "password": acme.agent_password}
    session = expect(api.post("/vm/login", json=login), 200)["token"]
    expect(api.post("/vm/logout", headers=bearer(session)), 200)
    expect(api.post("/vm/logout", headers=bearer(session)), 401)
    admin = token_for(server, acme, id_admin=acme.id_admin)
    expect(api.get("/superviseur/index.htm", params={"token_session": admin}), 200)


def _calls(api: httpx.Client, server: LiveServer, acme: SeededAccount) -> None:
    ana = Operator(server, acme, acme.id_agent)
    try:
        expect(ana.http.get("/api/v1/me/directory"), 200)
        expect(ana.http.get("/api/v1/supervision/live"), 403)
        expect(ana.status("online"), 200)
        call_id = place_call(server, acme)
        assert ana.ringing_call() == call_id  # /me/state with a ringing call
        expect(ana.act(call_id, "answer"), 200)
        expect(ana.act(call_id, "answer"), 409)
        expect(ana.act(call_id, "hold"), 200)
        expect(ana.act(call_id, "unhold"), 200)
        expect(ana.act(call_id, "hangup"), 200)
        expect(ana.act("no-such-call", "hangup"), 404)
        declined = place_call(server, acme, hangup_after=0.5)
        assert ana.ringing_call() == declined
        expect(ana.act(declined, "decline"), 200)
        eventually(lambda: not ana.state()["calls"])
        expect(ana.status("online"), 200)  # a decline may have set a break
        moved = place_call(server, acme, hangup_after=1)
        assert ana.ringing_call() == moved
        expect(ana.act(moved, "answer"), 200)
        expect(ana.act(moved, "transfer", id_group=acme.id_group), 200)
        eventually(lambda: not ana.state()["calls"])
        expect(ana.status("online"), 200)
        placed = expect(ana.http.post("/api/v1/me/calls", json={"to": "33618220000"}), 201)
        expect(ana.act(placed["id_call"], "hangup"), 200)
        expect(ana.http.get("/api/v1/me/calls"), 200)
        expect(ana.http.get("/api/v1/me/calls", params={"kind": "missed"}), 200)
    finally:
        ana.http.close()


def _reports(api: httpx.Client, server: LiveServer, acme: SeededAccount) -> None:
    admin = bearer(token_for(server, acme, id_admin=acme.id_admin))
    base = "/api/v1"
    live = expect(api.get(f"{base}/supervision/live", headers=admin), 200)
    assert live["operators"]
    assert live["queues"]
    expect(api.get(f"{base}/me/directory", headers=admin), 200)
    expect(api.get(f"{base}/me/state", headers=admin), 403)
    status = {"status": "break"}
    path = f"{base}/supervision/operators/{acme.other_id_agent}/status"
    expect(api.put(path, headers=admin, json=status), 200)
    expect(
        api.put(f"{base}/supervision/operators/{2**31 - 1}/status", headers=admin, json=status), 404
    )
    records = expect(api.get(f"{base}/call-records", auth=acme.auth), 200)
    assert records["items"], "the calls above left records"
    csv = api.get(f"{base}/call-records", auth=acme.auth, params={"format": "csv"})
    assert expect(csv, 200).startswith("id_call")
    expect(api.get(f"{base}/figures", auth=acme.auth), 200)
    expect(api.get(f"{base}/figures", auth=acme.auth, params={"service_level": 0}), 400)
    expect(api.get(f"{base}/supervision/figures", headers=admin), 200)
    expect(api.get(f"{base}/supervision/charts", headers=admin), 200)
    expect(api.get(f"{base}/supervision/call-records", headers=admin), 200)
    csv_headers = {**admin, "Accept": "text/csv"}
    expect(api.get(f"{base}/supervision/call-records", headers=csv_headers), 200)
    expect(
        api.post(
            f"{base}/sim/calls", auth=acme.auth, json={"from": "33612345678", "to": "33170200201"}
        ),
        404,
    )


def _webhooks(api: httpx.Client, server: LiveServer, acme: SeededAccount) -> None:
    """Subscriptions, their deliveries (to a closed port: they fail) and the supervisor's view."""
    auth, base = acme.auth, "/api/v1/webhooks"

    async def allow_loopback(container: Container) -> None:
        await container.webhooks.allow_private_targets(acme.id, True)

    server.call_soon(allow_loopback)
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["operator.status"]}
    wid = expect(api.post(base, auth=auth, json=hook), 201)["id_webhook"]
    expect(api.post(base, auth=auth, json={**hook, "url": "not a url"}), 400)
    expect(api.get(base, auth=auth), 200)
    expect(api.get(f"{base}/{wid}", auth=auth), 200)
    expect(api.get(f"{base}/{2**31 - 1}", auth=auth), 404)
    expect(api.patch(f"{base}/{wid}", auth=auth, json={"description": "CRM"}), 200)
    expect(api.post(f"{base}/{wid}/rotate-secret", auth=auth), 200)
    admin = bearer(token_for(server, acme, id_admin=acme.id_admin))
    path = f"/api/v1/supervision/operators/{acme.other_id_agent}/status"
    expect(api.put(path, headers=admin, json={"status": "online"}), 200)

    def delivered() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = expect(api.get(f"{base}/{wid}/deliveries", auth=auth), 200)[
            "items"
        ]
        return items

    delivery = eventually(delivered)[0]["id"]
    expect(api.get(f"{base}/{wid}/deliveries/{delivery}", auth=auth), 200)
    expect(api.post(f"{base}/{wid}/deliveries/{delivery}/redeliver", auth=auth), 202)
    expect(api.get("/api/v1/supervision/webhooks", headers=admin), 200)
    expect(api.delete(f"{base}/{wid}", auth=auth), 204)


def _platform(api: httpx.Client, acme: SeededAccount) -> None:
    """The platform API of SPEC §6 (docs/platform-api.md)."""
    auth = acme.auth
    today = datetime.now(UTC).date()
    window = {"date": today.isoformat(), "date_end": (today + timedelta(days=1)).isoformat()}
    calls = expect(api.post("/vm/calls/in", auth=auth, json=window), 200)
    expect(api.post("/vm/calls/out", auth=auth, json=window), 200)
    inverted = {"date": window["date_end"], "date_end": window["date"]}
    expect(api.post("/vm/calls/in", auth=auth, json=inverted), 400)
    expect(api.get("/vm/operators", auth=auth), 200)
    expect(api.get(f"/vm/operators/{acme.id_agent}", auth=auth), 200)
    expect(api.get(f"/vm/operators/{2**31 - 1}", auth=auth), 404)
    expect(api.post("/vm/operators", auth=auth, json={"email": acme.agent_email}), 200)
    expect(api.get("/vm/operators_init", auth=auth), 200)
    expect(api.get("/vm/service_numbers", auth=auth), 200)
    number = {"service_number": "33170200300", "id_group": acme.id_group}
    expect(api.post("/vm/service_numbers", auth=auth, json=number), 201)
    expect(api.post("/vm/service_numbers", auth=auth, json=number), 409)
    change = {"service_number": "33170200300", "record": True}
    expect(api.put("/vm/service_numbers", auth=auth, json=change), 200)
    ids = [c["id_appel"] for c in calls["calls"]][:2]
    assert ids, "the calls above are in the history"
    query = {"call_ids": ",".join(ids)}
    expect(api.get("/voice-management/variables", auth=auth, params=query), 200)
    expect(api.post("/voice-management/variables", auth=auth, json=ids), 200)
    unknown = api.post("/voice-management/variables", auth=auth, json=["no-such-call"])
    assert expect(unknown, 404)["details"]["unknown"] == ["no-such-call"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/no/such/path", {}, 404),
        ("GET", "/static/no-such-file.js", {}, 404),
        ("DELETE", "/healthz", {}, 405),
        ("GET", "/api/v1/account", {}, 401),
        ("POST", "/vm/token", {"content": b"x" * 70_000}, 413),
    ],
)
def test_every_error_has_details(
    server: LiveServer, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    with httpx.Client(base_url=server.base_url) as plain:
        answer = plain.request(method, path, **kwargs)
    assert answer.status_code == status
    assert set(answer.json()) == {"status", "err_code", "err_msg", "details"}
    assert answer.json()["details"] == {}


def test_the_answer_check_names_what_differs(server: LiveServer) -> None:
    """The check every client runs: a status not described, a body off its schema, an
    undocumented ``details`` key, a media type not described are each reported."""
    check = server.conformance.problems
    assert check("GET", "/api/v1/figures", 418, "application/json", b"{}") == [
        "GET /api/v1/figures answered 418, a status its responses do not describe "
        "(they list 200, 400, 401, 408, 429, 431, 500)"
    ]
    assert check("GET", "/healthz", 200, "application/json", b'{"status": "bad"}') == [
        "GET /healthz answered 200: status: 'ok' was expected"
    ]
    error = b'{"status": 401, "err_code": "x", "err_msg": "y", "details": {"url": "z"}}'
    assert check("GET", "/api/v1/account", 401, "application/json", error) == [
        "GET /api/v1/account answered 401 with details keys ['url'] that ErrorDetails "
        "(voicemgmt.web.errors) does not document"
    ]
    no_details = b'{"status": 401, "err_code": "x", "err_msg": "y"}'
    assert check("GET", "/api/v1/account", 401, "application/json", no_details) == [
        "GET /api/v1/account answered 401: (body): 'details' is a required property"
    ]
    assert check("GET", "/cnx.js", 200, "text/html", b"<p>") == [
        "GET /cnx.js answered 200 as 'text/html', but it describes only ['text/javascript']"
    ]
    assert check("GET", "/static/css/banner.css", 200, "text/css", b"") == []  # not an operation


def test_response_models_are_strict_when_built_and_open_in_the_document() -> None:
    """A key the code sends but a model lacks fails the answer (a 500 a test sees) instead of
    silently vanishing from it; the document still lets clients meet later fields."""
    fields = dict.fromkeys(CallRecordOut.model_fields, None)
    with pytest.raises(ValidationError, match="new_field"):
        CallRecordOut.model_validate({**fields, "new_field": 1})
    assert "additionalProperties" not in CallRecordOut.model_json_schema()
