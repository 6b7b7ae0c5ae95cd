"""The login throttle's policy (README, Security), through a real server: guessing is slowed
per (address, login), per login and per address, without one client's failures locking out
the other logins of its address or the right password for long."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import LiveServer, SeededAccount, live_server, make_settings, seed_two_accounts


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[tuple[LiveServer, SeededAccount, SeededAccount]]:
    settings = make_settings(tmp_path)
    acme, globex = seed_two_accounts(settings)
    with live_server(settings) as server:
        yield server, acme, globex


def mint(
    server: LiveServer, auth: tuple[str, str], source: str = "127.0.0.1", id_agent: int = 1
) -> httpx.Response:
    with server.client(source=source) as client:
        return client.post("/vm/token", auth=auth, json={"id_agent": id_agent})


def statuses(server: LiveServer, attempts: list[dict[str, Any]]) -> list[int]:
    return [mint(server, **attempt).status_code for attempt in attempts]


def test_a_shared_crm_keeps_logging_its_tenants_in_while_one_address_sprays(
    accounts: tuple[LiveServer, SeededAccount, SeededAccount],
) -> None:
    server, acme, _globex = accounts
    assert mint(server, acme.auth, id_agent=acme.id_agent).status_code == 200  # acme works here
    sprayed = statuses(server, [{"auth": (f"nobody{i}", "x")} for i in range(32)])
    assert sprayed[:30] == [401] * 30
    assert sprayed[30:] == [429, 429]  # the address is stopped on logins it never opened…
    assert mint(server, acme.auth, id_agent=acme.id_agent).status_code == 200  # …not on acme


def test_one_login_guessed_from_many_addresses_is_stopped_but_stays_usable_where_it_is_used(
    accounts: tuple[LiveServer, SeededAccount, SeededAccount],
) -> None:
    server, acme, globex = accounts
    assert mint(server, acme.auth, source="127.0.0.1", id_agent=acme.id_agent).status_code == 200
    guesses = [{"auth": (acme.login, "guess"), "source": f"127.0.1.{i}"} for i in range(1, 13)]
    codes = statuses(server, guesses)
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429, 429]  # 10 failures a minute on one login, from anywhere
    fresh = mint(server, acme.auth, source="127.0.2.1", id_agent=acme.id_agent)
    assert fresh.status_code == 429  # a new address waits too…
    assert fresh.json()["err_msg"] == "too many failed logins for this login; try again later"
    known = mint(server, acme.auth, source="127.0.0.1", id_agent=acme.id_agent)
    assert known.status_code == 200  # …the CRM's own address does not
    other = mint(server, globex.auth, source="127.0.2.1", id_agent=globex.id_agent)
    assert other.status_code == 200  # nor does another login


def test_the_right_password_waits_at_most_the_window_after_failures(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth_failures_per_client_login="3/2 seconds")
    acme, _globex = seed_two_accounts(settings)
    with live_server(settings) as server:
        assert statuses(server, [{"auth": (acme.login, "guess")}] * 3) == [401] * 3
        refused = mint(server, acme.auth, id_agent=acme.id_agent)
        assert refused.status_code == 429
        assert refused.json()["err_code"] == "too_many_attempts"
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 3
        time.sleep(retry_after)
        assert mint(server, acme.auth, id_agent=acme.id_agent).status_code == 200


def test_a_success_forgives_the_pairs_earlier_failures(
    accounts: tuple[LiveServer, SeededAccount, SeededAccount],
) -> None:
    server, acme, _globex = accounts
    wrong = {"auth": (acme.login, "typo")}
    assert statuses(server, [wrong] * 4) == [401] * 4
    assert mint(server, acme.auth, id_agent=acme.id_agent).status_code == 200
    assert statuses(server, [wrong] * 5) == [401] * 5  # counted afresh: 5 before the limit
    assert statuses(server, [wrong]) == [429]


def test_operator_logins_follow_the_same_policy(
    accounts: tuple[LiveServer, SeededAccount, SeededAccount],
) -> None:
    server, acme, _globex = accounts

    def log_in(password: str, source: str = "127.0.0.1") -> int:
        with server.client(source=source) as client:
            body = {"login": acme.agent_email, "password": password}
            return client.post("/vm/login", json=body).status_code

    assert log_in(acme.agent_password) == 200
    for i in range(12):  # ana's email guessed from 12 addresses
        log_in("guess", source=f"127.0.3.{i + 1}")
    assert log_in(acme.agent_password, source="127.0.4.1") == 429
    assert log_in(acme.agent_password) == 200  # where ana works, she still logs in
