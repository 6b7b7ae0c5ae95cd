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
