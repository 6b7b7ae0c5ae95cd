"""The platform API (SPEC §6): service numbers, IVR variables, and records of real calls."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.platform_support import history, other_history, store
from tests.support import LiveServer, SeededAccount, live_server, make_settings
from voicemgmt.config import Settings


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


def send(
    server: LiveServer, account: SeededAccount, method: str, path: str, body: Any = None
) -> httpx.Response:
    with server.client() as client:
        return client.request(method, path, auth=account.auth, json=body)


def error(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert body["err_code"]
    assert body["err_msg"]
    return body


def around_now() -> dict[str, str]:
    """A period of two days around now, for calls the test places."""
    now = datetime.now(UTC)
    return {
        "date": (now - timedelta(days=1)).isoformat(),
        "date_end": (now + timedelta(days=1)).isoformat(),
    }


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
    return result


# service numbers


def test_numbers_are_listed_with_state_and_record_flag(
    api: LiveServer, acme: SeededAccount
) -> None:
    answer = send(api, acme, "GET", "/vm/service_numbers")
    assert answer.json() == {
        "service_numbers": [
            {
                "service_number": acme.number,
                "state": "active",
                "record": False,
                "id_group": acme.id_group,
                "label": "Hotline",
            }
        ],
        "limit": 100,
        "offset": 0,
    }


def test_a_number_is_added_changed_and_read_back(api: LiveServer, acme: SeededAccount) -> None:
    added = send(
        api,
        acme,
        "POST",
        "/vm/service_numbers",
        {"service_number": "+33 1 70 20 03 00", "id_group": acme.id_group, "record": True},
    )
    assert added.status_code == 201, added.text
    assert (added.json()["service_number"], added.json()["record"]) == ("33170200300", True)
    changed = send(
        api,
        acme,
        "PUT",
        "/vm/service_numbers",
        {"service_number": "33170200300", "state": "suspended", "label": "Old"},
    )
    assert changed.json() == {
        "service_number": "33170200300",
        "state": "suspended",
        "record": True,  # absent from the PUT: unchanged
        "id_group": acme.id_group,
        "label": "Old",
    }
    listed = send(api, acme, "GET", "/vm/service_numbers").json()["service_numbers"]
    assert [n["service_number"] for n in listed] == [acme.number, "33170200300"]
    assert listed[1] == changed.json()


def test_another_account_s_number_is_unknown_and_cannot_be_taken(
    api: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    put = send(api, acme, "PUT", "/vm/service_numbers", {"service_number": globex.number})
    assert error(put, 404)["err_code"] == "unknown_number"
    taken = send(
        api,
        acme,
        "POST",
        "/vm/service_numbers",
        {"service_number": globex.number, "id_group": acme.id_group},
    )
    error(taken, 409)
    theirs = send(api, globex, "GET", "/vm/service_numbers").json()["service_numbers"]
    assert [(n["service_number"], n["state"]) for n in theirs] == [(globex.number, "active")]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("POST", {"service_number": "33170200300"}),  # no group
        ("POST", {"service_number": "33170200300", "id_group": 1, "state": "closed"}),
        ("POST", {"service_number": "33170200300", "id_group": "1"}),
        ("POST", {"service_number": "12", "id_group": 1}),
        ("POST", {"service_number": "33170200300", "id_group": 0}),
        ("POST", {"service_number": "33170200300", "id_group": 1, "record": "yes"}),
        ("POST", {"service_number": "33170200300", "id_group": 1, "record": 1}),
        ("POST", {"service_number": "3" * 40, "id_group": 1}),
        ("PUT", {"state": "suspended"}),
        ("PUT", {"service_number": "33170200200", "state": "SUSPENDED"}),
        ("PUT", {"service_number": "33170200200", "record": None, "extra": 1}),
        ("PUT", {"service_number": "33170200200", "label": "x" * 201}),
        ("PUT", ["33170200200"]),
    ],
)
def test_bad_number_requests_are_400_and_change_nothing(
    api: LiveServer, acme: SeededAccount, method: str, body: Any
) -> None:
    error(send(api, acme, method, "/vm/service_numbers", body), 400)
    listed = send(api, acme, "GET", "/vm/service_numbers").json()["service_numbers"]
    assert [(n["service_number"], n["state"], n["record"]) for n in listed] == [
        (acme.number, "active", False)
    ]


def test_a_number_of_another_group_than_the_account_s_is_400(
    api: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    body = {"service_number": "33170200300", "id_group": globex.id_group}
    error(send(api, acme, "POST", "/vm/service_numbers", body), 400)


def place_call(server: LiveServer, account: SeededAccount, **body: Any) -> str:
    payload = {"from": "33612345678", "to": account.number, **body}
    answer = send(server, account, "POST", "/api/v1/sim/calls", payload)
    assert answer.status_code == 201, answer.text
    call_id: str = answer.json()["id_call"]
    return call_id


def live_calls(server: LiveServer, account: SeededAccount) -> list[str]:
    live = server.call_soon(lambda c: c.routing.snapshot(account.id))
    return [c["id_call"] for c in live["calls"]]


def test_a_suspended_number_takes_no_call_until_it_is_active_again(
    api: LiveServer, acme: SeededAccount
) -> None:
    suspend = {"service_number": acme.number, "state": "suspended"}
    assert send(api, acme, "PUT", "/vm/service_numbers", suspend).status_code == 200
    refused = place_call(api, acme)
    time.sleep(0.3)  # the switch has long reported the call by now
    assert refused not in live_calls(api, acme)
    week = around_now()
    assert refused not in str(send(api, acme, "POST", "/vm/calls/in", week).json())
    resume = {"service_number": acme.number, "state": "active"}
    assert send(api, acme, "PUT", "/vm/service_numbers", resume).status_code == 200
    taken = place_call(api, acme)
    eventually(lambda: taken in live_calls(api, acme))


# IVR variables


def test_variables_of_ended_calls_in_the_order_asked(api: LiveServer, acme: SeededAccount) -> None:
    answer = send(api, acme, "GET", "/voice-management/variables?call_ids=c-in-2,c-in-1,c-in-2")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "calls": [
            {
                "id_appel": "c-in-2",
                "variables": {"order_number": "654321", "langue": "fr"},
                "live": False,
            },
            {"id_appel": "c-in-1", "variables": {"order_number": "123456"}, "live": False},
        ]
    }
    repeated = send(api, acme, "GET", "/voice-management/variables?call_ids=c-in-1&call_ids=c-in-2")
    assert [c["id_appel"] for c in repeated.json()["calls"]] == ["c-in-1", "c-in-2"]
    as_object = send(api, acme, "POST", "/voice-management/variables", {"call_ids": ["c-out-1"]})
    assert as_object.json() == {"calls": [{"id_appel": "c-out-1", "variables": {}, "live": False}]}


def test_variables_of_unknown_or_another_account_s_calls_are_404(
    api: LiveServer, acme: SeededAccount
) -> None:
    for ids in (["g-in-1"], ["c-in-1", "nope"], ["c-in-1", "g-in-1"]):
        answer = send(api, acme, "POST", "/voice-management/variables", ids)
        body = error(answer, 404)
        assert body["err_code"] == "unknown_call"
        assert body["details"]["unknown"] == [i for i in ids if i != "c-in-1"]
        assert "globex" not in answer.text


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"call_ids": []},
        [f"c-{n}" for n in range(101)],
        ["x" * 41],
        [""],
        [1, 2],
        {"call_ids": "c-in-1"},
        {"ids": ["c-in-1"]},
        "c-in-1",
        None,
    ],
)
def test_bad_lists_of_ids_are_400(api: LiveServer, acme: SeededAccount, body: Any) -> None:
    error(send(api, acme, "POST", "/voice-management/variables", body), 400)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?call_ids=",
        "?call_ids=,,,",
        "?call_ids=" + ",".join(["a"] * 101),
        "?call_ids=" + "x" * 41,
    ],
)
def test_bad_queries_of_ids_are_400(api: LiveServer, acme: SeededAccount, query: str) -> None:
    error(send(api, acme, "GET", "/voice-management/variables" + query), 400)


def test_an_oversized_query_is_refused_not_served(api: LiveServer, acme: SeededAccount) -> None:
    answer = send(api, acme, "GET", "/voice-management/variables?call_ids=" + "a," * 20_000)
    assert answer.status_code in (400, 414, 431)


# records of real calls


def test_a_real_call_s_record_carries_the_ivr_time_its_variables_and_the_wrap_up(
    api: LiveServer, acme: SeededAccount
) -> None:
    ivr = {
        "start": "order",
        "steps": {
            "order": {
                "type": "collect",
                "prompt": {"text": "Your order number, then hash"},
                "variable": "order_number",
                "min_length": 6,
                "max_length": 10,
                "next": {"group": acme.id_group},
            }
        },
    }
    with api.client(auth=acme.auth) as client:
        assert client.patch(f"/api/v1/numbers/{acme.number}", json={"ivr": ivr}).is_success
        settings = {"settings": {"wrap_up": 7}}
        assert client.patch(f"/api/v1/groups/{acme.id_group}", json=settings).is_success
        token = client.post("/vm/token", json={"id_agent": acme.id_agent}).json()["token"]
    with api.client(headers={"Authorization": f"Bearer {token}"}) as ana:
        assert ana.put("/api/v1/me/status", json={"status": "online"}).is_success
        call_id = place_call(api, acme, dtmf="123456#")

        def ringing() -> bool:
            return any(
                acme.id_agent in c["ringing"] for c in ana.get("/api/v1/me/state").json()["calls"]
            )

        eventually(ringing)
        live = send(api, acme, "GET", f"/voice-management/variables?call_ids={call_id}").json()
        assert live["calls"] == [
            {"id_appel": call_id, "variables": {"order_number": "123456"}, "live": True}
        ]
        assert ana.post(f"/api/v1/me/calls/{call_id}/answer").is_success
        assert ana.post(f"/api/v1/me/calls/{call_id}/hangup").is_success
    week = around_now()

    def recorded() -> dict[str, Any] | None:
        calls = send(api, acme, "POST", "/vm/calls/in", week).json()["calls"]
        return next((c for c in calls if c["id_appel"] == call_id), None)

    call = eventually(recorded)
    assert call["outcome"] == "answered"
    assert call["post_appel"] == 7.0
    assert call["duration_svi"] > 0
    assert call["id_op"] == acme.id_agent
    ended = send(api, acme, "POST", "/voice-management/variables", [call_id]).json()
    assert ended["calls"] == [
        {"id_appel": call_id, "variables": {"order_number": "123456"}, "live": False}
    ]


def test_an_unanswered_call_has_no_wrap_up(api: LiveServer, acme: SeededAccount) -> None:
    call_id = place_call(api, acme, hangup_after=0.2)
    week = around_now()

    def recorded() -> dict[str, Any] | None:
        calls = send(api, acme, "POST", "/vm/calls/in", week).json()["calls"]
        return next((c for c in calls if c["id_appel"] == call_id), None)

    call = eventually(recorded)
    assert (call["outcome"], call["post_appel"], call["duration_comm"]) == ("abandoned", 0.0, 0.0)
