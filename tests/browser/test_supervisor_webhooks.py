"""The supervisor page's webhooks panel in headless Chromium: each subscription with its state
and latest attempts, as delivered to a real receiver on loopback; server text shown as text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_supervisor import supervisor_url
from tests.support import LiveServer, SeededAccount, live_server, run_on, token_for
from tests.webhook_receiver import Behaviour, Receiver, wait_for
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings


@pytest.fixture
def webhook_server(
    settings: Settings, seeded: tuple[SeededAccount, SeededAccount]
) -> Iterator[LiveServer]:
    development = settings.model_copy(
        update={"webhooks_allow_http": True, "webhook_retry_base_seconds": 30}
    )

    async def allow(c: Container) -> None:
        await c.webhooks.allow_private_targets(seeded[0].id, True)

    run_on(development, allow)
    with live_server(development) as running:
        yield running


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    good, bad = Receiver(), Receiver(behaviour=Behaviour(status=500))
    good.start()
    bad.start()
    yield good, bad
    good.stop()
    bad.stop()


def subscribe(server: LiveServer, acme: SeededAccount, url: str, **body: object) -> int:
    with server.client() as client:
        answer = client.post("/api/v1/webhooks", auth=acme.auth, json={"url": url, **body})
    assert answer.status_code == 201, answer.text
    hook: int = answer.json()["id_webhook"]
    return hook


def test_the_panel_shows_each_webhook_its_state_and_latest_attempts(
    page: Page,
    webhook_server: LiveServer,
    acme: SeededAccount,
    receivers: tuple[Receiver, Receiver],
) -> None:
    good, bad = receivers
    page.set_viewport_size({"width": 1280, "height": 900})
    fine = subscribe(webhook_server, acme, good.url, events=["call.held"])
    failing = subscribe(
        webhook_server, acme, bad.url + "/<b>bold</b>", description="<i>the CRM</i>"
    )
    off = subscribe(webhook_server, acme, good.url + "/off", active=False)

    async def publish(c: Container) -> None:
        await c.bus.publish(
            acme.id, "call.held", {"id_call": "c1", "id_op": acme.id_agent}, datetime.now(UTC)
        )

    webhook_server.call_soon(publish)
    wait_for(lambda: good.snapshot() and bad.snapshot(), what="one attempt each")

    token = token_for(webhook_server, acme, id_admin=acme.id_admin)
    page.goto(supervisor_url(webhook_server.base_url, token))
    panel = page.locator("#webhooks-panel")
    expect(panel).to_be_visible()
    row = page.locator(f"#webhooks tr[data-id-webhook='{fine}']")
    expect(row).to_have_attribute("data-state", "active")
    expect(row.locator("td").nth(1)).to_have_text("call.held")
    expect(row.locator("ul.attempts li").first).to_contain_text("call.held · ✓ · 200")
    bad_row = page.locator(f"#webhooks tr[data-id-webhook='{failing}']")
    expect(bad_row.locator("td").nth(1)).to_have_text("every event")
    expect(bad_row.locator("ul.attempts li[data-ok=false]").first).to_contain_text("✗ · 500")
    expect(bad_row).to_contain_text("failing since")
    expect(bad_row.locator("td.url")).to_have_text(bad.url + "/<b>bold</b>")
    assert page.locator("#webhooks b, #webhooks i").count() == 0
    off_row = page.locator(f"#webhooks tr[data-id-webhook='{off}']")
    expect(off_row).to_have_attribute("data-state", "disabled")
    expect(off_row.locator("ul.attempts li")).to_have_text("no delivery yet")


def test_the_panel_stays_hidden_without_webhooks(
    page: Page, webhook_server: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(webhook_server, acme, id_admin=acme.id_admin)
    page.goto(supervisor_url(webhook_server.base_url, token))
    page.wait_for_selector("#webhooks-panel[data-read-at]", state="attached")
    expect(page.locator("#webhooks-panel")).to_be_hidden()


def test_operators_cannot_read_the_webhooks(
    webhook_server: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(webhook_server, acme, id_agent=acme.id_agent)
    with webhook_server.client() as client:
        answer = client.get(
            "/api/v1/supervision/webhooks", headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 403
    assert answer.json()["err_code"] == "forbidden"
