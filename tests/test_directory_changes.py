"""Changes to the directory reach a running server: its routing core, its session and account
caches. Through the admin API they apply at once; made by another process (the CLI), they
apply at the next use that needs them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    LiveServer,
    SeededAccount,
    live_server,
    make_settings,
    run_on,
    token_for,
)
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings
from voicemgmt.domain.directory import Membership


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "", sim_prompt_seconds=0.05, sim_customer_answer_after=0.05)


@pytest.fixture
def app(settings: Settings, seeded: tuple[SeededAccount, SeededAccount]) -> Iterator[LiveServer]:
    with live_server(settings) as running:
        yield running


def as_user(server: LiveServer, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    with server.client() as client:
        return client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)


def warm_up(server: LiveServer, account: SeededAccount) -> None:
    """Make the server build the account's routing core before the change."""
    ana = token_for(server, account, id_agent=account.id_agent)
    assert as_user(server, ana, "GET", "/api/v1/me/state").status_code == 200


def test_an_operator_added_through_the_api_takes_calls_at_once(
    app: LiveServer, acme: SeededAccount
) -> None:
    warm_up(app, acme)
    with app.client() as client:
        created = client.post(
            "/api/v1/operators",
            auth=acme.auth,
            json={
                "name": "Cleo",
                "email": "cleo@acme.example",
                "groups": [{"id_group": acme.id_group}],
            },
        )
    assert created.status_code == 201, created.text
    cleo = token_for(app, acme, id_agent=created.json()["id_agent"])
    answer = as_user(app, cleo, "PUT", "/api/v1/me/status", json={"status": "online"})
    assert answer.status_code == 200, answer.text
    with app.client() as client:
        client.post(
            "/api/v1/sim/calls", auth=acme.auth, json={"from": "33612345678", "to": acme.number}
        )
    state = as_user(app, cleo, "GET", "/api/v1/me/state").json()
    assert [c["ringing"] for c in state["calls"]] == [[created.json()["id_agent"]]]


def test_an_operator_added_by_another_process_is_found_when_first_needed(
    app: LiveServer, acme: SeededAccount, settings: Settings
) -> None:
    warm_up(app, acme)

    async def add_dana(container: Container) -> int:
        dana = await container.directory.create_operator(
            acme.id,
            name="Dana",
            email="dana@acme.example",
            memberships=[Membership(acme.id_group, 1)],
        )
        return dana.id

    dana_id = run_on(settings, add_dana)  # like the CLI: another container, the same database
    dana = token_for(app, acme, id_agent=dana_id)
    answer = as_user(app, dana, "PUT", "/api/v1/me/status", json={"status": "online"})
    assert answer.status_code == 200, answer.text


def test_a_groups_new_routing_settings_apply_without_a_restart(
    app: LiveServer, acme: SeededAccount
) -> None:
    warm_up(app, acme)
    with app.client() as client:
        patched = client.patch(
            f"/api/v1/groups/{acme.id_group}",
            auth=acme.auth,
            json={"settings": {"ring_timeout": 1, "max_no_answer": 1}},
        )
        assert patched.status_code == 200
    ana = token_for(app, acme, id_agent=acme.id_agent)
    as_user(app, ana, "PUT", "/api/v1/me/status", json={"status": "online"})
    with app.client() as client:
        client.post(
            "/api/v1/sim/calls", auth=acme.auth, json={"from": "33612345678", "to": acme.number}
        )
    deadline = time.monotonic() + 10
    while as_user(app, ana, "GET", "/api/v1/me/state").json()["operator"]["presence"] != "break":
        assert time.monotonic() < deadline, "the 1 s ring timeout did not apply"
        time.sleep(0.1)


def test_a_deleted_operators_token_stops_working_at_once(
    app: LiveServer, acme: SeededAccount
) -> None:
    bob = token_for(app, acme, id_agent=acme.other_id_agent)
    assert as_user(app, bob, "GET", "/vm/me").status_code == 200  # now known to the server
    with app.client() as client:
        deleted = client.delete(f"/api/v1/operators/{acme.other_id_agent}", auth=acme.auth)
    assert deleted.status_code == 204
    assert as_user(app, bob, "GET", "/vm/me").status_code == 401


