"""A real SIP call seen by the pages: a baresip caller keys an order number by RFC 4733, the
operator's baresip phone answers; the banner (in headless Chromium, inside a CRM page on
another origin) and that CRM's ``cnx.js`` callbacks get exactly what they get with the
simulated switch."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.browser.support import crm_site, eventually, launch
from tests.browser.test_cnx import evaluate, harness, live, seen
from tests.sip.peers import baresip, need
from tests.sip.platform import SipPlatform, sip_platform
from tests.sip.test_baresip_calls import give_phone
from tests.test_calls_api import record_of, token_for

pytestmark = pytest.mark.sip


@pytest.fixture
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[SipPlatform]:
    need("baresip")
    with sip_platform(tmp_path) as running:
        yield running


def test_the_banner_and_the_crm_are_told_of_a_sip_call_as_of_a_simulated_one(
    platform: SipPlatform, chromium: Browser, tmp_path: Path
) -> None:
    acme, server = platform.acme, platform.server
    ivr = {
        "start": "order",
        "steps": {
            "order": {
                "type": "collect",
                "prompt": {"text": "Your order number, then hash"},
                "variable": "order_number",
                "min_length": 4,
                "max_length": 8,
                "timeout": 20,
                "inter_digit_timeout": 5,
                "next": {"group": acme.id_group},
            }
        },
    }
    with (
        crm_site() as crm,
        baresip(tmp_path, "caller", source=platform.caller_voice) as caller,
        baresip(tmp_path, "ana", source=platform.operator_voice) as phone,
    ):
        with platform.client() as client:
            for path, body in (
                ("/api/v1/account", {"allowed_origins": [crm.origin]}),
                (f"/api/v1/numbers/{acme.number}", {"ivr": ivr}),
            ):
                answer = client.patch(path, auth=acme.auth, json=body)
                assert answer.status_code == 200, answer.text
        phone.start()
        caller.start()
        give_phone(platform, acme.id_agent, phone, "ana")
        token = token_for(server, acme, id_agent=acme.id_agent)
        context = chromium.new_context(viewport={"width": 1000, "height": 700})
        page = context.new_page()
        crm.pages["/crm"] = harness(server.base_url)
        page.goto(crm.url("/crm"))
        assert evaluate(page, f"crm.login({json.dumps(token)})")["ok"]
        live(page)
        assert evaluate(page, "crm.publish({status: 'online'})")["ok"]

        caller.command("dial", platform.uri_of_number)
        caller.wait_event("CALL_ESTABLISHED")
        time.sleep(2.0)  # the prompt, spoken by espeak-ng
        for key in "4711#":
            caller.command("sndcode", key)
            time.sleep(0.25)
            caller.command("sndcode", "")
            time.sleep(0.15)
        incoming = eventually(lambda: seen(page, "in"), timeout=20)[0]["data"]
        call_id = incoming["id_call"]
        banner = page.frame_locator("#vm")
        expect(banner.locator('.call[data-phase="offered"]')).to_be_visible()
        phone.wait_event("CALL_INCOMING")
        phone.command("accept")  # answered on the phone: the banner follows
        expect(banner.locator('.call[data-phase="connected"]')).to_be_visible(timeout=10_000)
        time.sleep(1.0)
        caller.command("hangup")
        ended = eventually(lambda: seen(page, "end"), timeout=15)[0]["data"]
        phone.wait_event("CALL_CLOSED")
        expect(banner.locator('.call[data-phase="connected"]')).to_have_count(0)
        record = record_of(server, acme, call_id)
        time.sleep(0.5)
        kinds = [n["kind"] for n in seen(page) if n["kind"] != "status"]
        context.close()

    assert incoming == {
        "id_session": token,
        "e164_in": acme.number,
        "id_call": call_id,
        "caller_id_num": record["caller_number"],
        "id_op": acme.id_agent,
        "id_groupe": acme.id_group,
        "wait": incoming["wait"],
        "order_number": "4711",
    }
    assert kinds == ["in", "end"]  # each once, as with the simulated switch
    assert ended["id_call"] == call_id
    assert ended["outcome"] == "answered"
    assert ended["ended_by"] == "caller"
    assert ended["order_number"] == "4711"
    assert ended["duration_comm"] == pytest.approx(record["duration_comm"], abs=0.01)
    assert record["variables"] == {"order_number": "4711"}
