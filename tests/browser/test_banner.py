"""The operator banner (/operateurs/index.htm) in headless Chromium, against the real server,
the simulated switch and the event stream."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from playwright.sync_api import BrowserContext, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.browser.support import (
    banner_url,
    crm_site,
    dropping_proxy,
    eventually,
    open_banner,
)
from tests.support import LiveServer, SeededAccount, token_for
from voicemgmt.bootstrap import Container
from voicemgmt.domain.phone import display_number

ORDER_IVR_NUMBER_STEP = "order"


def api(server: LiveServer) -> httpx.Client:
    return server.client()


def place_call(server: LiveServer, account: SeededAccount, **body: Any) -> str:
    payload = {"from": "33612345678", "to": account.number, **body}
    with api(server) as client:
        answer = client.post("/api/v1/sim/calls", auth=account.auth, json=payload)
    assert answer.status_code == 201, answer.text
    call_id: str = answer.json()["id_call"]
    return call_id


def patch(server: LiveServer, account: SeededAccount, path: str, body: dict[str, Any]) -> None:
    with api(server) as client:
        answer = client.patch(path, auth=account.auth, json=body)
    assert answer.status_code == 200, answer.text


def as_operator(server: LiveServer, token: str, method: str, path: str, **kw: Any) -> Any:
    with api(server) as client:
        answer = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
    assert answer.status_code < 300, answer.text
    return answer.json()


def records(server: LiveServer, account: SeededAccount) -> list[dict[str, Any]]:
    with api(server) as client:
        found: list[dict[str, Any]] = client.get("/api/v1/call-records", auth=account.auth).json()[
            "items"
        ]
    return found


def order_ivr(group_id: int) -> dict[str, Any]:
    return {
        "start": ORDER_IVR_NUMBER_STEP,
        "steps": {
            ORDER_IVR_NUMBER_STEP: {
                "type": "collect",
                "prompt": {"text": "Your order number, then hash"},
                "variable": "order_number",
                "min_length": 3,
                "max_length": 10,
                "next": {"group": group_id},
            }
        },
    }


def online_banner(page: Page, server: LiveServer, account: SeededAccount, **params: str) -> str:
    token = token_for(server, account, id_agent=account.id_agent)
    open_banner(page, banner_url(server.base_url, token, **params))
    page.select_option("#status", "online")
    eventually(
        lambda: (
            as_operator(server, token, "GET", "/api/v1/me/state")["operator"]["presence"]
            == "online"
        )
    )
    return token


def address_of(window: Page) -> str:
    """Where a window is now, as its own document says (it may be navigating)."""
    try:
        address: str = window.evaluate("location.href")
    except PlaywrightError:
        return ""
    return address


def card(page: Page, phase: str | None = None) -> Any:
    selector = ".call" if phase is None else f".call[data-phase={phase}]"
    return page.locator(selector)


# --- logging in ----------------------------------------------------------------------------------


def test_a_token_in_the_url_opens_the_operators_banner_live(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    open_banner(page, banner_url(server.base_url, token))
    expect(page.locator("#me-name")).to_have_text("Ana")
    expect(page.locator("#conn-label")).to_have_text("Live")
    expect(page.locator("#status")).to_have_value("offline")
    expect(page.locator("#logout")).to_be_visible()


def test_without_a_token_the_login_form_opens_a_session_with_email_and_password(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    page.goto(banner_url(server.base_url))
    expect(page.locator("#login")).to_be_visible()
    page.fill("#login-email", acme.agent_email)
    page.fill("#login-password", "not-her-password")
    page.click("#login button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("Wrong email or password.")
    page.fill("#login-password", acme.agent_password)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#conn[data-state=live]")
    expect(page.locator("#me-name")).to_have_text("Ana")
    page.reload()  # the session survives a reload of the tab
    page.wait_for_selector("#conn[data-state=live]")


def test_an_invalid_token_shows_a_clear_logged_out_state(page: Page, server: LiveServer) -> None:
    page.goto(banner_url(server.base_url, "vm_" + "x" * 43))
    expect(page.locator("#out-message")).to_contain_text("no longer valid")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()


def test_a_supervisors_token_is_not_an_operators_banner(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(server, acme, id_admin=acme.id_admin)
    page.goto(banner_url(server.base_url, token))
    expect(page.locator("#out-message")).to_contain_text("supervisor")


def test_deleting_the_token_logs_the_open_banner_out_within_a_second(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    open_banner(page, banner_url(server.base_url, token))
    page.select_option("#status", "online")
    with api(server) as client:
        answer = client.request(
            "DELETE", f"/vm/token/{token}", auth=acme.auth, json={"id_agent": acme.id_agent}
        )
    assert answer.status_code == 200
    page.wait_for_selector("#logged-out:not([hidden])", timeout=1000)
    expect(page.locator("#out-message")).to_contain_text("no longer valid")
    # Her last session is gone: she gets no more calls.
    supervisor = token_for(server, acme, id_admin=acme.id_admin)
    live = as_operator(server, supervisor, "GET", "/api/v1/supervision/live")
    ana = next(o for o in live["operators"] if o["id_op"] == acme.id_agent)
    assert ana["presence"] == "offline"


def test_the_logout_button_ends_the_session_unless_hidden(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    open_banner(page, banner_url(server.base_url, token))
    page.click("#logout")
    expect(page.locator("#out-message")).to_have_text("You are logged out.")
    with api(server) as client:
        gone = client.get("/vm/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401
    other = token_for(server, acme, id_agent=acme.id_agent)
    open_banner(page, banner_url(server.base_url, other, hide_logout="1"))
    expect(page.locator("#logout")).to_be_hidden()


# --- status --------------------------------------------------------------------------------------


def test_status_changes_both_ways(page: Page, server: LiveServer, acme: SeededAccount) -> None:
    token = online_banner(page, server, acme)
    expect(page.locator("#status-box")).to_have_attribute("data-status", "online")
    supervisor = token_for(server, acme, id_admin=acme.id_admin)
    time.sleep(1.1)  # so that the time in status visibly starts again
    as_operator(
        server,
        supervisor,
        "PUT",
        f"/api/v1/supervision/operators/{acme.id_agent}/status",
        json={"status": "break"},
    )
    expect(page.locator("#status")).to_have_value("break")
    expect(page.locator("#status-box")).to_have_attribute("data-status", "break")
    expect(page.locator("#status-time")).to_have_text("0:00")
    as_operator(server, token, "PUT", "/api/v1/me/status", json={"status": "busy"})  # the CRM
    expect(page.locator("#status")).to_have_value("busy")


def test_unanswered_offers_put_the_operator_on_break_and_the_banner_shows_it(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    patch(
        server,
        acme,
        f"/api/v1/groups/{acme.id_group}",
        {"settings": {"ring_timeout": 1, "max_no_answer": 1}},
    )
    online_banner(page, server, acme)
    place_call(server, acme)
    expect(card(page, "offered")).to_have_count(1)
    expect(page.locator("#status")).to_have_value("break", timeout=5000)
    expect(card(page)).to_have_count(0)


# --- calls ---------------------------------------------------------------------------------------


def test_an_incoming_call_shows_every_field(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    patch(server, acme, f"/api/v1/numbers/{acme.number}", {"ivr": order_ivr(acme.id_group)})
    online_banner(page, server, acme)
    place_call(server, acme, dtmf="4242#")
    offered = card(page, "offered")
    expect(offered).to_have_count(1)
    expect(offered.locator(".call-kind")).to_have_text("Incoming call")
    expect(offered.locator(".caller-display")).to_have_text("+33 6 12 34 56 78")
    expect(offered.locator(".caller-digits")).to_have_text("33612345678")
    expect(offered.locator(".called-label")).to_have_text("Hotline")
    expect(offered.locator(".called-number")).to_have_text("+33 1 70 20 02 00")
    expect(offered.locator(".group")).to_have_text("Support")
    expect(offered.locator('[data-variable="order_number"]')).to_have_text("4242")
    first = offered.locator(".wait").inner_text()
    expect(offered.locator(".wait")).not_to_have_text(first, timeout=3000)  # it counts
    expect(offered.locator('[data-action="answer"]')).to_be_visible()
    expect(offered.locator('[data-action="decline"]')).to_be_visible()


def test_answer_then_hang_up_writes_the_call_record(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    patch(server, acme, f"/api/v1/groups/{acme.id_group}", {"settings": {"wrap_up": 5}})
    online_banner(page, server, acme)
    call_id = place_call(server, acme)
    card(page, "offered").locator('[data-action="answer"]').click()
    connected = card(page, "connected")
    expect(connected).to_have_count(1)
    expect(connected.locator(".call-kind")).to_have_text("In a call")
    expect(page.locator("#activity")).to_have_text("In a call")
    time.sleep(1.1)
    connected.locator('[data-action="hangup"]').click()
    expect(card(page)).to_have_count(0)
    expect(page.locator("#wrapup")).to_contain_text("Wrap-up")
    record = eventually(
        lambda: next((r for r in records(server, acme) if r["id_call"] == call_id), None)
    )
    assert record["outcome"] == "answered"
    assert record["id_op"] == acme.id_agent
    assert record["ended_by"] == "operator"
    assert record["duration_comm"] >= 1
    page.click("#tab-recent")
    expect(page.locator(f'#recent-list [data-call="{call_id}"] .list-outcome')).to_have_text(
        "Answered"
    )


def test_hold_resume_and_transfer_to_a_colleague(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    online_banner(page, server, acme)
    bob = token_for(server, acme, id_agent=acme.other_id_agent)
    place_call(server, acme)
    card(page, "offered").locator('[data-action="answer"]').click()
    card(page, "connected").locator('[data-action="hold"]').click()
    expect(card(page, "held").locator(".call-kind")).to_have_text("On hold")
    card(page, "held").locator('[data-action="unhold"]').click()
    expect(card(page, "connected")).to_have_count(1)
    as_operator(server, bob, "PUT", "/api/v1/me/status", json={"status": "online"})
    card(page, "connected").locator('[data-action="transfer"]').click()
    target = page.locator(".transfer-target")
    expect(target.locator(f'option[value="op:{acme.other_id_agent}"]')).to_be_enabled()
    target.select_option(f"op:{acme.other_id_agent}")
    page.click('.transfer-form button[type="submit"]')
    expect(card(page)).to_have_count(0)
    state = eventually(
        lambda: (s := as_operator(server, bob, "GET", "/api/v1/me/state"))["calls"] and s
    )
    assert state["calls"][0]["ringing"] == [acme.other_id_agent]


def test_declined_and_abandoned_calls_are_listed_as_missed_with_call_back(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    online_banner(page, server, acme)
    call_id = place_call(server, acme, **{"from": "33611223344", "hangup_after": 1.5})
    card(page, "offered").locator('[data-action="decline"]').click()
    expect(card(page)).to_have_count(0)
    expect(page.locator("#missed-count")).to_have_text("1", timeout=5000)
    page.click("#tab-missed")
    item = page.locator(f'#missed-list [data-call="{call_id}"]')
    expect(item.locator(".list-number")).to_have_text("+33 6 11 22 33 44")
    expect(item.locator(".list-outcome")).to_have_text("Caller hung up")
    expect(page.locator("#missed-count")).to_be_hidden()
    item.locator(".list-call-back").click()
    expect(page.locator("#dial-number")).to_have_value("33611223344")
    dialing = card(page)
    expect(dialing).to_have_count(1)
    expect(dialing).to_have_attribute("data-direction", "out")


# --- screen-pop ------------------------------------------------------------------------------


def test_the_screen_pop_opens_the_crm_with_the_guides_parameters_in_one_window(
    context: BrowserContext, page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    patch(server, acme, f"/api/v1/numbers/{acme.number}", {"ivr": order_ivr(acme.id_group)})
    patch(server, acme, f"/api/v1/groups/{acme.id_group}", {"settings": {"wrap_up": 0}})
    with crm_site() as crm:
        patch(server, acme, "/api/v1/account", {"crm_url": crm.url("/fiche?src=vm")})
        token = online_banner(page, server, acme)
        with context.expect_page() as popped:
            call_id = place_call(server, acme, dtmf="98765#")
        window = popped.value
        window.wait_for_load_state()
        query = parse_qsl(urlsplit(window.url).query, keep_blank_values=True)
        assert query == [
            ("src", "vm"),
            ("id_session", token),
            ("e164_in", acme.number),
            ("id_call", call_id),
            ("caller_id_num", "33612345678"),
            ("action", "in"),
            ("id_op", str(acme.id_agent)),
            ("id_group", str(acme.id_group)),
            ("wait", "0"),
            ("order_number", "98765"),
        ]
        assert any(call_id in request for request in crm.requests)
        card(page, "offered").locator('[data-action="answer"]').click()
        card(page, "connected").locator('[data-action="hangup"]').click()
        # The next call reuses the same window.
        second = place_call(server, acme, dtmf="111#")
        eventually(lambda: any(f"id_call={second}" in request for request in crm.requests))
        eventually(lambda: f"id_call={second}" in address_of(window))
        assert len(context.pages) == 2


def test_the_screen_pop_can_wait_for_the_answer(
    context: BrowserContext, page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    with crm_site() as crm:
        patch(
            server,
            acme,
            "/api/v1/account",
            {"crm_url": crm.url("/fiche"), "settings": {"screen_pop": "answer"}},
        )
        online_banner(page, server, acme)
        place_call(server, acme)
        offered = card(page, "offered")
        expect(offered).to_have_count(1)
        time.sleep(1.2)
        assert len(context.pages) == 1  # nothing opened on presentation
        with context.expect_page() as popped:
            offered.locator('[data-action="answer"]').click()
        query = dict(parse_qsl(urlsplit(popped.value.url).query))
        assert query["action"] == "in"
        assert int(query["wait"]) >= 1


# --- click-to-call ---------------------------------------------------------------------------


def test_click_to_call_from_fiche_num(page: Page, server: LiveServer, acme: SeededAccount) -> None:
    online_banner(page, server, acme, fiche_num="33618220000")
    expect(page.locator("#dial-number")).to_have_value("33618220000")
    page.click("#dial-call")
    connected = card(page, "connected")
    expect(connected).to_have_count(1)
    expect(connected).to_have_attribute("data-direction", "out")
    expect(connected.locator(".caller-display")).to_have_text("+33 6 18 22 00 00")
    connected.locator('[data-action="hangup"]').click()
    expect(card(page)).to_have_count(0)
    record = eventually(
        lambda: next((r for r in records(server, acme) if r["direction"] == "out"), None)
    )
    assert (record["service_number"], record["outcome"]) == ("33618220000", "answered")


def test_a_number_that_cannot_be_dialled_gets_a_clear_message(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    online_banner(page, server, acme, fiche_num="12")
    page.click("#dial-call")
    expect(page.locator("#dial-error")).to_contain_text("This number cannot be dialled")
    page.fill("#dial-number", "")
    page.click("#dial-call")
    expect(page.locator("#dial-error")).to_have_text("Type a number first.")
    expect(card(page)).to_have_count(0)


# --- live: drops, tabs ---------------------------------------------------------------------------


def test_the_banner_resumes_after_the_server_drops_the_socket_mid_call(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    patch(server, acme, f"/api/v1/groups/{acme.id_group}", {"settings": {"wrap_up": 0}})
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    with dropping_proxy(server.port) as proxy:
        token = token_for(server, acme, id_agent=acme.id_agent)
        open_banner(page, banner_url(proxy.base_url, token))
        page.select_option("#status", "online")
        first = place_call(server, acme)
        card(page, "offered").locator('[data-action="answer"]').click()
        expect(card(page, "connected")).to_have_count(1)

        proxy.drop(stay_down=True)
        expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        # Meanwhile, on her other device, she ends the call and gets the next one.
        as_operator(server, token, "POST", f"/api/v1/me/calls/{first}/hangup")
        second = place_call(server, acme, **{"from": "33699887766"})
        eventually(lambda: as_operator(server, token, "GET", "/api/v1/me/state")["calls"])
        proxy.restore()

        expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15000)
        offered = card(page, "offered")
        expect(offered).to_have_count(1)
        expect(offered).to_have_attribute("data-call", second)
        expect(offered.locator(".caller-digits")).to_have_text("33699887766")
        expect(card(page)).to_have_count(1)  # the first call's card is gone, nothing twice
    assert len(sockets) >= 2
    assert "after=" in sockets[-1]


def test_several_tabs_of_one_operator_ring_in_one_place_and_follow_each_other(
    context: BrowserContext, server: LiveServer, acme: SeededAccount
) -> None:
    with crm_site() as crm:
        patch(server, acme, "/api/v1/account", {"crm_url": crm.url("/fiche")})
        token = token_for(server, acme, id_agent=acme.id_agent)
        tabs = [context.new_page(), context.new_page()]
        for tab in tabs:
            open_banner(tab, banner_url(server.base_url, token))
        tabs[0].select_option("#status", "online")
        expect(tabs[1].locator("#status")).to_have_value("online")
        eventually(lambda: sum(t.evaluate("window.vmBanner.leader") for t in tabs) == 1)
        with context.expect_page():
            place_call(server, acme)
        for tab in tabs:
            expect(card(tab, "offered")).to_have_count(1)
        time.sleep(0.5)
        assert len(context.pages) == 3  # two tabs, one customer file
        card(tabs[1], "offered").locator('[data-action="answer"]').click()
        for tab in tabs:
            expect(card(tab, "connected")).to_have_count(1)


# --- the page itself -----------------------------------------------------------------------------


def test_the_banner_speaks_french_to_a_french_browser(
    browser: Any, server: LiveServer, acme: SeededAccount
) -> None:
    context = browser.new_context(locale="fr-FR", viewport={"width": 360, "height": 640})
    try:
        page = context.new_page()
        online_banner(page, server, acme)
        place_call(server, acme)
        expect(card(page, "offered").locator('[data-action="answer"]')).to_have_text("Décrocher")
        expect(page.locator("#conn-label")).to_have_text("En direct")
        assert page.evaluate("document.documentElement.lang") == "fr"
    finally:
        context.close()


def test_the_banner_fits_a_small_iframe_and_works_from_the_keyboard(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    online_banner(page, server, acme)
    place_call(server, acme)
    expect(card(page, "offered")).to_have_count(1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360
    answer_box = card(page, "offered").locator('[data-action="answer"]').bounding_box()
    assert answer_box is not None
    assert answer_box["y"] + answer_box["height"] <= 640
    page.keyboard.press("Alt+a")
    expect(card(page, "connected")).to_have_count(1)
    page.keyboard.press("Alt+h")
    expect(card(page)).to_have_count(0)


def test_caller_ids_ivr_data_and_directory_names_are_shown_as_text(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    group_name = '<img src=x onerror="window.__xss=1">'
    label = "<script>window.__xss=2</script>"
    patch(server, acme, f"/api/v1/groups/{acme.id_group}", {"name": group_name})
    patch(server, acme, f"/api/v1/numbers/{acme.number}", {"label": label})
    online_banner(page, server, acme)
    caller = "<img src=x onerror=window.__xss=3>"
    variable = '"><svg onload=window.__xss=4>'

    async def offer_a_hostile_call(container: Container) -> None:
        # What a carrier's caller id or an IVR will send through, once a SIP trunk is plugged
        # in: the stream carries it as data, and the banner must show it as text.
        await container.bus.publish(
            acme.id,
            "call.offered",
            {
                "id_call": "hostile1",
                "id_op": acme.id_agent,
                "id_group": acme.id_group,
                "caller_id_num": caller,
                "e164_in": acme.number,
                "wait": 0,
                "variables": {"order_number": variable},
                "display": {"caller_id_num": caller, "e164_in": display_number(acme.number)},
            },
            datetime.now(UTC),
        )

    server.call_soon(offer_a_hostile_call)
    offered = card(page, "offered")
    expect(offered.locator(".caller-display")).to_have_text(caller)
    expect(offered.locator(".caller-digits")).to_have_text(caller)
    expect(offered.locator('[data-variable="order_number"]')).to_have_text(variable)
    expect(offered.locator(".group")).to_have_text(group_name)
    expect(offered.locator(".called-label")).to_have_text(label)
    time.sleep(0.3)
    assert page.evaluate("window.__xss") is None
    assert page.locator("#cards img, #cards svg, #cards script").count() == 0


def test_a_crm_origin_that_is_not_allowed_cannot_frame_the_banner(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text))
    with crm_site() as crm:
        frame_page = (
            "<!doctype html><title>CRM</title>"
            f'<iframe id="vm" width="360" height="640" src="{banner_url(server.base_url, token)}">'
            "</iframe>"
        )
        crm.pages["/crm"] = frame_page
        page.goto(crm.url("/crm"))
        eventually(lambda: any("frame-ancestors" in text for text in refused))
        frame = page.frame_locator("#vm")
        expect(frame.locator("#app")).to_have_count(0)

        patch(server, acme, "/api/v1/account", {"allowed_origins": [crm.origin]})
        page.goto(crm.url("/crm"))
        expect(frame.locator("#conn")).to_have_attribute("data-state", "live")


def test_a_withheld_caller_id_reads_as_such(
    page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    online_banner(page, server, acme)

    async def offer_a_withheld_call(container: Container) -> None:
        # A SIP trunk gives "" for an anonymous caller (From: sip:anonymous@…).
        await container.bus.publish(
            acme.id,
            "call.offered",
            {
                "id_call": "withheld1",
                "id_op": acme.id_agent,
                "id_group": acme.id_group,
                "caller_id_num": "",
                "e164_in": acme.number,
                "wait": 0,
                "variables": {},
                "display": {"caller_id_num": "", "e164_in": display_number(acme.number)},
            },
            datetime.now(UTC),
        )

    server.call_soon(offer_a_withheld_call)
    expect(card(page, "offered").locator(".caller-display")).to_have_text("Withheld number")
