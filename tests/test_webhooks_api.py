"""The webhook API (``/api/v1/webhooks``) through a real server: subscriptions, secrets,
tenant isolation, and URLs refused before anything is stored (SSRF)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import LiveServer, SeededAccount, live_server, make_settings, run_on
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings

API = "/api/v1/webhooks"
ERROR_KEYS = {"status", "err_code", "err_msg", "details"}


@pytest.fixture
def production(tmp_path: Path, seeded: Any, settings: Settings) -> Iterator[LiveServer]:
    """A server as in production: https:// only, public targets only."""
    with live_server(settings) as running:
        yield running


@pytest.fixture
def development(tmp_path: Path, seeded: Any, settings: Settings) -> Iterator[LiveServer]:
    """A server allowing http:// (VM_WEBHOOKS_ALLOW_HTTP), as in development."""
    with live_server(settings.model_copy(update={"webhooks_allow_http": True})) as running:
        yield running


def allow_private(settings: Settings, account: SeededAccount) -> None:
    async def job(c: Container) -> None:
        await c.webhooks.allow_private_targets(account.id, True)

    run_on(settings, job)


def refused(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    # ``details`` may be absent when there is nothing to add (README, "Errors")
    assert set(body) - {"details"} == ERROR_KEYS - {"details"}, body
    assert body["status"] == status, body
    assert body["err_code"] == code, body
    return body


def listing(server: LiveServer, account: SeededAccount) -> list[dict[str, Any]]:
    with server.client() as client:
        items: list[dict[str, Any]] = client.get(API, auth=account.auth).json()["items"]
    return items


def test_a_subscription_is_created_with_a_secret_shown_once(
    development: LiveServer, settings: Settings, acme: SeededAccount
) -> None:
    allow_private(settings, acme)
    with development.client() as client:
        answer = client.post(
            API,
            auth=acme.auth,
            json={"url": "http://127.0.0.1:9/hook", "events": ["call.offered", "call.ended"]},
        )
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert answer.headers["location"] == f"{API}/{created['id_webhook']}"
        assert created["secret"].startswith("whsec_")
        assert len(created["secret"]) > 40
        assert created["events"] == ["call.offered", "call.ended"]
        assert created["state"] == "active"
        assert created["active"] is True
        shown = client.get(f"{API}/{created['id_webhook']}", auth=acme.auth).json()
    assert "secret" not in shown
    assert shown["url"] == "http://127.0.0.1:9/hook"
    assert [w["id_webhook"] for w in listing(development, acme)] == [created["id_webhook"]]


def test_every_kind_by_default_disable_enable_and_delete(
    development: LiveServer, settings: Settings, acme: SeededAccount
) -> None:
    allow_private(settings, acme)
    with development.client() as client:
        created = client.post(API, auth=acme.auth, json={"url": "http://localhost:9/"}).json()
        assert created["events"] == ["*"]
        path = f"{API}/{created['id_webhook']}"
        off = client.patch(path, auth=acme.auth, json={"active": False}).json()
        assert (off["active"], off["state"]) == (False, "disabled")
        on = client.patch(path, auth=acme.auth, json={"active": True, "events": ["call.held"]})
        assert (on.json()["state"], on.json()["events"]) == ("active", ["call.held"])
        assert client.delete(path, auth=acme.auth).status_code == 204
        refused(client.get(path, auth=acme.auth), 404, "unknown_webhook")


def test_rotation_gives_a_new_secret_and_keeps_the_old_one_for_a_while(
    development: LiveServer, settings: Settings, acme: SeededAccount
) -> None:
    allow_private(settings, acme)
    with development.client() as client:
        created = client.post(API, auth=acme.auth, json={"url": "http://127.0.0.1:9/"}).json()
        path = f"{API}/{created['id_webhook']}/rotate-secret"
        rotated = client.post(path, auth=acme.auth, json={"keep_previous_seconds": 3600})
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["secret"] != created["secret"]
        assert rotated.json()["previous_secret_expires_at"] is not None
        at_once = client.post(path, auth=acme.auth, json={"keep_previous_seconds": 0}).json()
        assert at_once["previous_secret_expires_at"] is None
        default = client.post(path, auth=acme.auth)
        assert default.status_code == 200, default.text
        refused(
            client.post(path, auth=acme.auth, json={"keep_previous_seconds": 8 * 86400}),
            400,
            "validation_failed",
        )


def test_another_accounts_webhooks_are_unknown(
    development: LiveServer, settings: Settings, acme: SeededAccount, globex: SeededAccount
) -> None:
    allow_private(settings, acme)
    with development.client() as client:
        created = client.post(API, auth=acme.auth, json={"url": "http://127.0.0.1:9/"}).json()
        path = f"{API}/{created['id_webhook']}"
        refused(client.get(path, auth=globex.auth), 404, "unknown_webhook")
        refused(
            client.patch(path, auth=globex.auth, json={"active": False}), 404, "unknown_webhook"
        )
        refused(client.delete(path, auth=globex.auth), 404, "unknown_webhook")
        refused(client.post(f"{path}/rotate-secret", auth=globex.auth), 404, "unknown_webhook")
        refused(client.get(f"{path}/deliveries", auth=globex.auth), 404, "unknown_webhook")
        refused(client.get(path, auth=("acme", "wrong-password")), 401, "authentication_failed")
        assert client.get(path, auth=acme.auth).json()["active"] is True
    assert listing(development, globex) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/",
        "https://192.168.1.20/",
        "https://[::ffff:127.0.0.1]/",
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "https://localhost/hook",
        "https://LocalHost:8443/hook",
    ],
)
def test_private_and_loopback_targets_are_refused(
    production: LiveServer, acme: SeededAccount, url: str
) -> None:
    with production.client() as client:
        body = refused(
            client.post(API, auth=acme.auth, json={"url": url}), 400, "webhook_target_refused"
        )
    assert body["details"]["field"] == "url"
    assert listing(production, acme) == []


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1/hook", "invalid_webhook_url"),  # http:// outside development
        ("http://example.com/hook", "invalid_webhook_url"),
        ("not a url", "invalid_webhook_url"),
        ("crm.example.com/hook", "invalid_webhook_url"),
        ("ftp://example.com/", "invalid_webhook_url"),
        ("javascript:alert(1)", "invalid_webhook_url"),
        ("https://user:pw@example.com/", "invalid_webhook_url"),
        ("https://example.com:99999/", "invalid_webhook_url"),
        ("https:///nohost", "invalid_webhook_url"),
        ("https://no-such-host.invalid/", "invalid_webhook_url"),
        ("", "validation_failed"),
    ],
)
def test_urls_that_are_not_acceptable_are_refused(
    production: LiveServer, acme: SeededAccount, url: str, code: str
) -> None:
    with production.client() as client:
        refused(client.post(API, auth=acme.auth, json={"url": url}), 400, code)
    assert listing(production, acme) == []


