"""Calls end to end: simulated switch → routing → call-control API and event stream → records."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support import LiveServer, SeededAccount, live_server, make_settings
from voicemgmt.adapters.events.memory import InMemoryEventBus
from voicemgmt.config import Settings
from voicemgmt.web import events_ws

FAST: dict[str, Any] = {
    "sim_prompt_seconds": 0.05,
    "sim_digit_interval": 0.01,
    "sim_customer_answer_after": 0.05,
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "", **FAST)


@pytest.fixture
def calls_server(
    settings: Settings, seeded: tuple[SeededAccount, SeededAccount]
) -> Iterator[LiveServer]:
    with live_server(settings) as running:
        yield running


@pytest.fixture
def operator(calls_server: LiveServer) -> Iterator[Callable[[SeededAccount, int], Operator]]:
    """Operators acting through the API; their HTTP clients are closed after the test."""
    made: list[Operator] = []

    def make(account: SeededAccount, id_agent: int) -> Operator:
        made.append(Operator(calls_server, account, id_agent))
        return made[-1]

    yield make
    for person in made:
        person.http.close()


OperatorFactory = Callable[[SeededAccount, int], "Operator"]


def token_for(server: LiveServer, account: SeededAccount, **who: int) -> str:
    with server.client() as client:
        answer = client.post("/vm/token", auth=account.auth, json=who)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class Operator:
    """An operator acting through the call-control API with their session token."""

    def __init__(self, server: LiveServer, account: SeededAccount, id_agent: int) -> None:
        self.server, self.id = server, id_agent
        self.token = token_for(server, account, id_agent=id_agent)
        self.http = server.client(headers=bearer(self.token))

    def status(self, status: str) -> httpx.Response:
        return self.http.put("/api/v1/me/status", json={"status": status})

    def state(self) -> dict[str, Any]:
        answer = self.http.get("/api/v1/me/state")
        assert answer.status_code == 200, answer.text
        state: dict[str, Any] = answer.json()
        return state

    def ringing_call(self) -> str:
        def ringing() -> str | None:
            calls = self.state()["calls"]
            found = [c["id_call"] for c in calls if self.id in c["ringing"]]
            return found[0] if found else None

        call_id: str = eventually(ringing)
        return call_id

    def act(self, call_id: str, action: str, **body: Any) -> httpx.Response:
        return self.http.post(f"/api/v1/me/calls/{call_id}/{action}", json=body or None)


def place_call(server: LiveServer, account: SeededAccount, **body: Any) -> str:
    payload = {"from": "33612345678", "to": account.number, **body}
    with server.client() as client:
        answer = client.post("/api/v1/sim/calls", auth=account.auth, json=payload)
    assert answer.status_code == 201, answer.text
    call_id: str = answer.json()["id_call"]
    return call_id


def record_of(server: LiveServer, account: SeededAccount, call_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        with server.client() as client:
            items = client.get("/api/v1/call-records", auth=account.auth).json()["items"]
        return next((r for r in items if r["id_call"] == call_id), None)

    found: dict[str, Any] = eventually(find)
    return found


def events(server: LiveServer, token: str, after: int | None = None) -> ClientConnection:
    query = f"token_session={token}" + (f"&after={after}" if after is not None else "")
    return connect(f"ws://127.0.0.1:{server.port}/vm/events?{query}", open_timeout=5)


def next_event(ws: ClientConnection, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if frame["kind"] == kind:
            event: dict[str, Any] = frame
            return event


def drain_until_closed(ws: ClientConnection) -> ConnectionClosed:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=2)
        except ConnectionClosed as closed:
            return closed
    raise AssertionError("the stream stayed open")


# the basic path


def test_a_simulated_call_is_answered_hung_up_and_recorded(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    assert ana.status("online").status_code == 200
    call_id = place_call(calls_server, acme)
    assert ana.ringing_call() == call_id
    assert ana.act(call_id, "answer").status_code == 200
    assert ana.state()["operator"]["status"] == "busy"
    time.sleep(0.1)
    assert ana.act(call_id, "hangup").status_code == 200
    record = record_of(calls_server, acme, call_id)
    assert (record["outcome"], record["id_op"], record["ended_by"]) == (
        "answered",
        acme.id_agent,
        "operator",
    )
    assert (record["caller_number"], record["service_number"]) == ("33612345678", acme.number)
    assert record["duration_comm"] >= 0.1
    with calls_server.client() as client:
        figures = client.get("/api/v1/figures", auth=acme.auth).json()
    total = figures["groups"][-1]
    assert (total["offered"], total["answered"]) == (1, 1)


def test_the_operator_sees_the_call_arrive_on_the_event_stream(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    ana.status("online")
    with events(calls_server, ana.token) as ws:
        assert json.loads(ws.recv(timeout=5))["kind"] == "hello"
        call_id = place_call(calls_server, acme, **{"from": "+33 6 12 34 56 78"})
        offered = next_event(ws, "call.offered")
        assert offered["data"] == {
            "id_call": call_id,
            "id_op": acme.id_agent,
            "id_group": acme.id_group,
            "caller_id_num": "33612345678",
            "e164_in": acme.number,
            "wait": 0,
            "variables": {},
            "display": {"caller_id_num": "+33 6 12 34 56 78", "e164_in": "+33 1 70 20 02 00"},
        }
        ana.act(call_id, "answer")
        assert next_event(ws, "call.answered")["data"]["id_op"] == acme.id_agent
        ana.act(call_id, "hangup")
        ended = next_event(ws, "call.ended")
        assert ended["data"]["record"]["outcome"] == "answered"


def test_a_dropped_stream_resumes_without_losing_or_repeating_events(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    ana.status("online")
    with events(calls_server, ana.token) as ws:
        ws.recv(timeout=5)
        call_id = place_call(calls_server, acme)
        last_seen = next_event(ws, "call.offered")["seq"]
    # While disconnected, the call is answered and ends.
    ana.act(call_id, "answer")
    ana.act(call_id, "hangup")
    record_of(calls_server, acme, call_id)
    with events(calls_server, ana.token, after=last_seen) as ws:
        ws.recv(timeout=5)
        replayed: list[dict[str, Any]] = []
        while not replayed or replayed[-1]["kind"] != "call.ended":
            replayed.append(json.loads(ws.recv(timeout=5)))
    seqs = [e["seq"] for e in replayed]
    assert seqs == sorted(set(seqs))
    assert all(s > last_seen for s in seqs)
    assert [e["kind"] for e in replayed if e["kind"].startswith("call.")] == [
        "call.answered",
        "call.ended",
    ]


def test_an_operator_sees_only_their_own_calls(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    bob = operator(acme, acme.other_id_agent)
    bob.status("online")
    with events(calls_server, ana.token) as ws:
        ws.recv(timeout=5)
        call_id = place_call(calls_server, acme)
        assert bob.ringing_call() == call_id
        bob.act(call_id, "decline")
        ana.status("break")
        status = next_event(ws, "operator.status")
        assert status["data"]["id_op"] == acme.id_agent
        with pytest.raises(TimeoutError):
            next_event(ws, "call.offered", timeout=0.5)


def test_a_supervisor_forces_a_status_and_the_operator_follows(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    ana.status("online")
    supervisor = token_for(calls_server, acme, id_admin=acme.id_admin)
    with events(calls_server, ana.token) as ws, calls_server.client() as client:
        ws.recv(timeout=5)
        answer = client.put(
            f"/api/v1/supervision/operators/{acme.id_agent}/status",
            json={"status": "break"},
            headers=bearer(supervisor),
        )
        assert answer.status_code == 200
        status = next_event(ws, "operator.status")
        assert (status["data"]["presence"], status["data"]["reason"]) == ("break", "supervisor")
        live = client.get("/api/v1/supervision/live", headers=bearer(supervisor)).json()
    mine = next(o for o in live["operators"] if o["id_op"] == acme.id_agent)
    assert mine["status"] == "break"


def test_deleting_the_token_closes_the_stream(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    with events(calls_server, ana.token) as ws:
        ws.recv(timeout=5)
        with calls_server.client() as client:
            client.delete(f"/vm/token/{ana.token}", auth=acme.auth)
        closed = drain_until_closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4401


def test_an_idle_stream_gets_a_ping_and_events_still_follow(
    calls_server: LiveServer,
    operator: OperatorFactory,
    acme: SeededAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events_ws, "HEARTBEAT_SECONDS", 0.3)
    ana = operator(acme, acme.id_agent)
    with events(calls_server, ana.token) as ws:
        ws.recv(timeout=5)
        started = time.monotonic()
        assert json.loads(ws.recv(timeout=5)) == {"kind": "ping"}
        assert time.monotonic() - started >= 0.25
        ana.status("online")
        assert next_event(ws, "operator.status")["data"]["id_op"] == acme.id_agent


def test_a_client_that_leaves_releases_its_subscription(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    bus = calls_server.container.bus
    assert isinstance(bus, InMemoryEventBus)
    before = bus.subscriber_count()
    with events(calls_server, ana.token) as ws:
        ws.recv(timeout=5)
        assert bus.subscriber_count() == before + 1
    deadline = time.monotonic() + 5
    while bus.subscriber_count() != before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bus.subscriber_count() == before


def test_a_stream_with_a_bad_token_is_refused(calls_server: LiveServer) -> None:
    with events(calls_server, "vm_" + "x" * 43) as ws:
        closed = drain_until_closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4401


# click-to-call, IVR, hold and transfer


def test_click_to_call_with_a_ticket(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    ana.status("online")
    answer = ana.http.post(
        "/api/v1/me/calls", json={"to": "+33 6 18 22 00 00", "ticket_id": "T-42"}
    )
    assert answer.status_code == 201, answer.text
    call_id = answer.json()["id_call"]
    assert ana.act(call_id, "answer").status_code == 200  # the operator's own leg
    eventually(lambda: ana.state()["calls"] and ana.state()["calls"][0]["state"] == "connected")
    ana.act(call_id, "hangup")
    record = record_of(calls_server, acme, call_id)
    assert (record["direction"], record["outcome"], record["ticket_id"]) == (
        "out",
        "answered",
        "T-42",
    )
    assert record["service_number"] == "33618220000"


def test_a_number_with_an_ivr_collects_an_order_number(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
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
    with calls_server.client() as client:
        answer = client.patch(f"/api/v1/numbers/{acme.number}", auth=acme.auth, json={"ivr": ivr})
        assert answer.status_code == 200, answer.text
    ana = operator(acme, acme.id_agent)
    ana.status("online")
    with events(calls_server, ana.token) as ws:
        ws.recv(timeout=5)
        call_id = place_call(calls_server, acme, dtmf="123456#")
        offered = next_event(ws, "call.offered")
    assert offered["data"]["variables"] == {"order_number": "123456"}
    ana.act(call_id, "answer")
    ana.act(call_id, "hangup")
    record = record_of(calls_server, acme, call_id)
    assert record["variables"] == {"order_number": "123456"}
    assert record["duration_svi"] > 0


def test_hold_and_transfer_to_a_colleague(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    bob = operator(acme, acme.other_id_agent)
    ana.status("online")
    call_id = place_call(calls_server, acme)
    ana.act(call_id, "answer")
    assert ana.act(call_id, "hold").status_code == 200
    assert ana.act(call_id, "unhold").status_code == 200
    bob.status("online")
    assert ana.act(call_id, "transfer", id_op=acme.other_id_agent).status_code == 200
    assert bob.ringing_call() == call_id
    bob.act(call_id, "answer")
    bob.act(call_id, "hangup")
    record = record_of(calls_server, acme, call_id)
    assert (record["id_op"], record["outcome"]) == (acme.other_id_agent, "answered")


def test_the_caller_hangs_up_while_waiting(calls_server: LiveServer, acme: SeededAccount) -> None:
    call_id = place_call(calls_server, acme, hangup_after=0.2)
    record = record_of(calls_server, acme, call_id)
    assert (record["outcome"], record["ended_by"]) == ("abandoned", "caller")


# bad input


def test_acting_on_a_call_that_is_not_yours(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    bob = operator(acme, acme.other_id_agent)
    ana.status("online")
    call_id = place_call(calls_server, acme)
    ana.ringing_call()
    wrong = bob.act(call_id, "answer")
    assert (wrong.status_code, wrong.json()["err_code"]) == (409, "invalid_call_action")
    unknown = ana.act("nosuchcall", "answer")
    assert (unknown.status_code, unknown.json()["err_code"]) == (404, "unknown_call")
    hostile = ana.act("..%2F..", "answer")
    assert hostile.status_code in (400, 404)


@pytest.mark.parametrize(
    "body",
    [{"status": "away"}, {"status": 1}, {}, {"status": "online", "x": 1}],
    ids=["unknown status", "wrong type", "empty", "extra field"],
)
def test_a_bad_status_is_400(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount, body: dict[str, Any]
) -> None:
    ana = operator(acme, acme.id_agent)
    answer = ana.http.put("/api/v1/me/status", json=body)
    assert answer.status_code == 400
    assert ana.state()["operator"]["status"] == "offline"


def test_roles_are_kept_apart(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    supervisor = token_for(calls_server, acme, id_admin=acme.id_admin)
    with calls_server.client() as client:
        assert client.get("/api/v1/supervision/live", headers=bearer(ana.token)).status_code == 403
        assert (
            client.put(
                "/api/v1/me/status", json={"status": "online"}, headers=bearer(supervisor)
            ).status_code
            == 403
        )
        assert client.get("/api/v1/me/state").status_code == 401


def test_a_supervisor_cannot_touch_another_accounts_operator(
    calls_server: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    supervisor = token_for(calls_server, acme, id_admin=acme.id_admin)
    with calls_server.client() as client:
        answer = client.put(
            f"/api/v1/supervision/operators/{globex.id_agent}/status",
            json={"status": "online"},
            headers=bearer(supervisor),
        )
    assert (answer.status_code, answer.json()["err_code"]) == (404, "unknown_operator")


def test_simulated_calls_only_to_ones_own_numbers(
    calls_server: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    with calls_server.client() as client:
        answer = client.post(
            "/api/v1/sim/calls", auth=acme.auth, json={"from": "33612345678", "to": globex.number}
        )
        bad = client.post(
            "/api/v1/sim/calls", auth=acme.auth, json={"from": "x", "to": acme.number}
        )
        dtmf = client.post(
            "/api/v1/sim/calls",
            auth=acme.auth,
            json={"from": "33612345678", "to": acme.number, "dtmf": "<script>"},
        )
    assert (answer.status_code, answer.json()["err_code"]) == (404, "unknown_number")
    assert bad.status_code == 400
    assert dtmf.status_code == 400


def test_click_to_call_to_a_bad_number_is_400(
    calls_server: LiveServer, operator: OperatorFactory, acme: SeededAccount
) -> None:
    ana = operator(acme, acme.id_agent)
    ana.status("online")
    answer = ana.http.post("/api/v1/me/calls", json={"to": "not a number"})
    assert (answer.status_code, answer.json()["err_code"]) == (400, "invalid_phone_number")


def test_call_record_queries_are_checked(calls_server: LiveServer, acme: SeededAccount) -> None:
    with calls_server.client() as client:
        too_long = client.get(
            "/api/v1/call-records",
            auth=acme.auth,
            params={"since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
        )
        reversed_window = client.get(
            "/api/v1/call-records",
            auth=acme.auth,
            params={"since": "2026-03-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        )
        csv = client.get("/api/v1/call-records", auth=acme.auth, params={"format": "csv"})
    assert too_long.status_code == 400
    assert reversed_window.status_code == 400
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("id_call,")


# IVR scripts on numbers


def _menu_to(group_id: int) -> dict[str, Any]:
    return {
        "start": "m",
        "steps": {"m": {"type": "menu", "options": {"1": {"group": group_id}}}},
    }


@pytest.mark.parametrize(
    ("ivr", "fragment"),
    [
        ({"start": "x", "steps": {}}, "step"),
        ({"start": "m", "steps": {"m": {"type": "dance"}}}, "type"),
        ({"start": "m", "steps": {"m": {"type": "play", "prompt": {"text": "x"}}}}, "next"),
    ],
    ids=["no steps", "unknown type", "missing next"],
)
def test_a_bad_ivr_is_refused(
    calls_server: LiveServer, acme: SeededAccount, ivr: dict[str, Any], fragment: str
) -> None:
    with calls_server.client() as client:
        answer = client.patch(f"/api/v1/numbers/{acme.number}", auth=acme.auth, json={"ivr": ivr})
        kept = client.get(f"/api/v1/numbers/{acme.number}", auth=acme.auth).json()
    assert answer.status_code == 400
    assert fragment in answer.json()["err_msg"] + json.dumps(answer.json().get("details", {}))
    assert kept["ivr"] is None


def test_an_ivr_cannot_send_callers_to_another_accounts_group(
    calls_server: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    with calls_server.client() as client:
        answer = client.patch(
            f"/api/v1/numbers/{acme.number}",
            auth=acme.auth,
            json={"ivr": _menu_to(globex.id_group)},
        )
    assert (answer.status_code, answer.json()["details"]["field"]) == (400, "ivr")


def test_a_group_an_ivr_sends_callers_to_cannot_be_deleted(
    calls_server: LiveServer, acme: SeededAccount
) -> None:
    with calls_server.client() as client:
        sales = client.post("/api/v1/groups", auth=acme.auth, json={"name": "Sales"}).json()
        client.patch(
            f"/api/v1/numbers/{acme.number}",
            auth=acme.auth,
            json={"ivr": _menu_to(sales["id_group"])},
        )
        refused = client.delete(f"/api/v1/groups/{sales['id_group']}", auth=acme.auth)
        client.patch(f"/api/v1/numbers/{acme.number}", auth=acme.auth, json={"ivr": None})
        allowed = client.delete(f"/api/v1/groups/{sales['id_group']}", auth=acme.auth)
    assert (refused.status_code, refused.json()["err_code"]) == (409, "group_in_use")
    assert allowed.status_code == 204


def test_a_form_encoded_body_is_415(calls_server: LiveServer, acme: SeededAccount) -> None:
    with calls_server.client() as client:
        answer = client.post(
            "/api/v1/sim/calls",
            auth=acme.auth,
            content=b"from=33612345678&to=33170200200",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert (answer.status_code, answer.json()["err_code"]) == (415, "unsupported_media_type")


def test_the_supervisor_sees_the_queues(
    calls_server: LiveServer, acme: SeededAccount, operator: OperatorFactory
) -> None:
    ana = operator(acme, acme.id_agent)
    ana.status("break")
    supervisor = token_for(calls_server, acme, id_admin=acme.id_admin)
    place_call(calls_server, acme)
    place_call(calls_server, acme)
    time.sleep(1.1)
    with calls_server.client() as client:
        live = client.get("/api/v1/supervision/live", headers=bearer(supervisor)).json()
    (queue,) = [q for q in live["queues"] if q["id_group"] == acme.id_group]
    assert (queue["waiting"], queue["longest_wait"] >= 1) == (2, True)
    assert queue["operators"] == {"offline": 1, "online": 0, "busy": 0, "break": 1}


def test_calls_in_progress_get_a_record_when_the_server_stops(
    tmp_path: Path, seeded: tuple[SeededAccount, SeededAccount], settings: Settings
) -> None:
    acme = seeded[0]
    with live_server(settings) as server:
        call_id = place_call(server, acme)
        time.sleep(0.2)
    with live_server(settings) as server:
        record = record_of(server, acme, call_id)
    assert (record["outcome"], record["disconnect_reason"]) == ("failed", "platform_shutdown")
