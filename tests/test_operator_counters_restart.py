"""Per-operator counters survive a restart on the same database: ``calls_taken`` (what
``fewest_calls`` orders by) and round robin's turn come back from today's call records."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.platform_support import record, store
from tests.support import LiveServer, SeededAccount, live_server, make_settings, seed_two_accounts
from tests.test_calls_api import FAST, Operator, eventually, place_call, record_of, token_for
from voicemgmt.config import Settings


def take_a_call(server: LiveServer, acme: SeededAccount, operator: Operator) -> None:
    call_id = place_call(server, acme)
    assert operator.ringing_call() == call_id
    assert operator.act(call_id, "answer").status_code == 200
    assert operator.act(call_id, "hangup").status_code == 200
    assert record_of(server, acme, call_id)["id_op"] == operator.id
    eventually(lambda: operator.state()["operator"]["status"] == "online")


def live_operators(server: LiveServer, acme: SeededAccount) -> dict[int, dict[str, Any]]:
    token = token_for(server, acme, id_admin=acme.id_admin)
    with server.client(headers={"Authorization": f"Bearer {token}"}) as client:
        answer = client.get("/api/v1/supervision/live")
    assert answer.status_code == 200, answer.text
    return {o["id_op"]: o for o in answer.json()["operators"]}


def first_day(settings: Settings, acme: SeededAccount, strategy: str) -> None:
    """Ana takes two calls while Bob is away; then the server stops."""
    with live_server(settings) as server:
        with server.client() as client:
            answer = client.patch(
                f"/api/v1/groups/{acme.id_group}",
                auth=acme.auth,
                json={"settings": {"strategy": strategy, "wrap_up": 0}},
            )
            assert answer.status_code == 200, answer.text
            answer = client.patch(  # Bob in Ana's tier: the strategy alone decides
                f"/api/v1/operators/{acme.other_id_agent}",
                auth=acme.auth,
                json={"groups": [{"id_group": acme.id_group, "priority": 1}]},
            )
            assert answer.status_code == 200, answer.text
        ana = Operator(server, acme, acme.id_agent)
        with ana.http:
            assert ana.status("online").status_code == 200
            take_a_call(server, acme, ana)
            take_a_call(server, acme, ana)
        before = live_operators(server, acme)
    assert before[acme.id_agent]["calls_taken"] == 2
    assert before[acme.other_id_agent]["calls_taken"] == 0


@pytest.mark.parametrize("strategy", ["fewest_calls", "round_robin"])
def test_after_a_restart_the_next_call_goes_to_whose_turn_it_was(
    tmp_path: Path, strategy: str
) -> None:
    settings = make_settings(tmp_path, **FAST)
    acme, _globex = seed_two_accounts(settings)
    first_day(settings, acme, strategy)
    with live_server(settings) as server:  # the same SQLite file
        after = live_operators(server, acme)
        assert after[acme.id_agent]["calls_taken"] == 2
        assert after[acme.id_agent]["status"] == "online"  # her status came back too
        assert after[acme.other_id_agent]["calls_taken"] == 0
        bob = Operator(server, acme, acme.other_id_agent)
        with bob.http:
            time.sleep(0.05)  # Bob now idle for less time than Ana: longest idle picks Ana
            assert bob.status("online").status_code == 200
            call_id = place_call(server, acme)
            assert bob.ringing_call() == call_id  # Ana took today's calls: Bob's turn
            ringing = next(c for c in bob.state()["calls"] if c["id_call"] == call_id)["ringing"]
            assert acme.id_agent not in ringing


def test_calls_of_earlier_days_are_not_counted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **FAST)
    acme, _globex = seed_two_accounts(settings)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    start = yesterday.replace(hour=12, minute=0, second=0, microsecond=0).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    with live_server(settings) as server:
        store(server, acme, record("old-1", start, id_op=acme.id_agent))
    with live_server(settings) as server:
        assert live_operators(server, acme)[acme.id_agent]["calls_taken"] == 0