def test_a_revoked_token_stops_working_at_once(app: LiveServer, acme: SeededAccount) -> None:
    ana = token_for(app, acme, id_agent=acme.id_agent)
    assert as_user(app, ana, "GET", "/api/v1/me/state").status_code == 200
    with app.client() as client:
        client.request("DELETE", f"/vm/token/{ana}", auth=acme.auth)
    assert as_user(app, ana, "GET", "/api/v1/me/state").status_code == 401


def test_a_new_api_password_applies_at_once(app: LiveServer, acme: SeededAccount) -> None:
    with app.client() as client:
        assert client.get("/api/v1/account", auth=acme.auth).status_code == 200
        changed = client.patch(
            "/api/v1/account", auth=acme.auth, json={"password": "a brand new password"}
        )
        assert changed.status_code == 200
        old = client.get("/api/v1/account", auth=acme.auth)
        new = client.get("/api/v1/account", auth=(acme.login, "a brand new password"))
    assert old.status_code == 401
    assert new.status_code == 200


@pytest.mark.parametrize(
    ("settings_in", "field"),
    [
        ({"ring_timeout": 0}, "settings.ring_timeout"),  # would offer and time out for ever
        ({"ring_timeout": "20"}, "settings.ring_timeout"),
        ({"ring_timeout": True}, "settings.ring_timeout"),
        ({"wrap_up": -1}, "settings.wrap_up"),
        ({"max_wait": 1e9}, "settings.max_wait"),
        ({"max_no_answer": 2.5}, "settings.max_no_answer"),
        ({"max_no_answer": 101}, "settings.max_no_answer"),
        ({"strategy": "random"}, "settings.strategy"),
        ({"when_empty": "maybe"}, "settings.when_empty"),
        ({"overflow_group": "sales"}, "settings.overflow_group"),
        ({"overflow_number": "not a number"}, None),
        ({"tier_delay": 0}, "settings.tier_delay"),
    ],
)
def test_routing_settings_the_core_cannot_use_are_refused(
    app: LiveServer, acme: SeededAccount, settings_in: dict[str, Any], field: str | None
) -> None:
    with app.client() as client:
        answer = client.patch(
            f"/api/v1/groups/{acme.id_group}", auth=acme.auth, json={"settings": settings_in}
        )
        group = client.get(f"/api/v1/groups/{acme.id_group}", auth=acme.auth).json()
    assert answer.status_code == 400, answer.text
    if field is not None:
        assert answer.json()["details"]["field"] == field
    assert group["settings"] == {}


def test_a_click_to_call_can_be_transferred_to_a_group_not_to_an_operator(
    app: LiveServer, acme: SeededAccount
) -> None:
    ana = token_for(app, acme, id_agent=acme.id_agent)
    bob = token_for(app, acme, id_agent=acme.other_id_agent)
    for token in (ana, bob):
        as_user(app, token, "PUT", "/api/v1/me/status", json={"status": "online"})
    call_id = as_user(app, ana, "POST", "/api/v1/me/calls", json={"to": "33618220000"}).json()[
        "id_call"
    ]
    as_user(app, ana, "POST", f"/api/v1/me/calls/{call_id}/answer")  # her own line
    deadline = time.monotonic() + 10
    while not any(
        c["state"] == "connected"
        for c in as_user(app, ana, "GET", "/api/v1/me/state").json()["calls"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    path = f"/api/v1/me/calls/{call_id}/transfer"
    refused = as_user(app, ana, "POST", path, json={"id_op": acme.other_id_agent})
    assert (refused.status_code, refused.json()["err_code"]) == (409, "invalid_call_action")
    moved = as_user(app, ana, "POST", path, json={"id_group": acme.id_group})
    assert moved.status_code == 200, moved.text
