"""The platform API (SPEC §6) through a real server: what it answers, and what it refuses."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.platform_support import history, other_history, record, store
from tests.support import LiveServer, SeededAccount, live_server, make_settings
from voicemgmt.config import Settings

WEEK = {"date": "2026-12-01", "date_end": "2026-12-07"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "", sim_prompt_seconds=0.05, sim_digit_interval=0.01)


@pytest.fixture
def api(settings: Settings, seeded: tuple[SeededAccount, SeededAccount]) -> Iterator[LiveServer]:
    acme, globex = seeded
    with live_server(settings) as running:
        store(running, acme, *history(acme, globex).values())
        store(running, globex, *other_history())
        yield running


def post(server: LiveServer, account: SeededAccount, path: str, body: Any) -> httpx.Response:
    with server.client() as client:
        return client.post(path, auth=account.auth, json=body)


def get(server: LiveServer, account: SeededAccount, path: str, **params: Any) -> httpx.Response:
    with server.client() as client:
        return client.get(path, auth=account.auth, params=params)


def ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [c["id_appel"] for c in answer.json()["calls"]]


def error(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert body["err_code"]
    assert body["err_msg"]
    return body


# call history


def test_calls_in_give_the_period_s_inbound_calls_newest_first_with_every_duration(
    api: LiveServer, acme: SeededAccount
) -> None:
    answer = post(api, acme, "/vm/calls/in", WEEK)
    assert ids(answer) == ["c-in-2", "c-in-1"]
    first = answer.json()["calls"][1]
    assert first == {
        "id_appel": "c-in-1",
        "date": "2026-12-02T09:15:00.000Z",
        "date_end": "2026-12-02T09:20:10.000Z",
        "service_number": "33170200200",
        "caller_number": "33612345678",
        "id_group": acme.id_group,
        "id_op": acme.id_agent,
        "outcome": "answered",
        "duration": 310.0,
        "duration_ring": 4.0,
        "duration_svi": 12.5,
        "duration_wait": 20.0,
        "duration_comm": 270.0,
        "duration_hold": 7.5,
        "post_appel": 10.0,
    }


def test_calls_out_keep_the_account_s_number_as_service_number(
    api: LiveServer, acme: SeededAccount
) -> None:
    answer = post(api, acme, "/vm/calls/out", {**WEEK, "service_number": "33170200200"})
    assert ids(answer) == ["c-out-1"]
    call = answer.json()["calls"][0]
    assert (call["service_number"], call["caller_number"]) == ("33170200200", "33612345678")
    assert ids(post(api, acme, "/vm/calls/out", {**WEEK, "caller_number": "33170200200"})) == []


def test_number_filters_match_exactly_and_accept_a_plus_and_spaces(
    api: LiveServer, acme: SeededAccount
) -> None:
    by_caller = post(api, acme, "/vm/calls/in", {**WEEK, "caller_number": "+33 6 98 76 54 32"})
    assert ids(by_caller) == ["c-in-2"]
    assert ids(post(api, acme, "/vm/calls/in", {**WEEK, "service_number": "33170200201"})) == []


def test_another_account_s_calls_never_show(
    api: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    assert "g-in-1" not in ids(post(api, acme, "/vm/calls/in", WEEK))
    assert ids(post(api, globex, "/vm/calls/in", WEEK)) == ["g-in-1"]


@pytest.mark.parametrize(
    ("date", "date_end", "expected"),
    [
        ("2026-12-02", "2026-12-02", ["c-in-1"]),  # a bare end day counts in whole
        ("2026-12-02 09:15", "2026-12-02 09:16", ["c-in-1"]),
        ("2026-12-02T09:15:00", "2026-12-02T09:15:01", ["c-in-1"]),
        ("2026-12-02T10:15:00+01:00", "2026-12-02T10:16:00+01:00", ["c-in-1"]),
        ("2026-12-02T09:15:00Z", "2026-12-02T09:15:00.001Z", ["c-in-1"]),
        ("2026-12-02 09:15:01", "2026-12-06 10:00", []),  # start included, end excluded
        ("2026-11-01", "2026-12-01", ["c-in-old"]),
    ],
)
def test_dates_in_the_common_forms_without_a_zone_meaning_utc(
    api: LiveServer, acme: SeededAccount, date: str, date_end: str, expected: list[str]
) -> None:
    assert ids(post(api, acme, "/vm/calls/in", {"date": date, "date_end": date_end})) == expected


def test_pages_give_every_call_once_and_the_total(api: LiveServer, acme: SeededAccount) -> None:
    store(api, acme, *(record(f"p-{n:02}", f"2026-12-04 10:{n:02}:00") for n in range(25)))
    seen: list[str] = []
    for offset in range(0, 30, 10):
        answer = post(api, acme, "/vm/calls/in", {**WEEK, "limit": 10, "offset": offset})
        assert answer.json()["total"] == 27
        seen += ids(answer)
    assert len(seen) == len(set(seen)) == 27


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"date": "2026-12-07", "date_end": "2026-12-01"}, "date_end"),  # inverted
        ({"date": "2026-12-01 10:00", "date_end": "2026-12-01 10:00"}, "date_end"),  # empty
        ({"date": "2026-11-01", "date_end": "2026-12-02"}, "date_end"),  # 32 days
        ({"date": "2026-12-01T00:00Z", "date_end": "2027-12-01T00:00Z"}, "date_end"),
        ({"date": "01/12/2026", "date_end": "2026-12-07"}, "date"),
        ({"date": "2026-13-01", "date_end": "2026-12-07"}, "date"),
        ({"date": "2026-12-01", "date_end": "2026-12-07 25:00"}, "date_end"),
        ({"date": "now", "date_end": "2026-12-07"}, "date"),
        ({"date": "9999-12-31", "date_end": "9999-12-31"}, "date_end"),
        ({"date": "0001-01-01T00:00+14:00", "date_end": "2026-12-07"}, "date"),
        ({"date": "2026-12-01\u0000", "date_end": "2026-12-07"}, "date"),
        ({**WEEK, "service_number": "hello"}, "service_number"),
        ({**WEEK, "caller_number": "+0000"}, "caller_number"),
    ],
)
def test_bad_periods_dates_and_numbers_are_400_naming_the_field(
    api: LiveServer, acme: SeededAccount, body: dict[str, Any], field: str
) -> None:
    answer = post(api, acme, "/vm/calls/in", body)
    assert error(answer, 400)["details"]["field"] == field


@pytest.mark.parametrize(
    "body",
    [
        {"date_end": "2026-12-07"},
        {**WEEK, "date": 20261201},
        {**WEEK, "limit": "10"},
        {**WEEK, "limit": 0},
        {**WEEK, "limit": 1001},
        {**WEEK, "offset": -1},
        {**WEEK, "extra": 1},
        {**WEEK, "date": "2026-12-01" + " " * 60},
        {**WEEK, "service_number": ["33170200200"]},
        ["2026-12-01", "2026-12-07"],
        None,
    ],
)
def test_malformed_bodies_are_400(api: LiveServer, acme: SeededAccount, body: Any) -> None:
    for path in ("/vm/calls/in", "/vm/calls/out"):
        error(post(api, acme, path, body), 400)


# every endpoint: hostile requests


ENDPOINTS = [
    ("POST", "/vm/calls/in", WEEK),
    ("POST", "/vm/calls/out", WEEK),
    ("GET", "/vm/operators", None),
    ("GET", "/vm/operators/1", None),
    ("POST", "/vm/operators", {"email": "ana@acme.example"}),
    ("GET", "/vm/operators_init", None),
    ("GET", "/vm/service_numbers", None),
    ("POST", "/vm/service_numbers", {"service_number": "33170200300", "id_group": 1}),
    ("PUT", "/vm/service_numbers", {"service_number": "33170200200", "record": True}),
    ("GET", "/voice-management/variables?call_ids=c-in-1", None),
    ("POST", "/voice-management/variables", ["c-in-1"]),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_wants_basic_credentials_and_never_reads_them_from_the_query(
    api: LiveServer, acme: SeededAccount, method: str, path: str, body: Any
) -> None:
    wrong = base64.b64encode(f"{acme.login}:nope-nope".encode()).decode()
    sneaky = f"login={acme.login}&pass={acme.password}&password={acme.password}"
    joined = f"{path}{'&' if '?' in path else '?'}{sneaky}"
    with api.client() as client:
        for headers, url in (
            ({}, path),
            ({"Authorization": f"Basic {wrong}"}, path),
            ({"Authorization": "Basic !!!"}, path),
            ({"Authorization": f"Bearer {acme.password}"}, path),
            ({}, joined),
        ):
            answer = client.request(method, url, json=body, headers=headers)
            assert error(answer, 401)["err_code"] == "authentication_failed"
            assert answer.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("method", "path", "body"), [e for e in ENDPOINTS if e[0] in ("POST", "PUT")]
)
def test_every_body_must_be_json_small_and_well_formed(
    api: LiveServer, acme: SeededAccount, method: str, path: str, body: Any
) -> None:
    with api.client(auth=acme.auth) as client:
        json_type = {"Content-Type": "application/json"}
        not_json = client.request(method, path, content=b"date=2026-12-01", headers={})
        assert error(not_json, 415)
        broken = client.request(method, path, content=b'{"date": ', headers=json_type)
        assert error(broken, 400)["err_code"] == "invalid_json"
        quotes = client.request(
            method, path, content="{“date”: “2026-12-01”}".encode(), headers=json_type
        )
        assert error(quotes, 400)["err_code"] == "invalid_json"
        huge = client.request(
            method, path, content=b"[" + b'"x",' * 40_000 + b'"x"]', headers=json_type
        )
        assert error(huge, 413)
        deep = client.request(method, path, content=b"[" * 5000 + b"]" * 5000, headers=json_type)
        assert error(deep, 400)


# operators


def test_operators_are_listed_by_id_with_the_platform_s_names(
    api: LiveServer, acme: SeededAccount
) -> None:
    answer = get(api, acme, "/vm/operators")
    assert answer.status_code == 200
    assert answer.json() == {
        "operators": [
            {
                "id": acme.id_agent,
                "email": acme.agent_email,
                "realname": "Ana",
                "login": acme.agent_email,
            },
            {
                "id": acme.other_id_agent,
                "email": f"bob@{acme.login}.example",
                "realname": "Bob",
                "login": f"bob@{acme.login}.example",
            },
        ],
        "limit": 100,
        "offset": 0,
    }
    second = get(api, acme, "/vm/operators", limit=1, offset=1).json()["operators"]
    assert [o["id"] for o in second] == [acme.other_id_agent]


def test_another_account_s_operator_is_unknown(
    api: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    assert get(api, acme, f"/vm/operators/{acme.id_agent}").status_code == 200
    theirs = error(get(api, acme, f"/vm/operators/{globex.id_agent}"), 404)
    nobody = error(get(api, acme, "/vm/operators/999999"), 404)
    assert theirs["err_code"] == nobody["err_code"] == "unknown_operator"
    found = post(api, acme, "/vm/operators", {"email": globex.agent_email})
    assert found.json()["operators"] == []


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "2147483648", "1.5", "99999999999999999999"])
def test_malformed_operator_ids_are_400(api: LiveServer, acme: SeededAccount, bad: str) -> None:
    error(get(api, acme, f"/vm/operators/{bad}"), 400)


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}])
def test_bad_pages_are_400(api: LiveServer, acme: SeededAccount, query: dict[str, Any]) -> None:
    for path in ("/vm/operators", "/vm/service_numbers"):
        error(get(api, acme, path, **query), 400)


def test_operators_are_found_by_email_or_login_whatever_the_case(
    api: LiveServer, acme: SeededAccount
) -> None:
    def found(body: Any) -> list[int]:
        answer = post(api, acme, "/vm/operators", body)
        assert answer.status_code == 200, answer.text
        return [o["id"] for o in answer.json()["operators"]]

    assert found({"email": acme.agent_email.upper()}) == [acme.id_agent]
    assert found({"login": acme.agent_email}) == [acme.id_agent]
    assert found({"email": acme.agent_email, "login": acme.agent_email}) == [acme.id_agent]
    assert found({"email": acme.agent_email, "login": f"bob@{acme.login}.example"}) == []
    assert found({"email": "nobody@acme.example"}) == []
    assert found({}) == [acme.id_agent, acme.other_id_agent]


@pytest.mark.parametrize(
    "body", [{"email": 5}, {"email": ""}, {"name": "Ana"}, {"email": "x" * 400}, [1]]
)
def test_bad_operator_filters_are_400(api: LiveServer, acme: SeededAccount, body: Any) -> None:
    error(post(api, acme, "/vm/operators", body), 400)


def test_operators_init_follows_the_live_routing_state(
    api: LiveServer, acme: SeededAccount
) -> None:
    with api.client() as client:
        token = client.post("/vm/token", auth=acme.auth, json={"id_agent": acme.id_agent})
        online = client.put(
            "/api/v1/me/status",
            json={"status": "online"},
            headers={"Authorization": f"Bearer {token.json()['token']}"},
        )
        assert online.status_code == 200, online.text
    body = get(api, acme, "/vm/operators_init").json()
    by_id = {o["id"]: o for o in body["operators"]}
    assert set(by_id) == {acme.id_agent, acme.other_id_agent}
    assert (by_id[acme.id_agent]["status"], by_id[acme.id_agent]["activity"]) == (
        "online",
        "idle",
    )
    assert by_id[acme.other_id_agent]["status"] == "offline"
    assert by_id[acme.id_agent]["id_appel"] is None


# the OpenAPI description


def test_openapi_describes_every_answer_of_the_platform_api(
    api: LiveServer, acme: SeededAccount
) -> None:
    with api.client() as client:
        spec = client.get("/openapi.json").json()
    wanted = {(m, p.split("?")[0]) for m, p, _ in ENDPOINTS}
    paths = {(m, "/vm/operators/{id}" if p == "/vm/operators/1" else p) for m, p in wanted}
    schemas = spec["components"]["schemas"]
    assert set(schemas["ErrorBody"]["required"]) == {"status", "err_code", "err_msg", "details"}
    for method, path in paths:
        responses = spec["paths"][path][method.lower()]["responses"]
        success = responses["201" if (method, path) == ("POST", "/vm/service_numbers") else "200"]
        model = success["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert schemas[model]["properties"], model
        assert "422" not in responses, (method, path)  # bad input is 400 here
        for status in ("400", "401", "429", "500"):
            if status == "400" and path == "/vm/operators_init":
                continue
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("/ErrorBody"), (method, path, status)


def test_error_details_are_described_field_by_field(api: LiveServer, acme: SeededAccount) -> None:
    with api.client() as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    details = schemas["ErrorDetails"]["properties"]  # the app's one error body's
    assert {"field", "value", "unknown", "errors"} <= set(details)
    answer = post(api, acme, "/vm/calls/in", {**WEEK, "limit": "ten"})
    problems = error(answer, 400)["details"]["errors"]
    assert problems[0]["field"] == "limit"
