"""The order of events on the public stream when one step ends a call and starts the next."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection

from tests.support import LiveServer, SeededAccount, live_server, make_settings, token_for
from tests.test_calls_api import FAST, Operator, events, place_call
from voicemgmt.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "", **FAST)


@pytest.fixture
def calls_server(
    settings: Settings, seeded: tuple[SeededAccount, SeededAccount]
) -> Iterator[LiveServer]:
    with live_server(settings) as running:
        yield running


def frames_until(
    ws: ClientConnection, kind: str, id_call: str, timeout: float = 10.0
) -> list[tuple[str, str | None]]:
    """Read frames up to the event ``kind`` of call ``id_call``: their (kind, call) in order."""
    seen: list[tuple[str, str | None]] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        data = frame.get("data", {})
        call = data.get("id_call") or data.get("record", {}).get("id_call")
        seen.append((frame["kind"], call))
        if (frame["kind"], call) == (kind, id_call):
            return seen


def test_with_no_wrap_up_the_end_of_a_call_comes_before_the_offer_of_the_next(
    calls_server: LiveServer, acme: SeededAccount
) -> None:
    with calls_server.client() as client:
        answer = client.patch(
            f"/api/v1/groups/{acme.id_group}", auth=acme.auth, json={"settings": {"wrap_up": 0}}
        )
    assert answer.status_code == 200, answer.text
    ana = Operator(calls_server, acme, acme.id_agent)
    supervisor = token_for(calls_server, acme, id_admin=acme.id_admin)
    try:
        assert ana.status("online").status_code == 200
        first = place_call(calls_server, acme)
        assert ana.ringing_call() == first
        assert ana.act(first, "answer").status_code == 200
        with events(calls_server, ana.token) as mine, events(calls_server, supervisor) as account:
            assert json.loads(mine.recv(timeout=5))["kind"] == "hello"
            assert json.loads(account.recv(timeout=5))["kind"] == "hello"
            second = place_call(calls_server, acme, **{"from": "33698765432"})
            frames_until(account, "call.queued", second)  # waiting: Ana is in the first call
            assert ana.act(first, "hangup").status_code == 200
            for stream in (mine, account):
                seen = frames_until(stream, "call.offered", second)
                assert ("call.ended", first) in seen, seen
                assert seen.index(("call.ended", first)) < seen.index(("call.offered", second))
    finally:
        ana.http.close()


def test_an_operator_hears_the_end_of_their_click_to_call_even_unanswered(
    calls_server: LiveServer, acme: SeededAccount
) -> None:
    ana = Operator(calls_server, acme, acme.id_agent)
    try:
        assert ana.status("online").status_code == 200
        with events(calls_server, ana.token) as mine:
            assert json.loads(mine.recv(timeout=5))["kind"] == "hello"
            placed = ana.http.post("/api/v1/me/calls", json={"to": "33618220000"})
            assert placed.status_code == 201, placed.text
            call_id = placed.json()["id_call"]
            frames_until(mine, "call.outbound", call_id)
            assert ana.act(call_id, "hangup").status_code == 200  # before picking up
            seen = frames_until(mine, "call.ended", call_id)
        assert ("call.ended", call_id) in seen
        recent = ana.http.get("/api/v1/me/calls", params={"kind": "recent"}).json()["items"]
        assert [(r["id_call"], r["outcome"]) for r in recent] == [(call_id, "abandoned")]
    finally:
        ana.http.close()
