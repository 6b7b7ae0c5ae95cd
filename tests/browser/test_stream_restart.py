"""The banner and the supervisor page across a server restart (in-process event bus): their
stream position belongs to the old stream, so they must reload their state (4410, another
epoch) rather than resume with ``after`` into the new stream's numbering and silently miss
what happened there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.support import banner_url, dropping_proxy, eventually, open_banner
from tests.browser.test_banner import as_operator, card, place_call
from tests.browser.test_supervisor import supervisor_url
from tests.support import LiveServer, SeededAccount, live_server, token_for
from voicemgmt.config import Settings


def test_the_banner_reloads_after_a_restart_and_shows_a_call_placed_since(
    page: Page, settings: Settings, acme: SeededAccount
) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    with live_server(settings) as first, dropping_proxy(first.port) as proxy:
        ana = token_for(first, acme, id_agent=acme.id_agent)
        open_banner(page, banner_url(proxy.base_url, ana))
        page.select_option("#status", "online")
        for status in ["busy", "online"] * 6:  # the banner's position: some way into the stream
            as_operator(first, ana, "PUT", "/api/v1/me/status", json={"status": status})
        old = as_operator(first, ana, "GET", "/api/v1/me/state")
        assert old["seq"] >= 12
        expect(page.locator("#status")).to_have_value("online")
        proxy.drop(stay_down=True)  # the banner keeps trying; the server restarts meanwhile
        expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        first.stop()

        with live_server(settings, port=first.port) as second:  # the same database and port
            state = as_operator(second, ana, "GET", "/api/v1/me/state")
            assert state["epoch"] != old["epoch"]
            assert state["operator"]["status"] == "online"
            call_id = place_call(second, acme)
            eventually(
                lambda: (
                    [
                        c["id_call"]
                        for c in as_operator(second, ana, "GET", "/api/v1/me/state")["calls"]
                        if acme.id_agent in c["ringing"]
                    ]
                    == [call_id]
                )
            )  # ringing for Ana: the offer is on the new stream, below the banner's position
            # Bob, unavailable either way, moves the new stream past the banner's position:
            # resuming there with `after` alone would skip the offer (its seq is below it).
            bob = token_for(second, acme, id_agent=acme.other_id_agent)
            while as_operator(second, bob, "GET", "/api/v1/me/state")["seq"] <= old["seq"] + 2:
                for status in ("busy", "break"):
                    as_operator(second, bob, "PUT", "/api/v1/me/status", json={"status": status})
            proxy.restore()

            expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15000)
            ringing = card(page, "offered")
            expect(ringing).to_have_count(1)
            expect(ringing).to_have_attribute("data-call", call_id)
            expect(page.locator("#status")).to_have_value("online")
            # It resumed with the old epoch, was told to reload, and started from the state.
            resumed = [url for url in sockets if f"epoch={old['epoch']}" in url]
            assert resumed, sockets
            assert f"epoch={state['epoch']}" in sockets[-1]


@pytest.fixture
def laptop(browser: Browser) -> Iterator[Page]:
    """A page on a laptop's screen, as the supervisor page is used."""
    wide = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    yield wide.new_page()
    wide.close()


def set_status(server: LiveServer, token: str, status: str) -> None:
    as_operator(server, token, "PUT", "/api/v1/me/status", json={"status": status})


def test_the_supervisor_page_reloads_after_a_restart_and_shows_a_call_waiting_since(
    laptop: Page, settings: Settings, acme: SeededAccount
) -> None:
    page = laptop
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    with live_server(settings) as first, dropping_proxy(first.port) as proxy:
        sam = token_for(first, acme, id_admin=acme.id_admin)
        page.goto(supervisor_url(proxy.base_url, sam))
        page.wait_for_selector("#conn[data-state=live]")
        bob = token_for(first, acme, id_agent=acme.other_id_agent)
        for status in ["busy", "break"] * 6:
            set_status(first, bob, status)
        bob_row = page.locator(f'#operators tr[data-id-op="{acme.other_id_agent}"]')
        expect(bob_row.locator('[data-field="status"]')).to_have_attribute("data-status", "break")
        old = as_operator(first, sam, "GET", "/api/v1/supervision/live")
        assert old["seq"] >= 12
        proxy.drop(stay_down=True)
        expect(page.locator("#conn")).not_to_have_attribute("data-state", "live")
        first.stop()

        with live_server(settings, port=first.port) as second:
            call_id = place_call(second, acme)  # nobody online: it waits, low in the new stream
            live = as_operator(second, sam, "GET", "/api/v1/supervision/live")
            assert live["epoch"] != old["epoch"]
            while live["seq"] <= old["seq"] + 2:
                for status in ("busy", "break"):
                    set_status(second, bob, status)
                live = as_operator(second, sam, "GET", "/api/v1/supervision/live")
            assert [c["id_call"] for c in live["calls"]] == [call_id]
            proxy.restore()

            page.wait_for_selector("#conn[data-state=live]", timeout=15000)
            expect(page.locator(f'#waiting li[data-id-call="{call_id}"]')).to_have_count(1)
            assert any(f"epoch={old['epoch']}" in url for url in sockets), sockets
            assert f"epoch={live['epoch']}" in sockets[-1]