def test_http_is_accepted_in_development_but_private_targets_still_need_the_setting(
    development: LiveServer, settings: Settings, acme: SeededAccount
) -> None:
    with development.client() as client:
        refused(
            client.post(API, auth=acme.auth, json={"url": "http://127.0.0.1:9/"}),
            400,
            "webhook_target_refused",
        )
    allow_private(settings, acme)
    with development.client() as client:
        assert (
            client.post(API, auth=acme.auth, json={"url": "http://127.0.0.1:9/"}).status_code == 201
        )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "https://127.0.0.1/", "events": ["call.nope"]}, "invalid_input"),
        ({"url": "https://127.0.0.1/", "events": []}, "validation_failed"),
        ({"url": "https://127.0.0.1/", "events": ["*", "call.ended"]}, "invalid_input"),
        ({"url": "https://127.0.0.1/", "events": "call.ended"}, "validation_failed"),
        ({"url": "https://127.0.0.1/", "secret": "mine"}, "validation_failed"),
        ({"url": 12}, "validation_failed"),
        ({}, "validation_failed"),
    ],
)
def test_bad_bodies_are_refused_and_store_nothing(
    development: LiveServer, settings: Settings, acme: SeededAccount, body: Any, code: str
) -> None:
    allow_private(settings, acme)
    with development.client() as client:
        refused(client.post(API, auth=acme.auth, json=body), 400, code)
    assert listing(development, acme) == []


def test_unknown_deliveries_are_answered_404(
    development: LiveServer, settings: Settings, acme: SeededAccount
) -> None:
    allow_private(settings, acme)
    with development.client() as client:
        created = client.post(API, auth=acme.auth, json={"url": "http://127.0.0.1:9/"}).json()
        path = f"{API}/{created['id_webhook']}/deliveries"
        assert client.get(path, auth=acme.auth).json()["items"] == []
        refused(client.get(f"{path}/nope", auth=acme.auth), 404, "unknown_webhook_delivery")
        refused(
            client.post(f"{path}/nope/redeliver", auth=acme.auth), 404, "unknown_webhook_delivery"
        )
        refused(client.get(f"{path}?state=lost", auth=acme.auth), 400, "validation_failed")


def test_the_settings_default_to_production(tmp_path: Path) -> None:
    assert make_settings(tmp_path).webhooks_allow_http is False
