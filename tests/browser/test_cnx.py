"""cnx.js (guide §4) in headless Chromium: a CRM page on one origin (http://localhost:<crm>)
with the banner and cnx.js from the product on another (http://127.0.0.1:<server>)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Frame, Page, expect

from tests.browser.support import (
    CrmSite,
    crm_site,
    dropping_proxy,
    eventually,
)
from tests.support import LiveServer, SeededAccount, token_for
from voicemgmt.adapters.switch.simulated import SimulatedSwitch
from voicemgmt.adapters.switch.simulation import Busy
from voicemgmt.bootstrap import Container

NOTICES = ("auth_invalid", "in", "out", "status", "end", "missed")


def harness(product: str, *, iframe: str | None = None, script: str = "", delay_ms: int = 0,
            cnx_attributes: str = "") -> str:  # fmt: skip
    """A CRM page: the banner's iframe, cnx.js, and every callback recorded in ``seen``."""
    src = (
        iframe
        if iframe is not None
        else (f"{product}/operateurs/index.htm?engine=standard&version=1&sound=off")
    )
    setters = "\n".join(
        f"crm.set_{'auth_invalid' if kind == 'auth_invalid' else 'notif_' + name}"
        f"(function (data) {{ seen.push({{kind: {json.dumps(kind)}, data: data || {{}}}}); }});"
        for kind, name in zip(
            NOTICES, ("", "in", "out", "status", "endCall", "missedCall"), strict=True
        )
    )
    frame = f'<iframe id="vm" width="360" height="640" src="{src}"></iframe>'
    insert = (
        f"<script>setTimeout(function () {{ document.body.insertAdjacentHTML('beforeend', "
        f"{json.dumps(frame)}); }}, {delay_ms});</script>"
        if delay_ms
        else frame
    )
    return f"""<!doctype html><html><head><title>CRM</title></head><body>
<script>window.seen = []; window.results = [];</script>
<script src="{product}/cnx.js" {cnx_attributes}></script>
<script>{setters}
function keep(name, promise) {{
  return promise.then(
    function (value) {{ results.push({{name: name, ok: true, value: value}}); return value; }},
    function (error) {{ results.push({{name: name, ok: false, code: error.code}}); throw error; }});
}}
{script}
</script>
{insert}
</body></html>"""


@pytest.fixture
def crm(server: LiveServer, acme: SeededAccount) -> Iterator[CrmSite]:
    with crm_site() as site:
        with server.client() as client:
            answer = client.patch(
                "/api/v1/account", auth=acme.auth, json={"allowed_origins": [site.origin]}
            )
            assert answer.status_code == 200, answer.text
        yield site


def open_crm(page: Page, crm: CrmSite, html: str, path: str = "/crm") -> Page:
    crm.pages[path] = html
    page.goto(crm.url(path))
    return page


def seen(page: Page, kind: str | None = None) -> list[dict[str, Any]]:
    notices: list[dict[str, Any]] = page.evaluate("window.seen")
    return [n for n in notices if kind is None or n["kind"] == kind]


def banner(page: Page) -> Frame:
    frame = page.frame_locator("#vm")
    frame.locator("#app").wait_for(state="attached")
    for candidate in page.frames:
        if "/operateurs/index.htm" in candidate.url:
            return candidate
    raise AssertionError("no banner frame")


def call_in(server: LiveServer, account: SeededAccount, **body: Any) -> str:
    with server.client() as client:
        answer = client.post(
            "/api/v1/sim/calls",
            auth=account.auth,
            json={"from": "33612345678", "to": account.number, **body},
        )
    assert answer.status_code == 201, answer.text
    call_id: str = answer.json()["id_call"]
    return call_id


def evaluate(page: Page, script: str) -> Any:
    """Run a command in the CRM page; its Promise's outcome as {ok, value} or {ok, code}."""
    return page.evaluate(
        f"""(async () => {{
            try {{ return {{ok: true, value: await ({script})}}; }}
            catch (error) {{ return {{ok: false, code: error.code, message: error.message}}; }}
        }})()"""
    )


def live(page: Page) -> None:
    expect(page.frame_locator("#vm").locator("#conn")).to_have_attribute(
        "data-state", "live", timeout=10_000
    )


def state_of(server: LiveServer, token: str) -> dict[str, Any]:
    with server.client() as client:
        answer = client.get("/api/v1/me/state", headers={"Authorization": f"Bearer {token}"})
    result: dict[str, Any] = answer.json()
    return result


# --- the guide's flow ----------------------------------------------------------------------------


def test_every_notification_reaches_the_crm_once_and_in_order(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    ivr = {
        "start": "order",
        "steps": {
            "order": {
                "type": "collect",
                "prompt": {"text": "Order number?"},
                "variable": "order_number",
                "min_length": 3,
                "next": {"group": acme.id_group},
            }
        },
    }
    with server.client() as client:
        client.patch(f"/api/v1/numbers/{acme.number}", auth=acme.auth, json={"ivr": ivr})
    token = token_for(server, acme, id_agent=acme.id_agent)
    open_crm(page, crm, harness(server.base_url))
    assert evaluate(page, f"crm.login({json.dumps(token)})") == {
        "ok": True,
        "value": {"id_op": acme.id_agent},
    }
    live(page)
    assert evaluate(page, "crm.publish({status: 'online'})")["ok"]
    eventually(lambda: any(n["data"].get("status") == "online" for n in seen(page, "status")))
    call_id = call_in(server, acme, dtmf="5151#")
    incoming = eventually(lambda: seen(page, "in"))[0]["data"]
    assert incoming == {
        "id_session": token,
        "e164_in": acme.number,
        "id_call": call_id,
        "caller_id_num": "33612345678",
        "id_op": acme.id_agent,
        "id_groupe": acme.id_group,
        "wait": 0,
        "order_number": "5151",
    }
    frame = page.frame_locator("#vm")
    frame.locator('.call[data-phase="offered"] [data-action="answer"]').click()
    frame.locator('.call[data-phase="connected"] [data-action="hangup"]').click()
    ended = eventually(lambda: seen(page, "end"))[0]["data"]
    assert ended["id_call"] == call_id
    assert ended["outcome"] == "answered"
    assert ended["disconnect_reason"] == "normal"
    assert ended["ended_by"] == "operator"
    assert ended["order_number"] == "5151"
    for name in ("duration", "duration_ring", "duration_svi", "duration_wait", "duration_comm"):
        assert isinstance(ended[name], int | float), name
    time.sleep(0.5)
    kinds = [n["kind"] for n in seen(page)]
    calls = [k for k in kinds if k != "status"]
    assert calls == ["in", "end"]  # each once
    statuses = [n["data"]["status"] for n in seen(page, "status")]
    assert statuses[:2] == ["offline", "online"]
    assert "busy" in statuses
    assert kinds.index("in") < kinds.index("end")


def test_the_guides_iframe_with_a_token_in_its_url_needs_no_login_call(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    src = (
        f"{server.base_url}/operateurs/index.htm?engine=standard&version=1&sound=off"
        f"&token_session={token}"
    )
    open_crm(page, crm, harness(server.base_url, iframe=src))
    live(page)
    status = eventually(lambda: seen(page, "status"))[0]["data"]
    assert status == {
        "status": "offline",
        "presence": "offline",
        "activity": "idle",
        "id_op": acme.id_agent,
    }


def test_commands_issued_before_the_banner_is_ready_are_queued_not_lost(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    script = (
        f"keep('login', crm.login({json.dumps(token)}));"
        "keep('hide_logout', crm.hide_logout());"
        "keep('publish', crm.publish({status: 'break'}));"
    )
    open_crm(page, crm, harness(server.base_url, script=script, delay_ms=800))
    results = eventually(lambda: len(r := page.evaluate("window.results")) == 3 and r)
    assert [(r["name"], r["ok"]) for r in results] == [
        ("login", True),
        ("hide_logout", True),
        ("publish", True),
    ]
    expect(page.frame_locator("#vm").locator("#logout")).to_be_hidden()
    assert state_of(server, token)["operator"]["presence"] == "break"


# --- coded errors --------------------------------------------------------------------------------


def test_commands_fail_with_a_code_never_silently(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    open_crm(page, crm, harness(server.base_url))
    assert evaluate(page, "crm.login('')")["code"] == "invalid_argument"
    assert evaluate(page, "crm.login({})")["code"] == "invalid_argument"
    assert evaluate(page, "crm.call('33612345678')")["code"] == "not_logged_in"
    assert evaluate(page, "crm.publish({status: 'online'})")["code"] == "not_logged_in"
    assert evaluate(page, "crm.publish({status: 'asleep'})")["code"] == "invalid_argument"
    assert evaluate(page, "crm.login('vm_' + 'x'.repeat(43))")["code"] == "invalid_token"
    bad = evaluate(page, "crm.login_credential('ana@acme.example', 'not-her-password')")
    assert bad["code"] == "invalid_credentials"
    assert evaluate(page, "crm.login_credential('', '')")["code"] == "invalid_argument"
    supervisor = token_for(server, acme, id_admin=acme.id_admin)
    assert evaluate(page, f"crm.login({json.dumps(supervisor)})")["code"] == "wrong_role"
    thrown = page.evaluate(
        "(() => { try { crm.set_notif_in('not a function'); } catch (e) { return e.code; } })()"
    )
    assert thrown == "invalid_argument"
    assert evaluate(page, f"crm.login_credential({json.dumps(acme.agent_email)}, 'ana-password')")[
        "ok"
    ]
    live(page)
    assert evaluate(page, "crm.call('12')")["code"] == "invalid_phone_number"
    assert evaluate(page, "crm.call('33618220000')")["code"] == "not_available"  # offline


def test_without_a_banner_commands_end_not_ready(
    page: Page, server: LiveServer, crm: CrmSite
) -> None:
    html = harness(server.base_url, iframe="about:blank", cnx_attributes='data-ready-timeout="800"')
    open_crm(page, crm, html)
    assert evaluate(page, "crm.hide_logout()")["code"] == "not_ready"


def test_a_banner_that_stops_answering_gives_timeout(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    with dropping_proxy(server.port) as proxy:
        origin = proxy.base_url
        with server.client() as client:
            client.patch("/api/v1/account", auth=acme.auth, json={"allowed_origins": [crm.origin]})
        token = token_for(server, acme, id_agent=acme.id_agent)
        html = harness(origin, cnx_attributes='data-command-timeout="1500"')
        open_crm(page, crm, html)
        assert evaluate(page, f"crm.login({json.dumps(token)})")["ok"]
        assert evaluate(page, "crm.publish({status: 'online'})")["ok"]
        proxy.stall()
        assert evaluate(page, "crm.call('33618220000')")["code"] == "timeout"


# --- click-to-call ------------------------------------------------------------------------------


def test_crm_call_starts_the_call_and_the_ticket_follows_it(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    with server.client() as client:
        client.patch(
            "/api/v1/account", auth=acme.auth, json={"settings": {"caller_id": acme.number}}
        )
    token = token_for(server, acme, id_agent=acme.id_agent)
    open_crm(page, crm, harness(server.base_url))
    evaluate(page, f"crm.login({json.dumps(token)})")
    evaluate(page, "crm.publish({status: 'online'})")
    started = evaluate(page, "crm.call('+33 6 18 22 00 00', 'ZD-4242')")
    assert started["ok"], started
    call_id = started["value"]["id_call"]
    outgoing = eventually(lambda: seen(page, "out"))[0]["data"]
    assert outgoing == {
        "id_session": token,
        "e164_out": acme.number,
        "id_call": call_id,
        "caller_id_num": "33618220000",
        "id_op": acme.id_agent,
        "id_groupe": None,
        "ticket_id": "ZD-4242",
    }
    frame = page.frame_locator("#vm")
    expect(frame.locator("#dial-number")).to_have_value("+33 6 18 22 00 00")
    frame.locator('.call[data-phase="connected"] [data-action="hangup"]').click()
    ended = eventually(lambda: seen(page, "end"))[0]["data"]
    assert (ended["id_call"], ended["ticket_id"], ended["direction"]) == (call_id, "ZD-4242", "out")
    assert (ended["caller_id_num"], ended["e164_out"]) == ("33618220000", acme.number)
    with server.client() as client:
        records = client.get("/api/v1/call-records", auth=acme.auth).json()["items"]
    assert [r["ticket_id"] for r in records if r["id_call"] == call_id] == ["ZD-4242"]


def test_a_click_to_call_the_customer_never_answers_ends_in_the_crm_too(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    async def busy_customer(container: Container) -> None:
        assert isinstance(container.switch, SimulatedSwitch)
        container.switch.set_customer("33618220000", Busy())

    server.call_soon(busy_customer)
    token = token_for(server, acme, id_agent=acme.id_agent)
    open_crm(page, crm, harness(server.base_url))
    evaluate(page, f"crm.login({json.dumps(token)})")
    evaluate(page, "crm.publish({status: 'online'})")
    started = evaluate(page, "crm.call('33618220000')")
    assert started["ok"], started
    call_id = started["value"]["id_call"]
    ended = eventually(lambda: seen(page, "end"))[0]["data"]
    assert (ended["id_call"], ended["outcome"], ended["disconnect_reason"]) == (
        call_id,
        "failed",
        "busy",
    )
    expect(page.frame_locator("#vm").locator(".call")).to_have_count(0)
    assert [n["kind"] for n in seen(page) if n["kind"] != "status"] == ["out", "end"]


# --- omnichannel ---------------------------------------------------------------------------------

CHANNEL = """
window.channel = {
  published: [], listener: null,
  subscribe: function (fn) { channel.listener = fn; },
  unsubscribe: function () { channel.listener = null; channel.unsubscribed = true; },
  publish: function (message) { channel.published.push(message.status); },
  emit: function (status) { channel.listener({status: status}); },
};
"""


def test_omnichannel_keeps_the_crms_channel_and_the_phone_in_step_without_echo(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    open_crm(page, crm, harness(server.base_url, script=CHANNEL))
    evaluate(page, f"crm.login({json.dumps(token)})")
    live(page)
    page.evaluate("crm.set_omnichannel(channel)")
    eventually(lambda: page.evaluate("channel.published") == ["offline"])
    # The phone changes (a supervisor forces it): the channel follows.
    supervisor = token_for(server, acme, id_admin=acme.id_admin)
    with server.client() as client:
        client.put(
            f"/api/v1/supervision/operators/{acme.id_agent}/status",
            headers={"Authorization": f"Bearer {supervisor}"},
            json={"status": "break"},
        )
    eventually(lambda: page.evaluate("channel.published") == ["offline", "break"])
    # The channel changes: the phone follows, and nothing echoes back to the channel.
    page.evaluate("channel.emit('online')")
    eventually(lambda: state_of(server, token)["operator"]["presence"] == "online")
    eventually(lambda: any(n["data"]["status"] == "online" for n in seen(page, "status")))
    time.sleep(0.5)
    assert page.evaluate("channel.published") == ["offline", "break"]
    page.evaluate("crm.set_omnichannel(null)")
    assert page.evaluate("channel.unsubscribed") is True


def test_subscribe_and_unsubscribe_to_status_messages(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    script = "window.heard = []; crm.subscribe(function (m) { heard.push(m.status); });"
    open_crm(page, crm, harness(server.base_url, script=script))
    evaluate(page, f"crm.login({json.dumps(token)})")
    eventually(lambda: page.evaluate("heard") == ["offline"])
    evaluate(page, "crm.publish({status: 'busy'})")
    eventually(lambda: page.evaluate("heard") == ["offline", "busy"])
    page.evaluate("crm.unsubscribe()")
    evaluate(page, "crm.publish({status: 'online'})")
    eventually(lambda: any(n["data"]["status"] == "online" for n in seen(page, "status")))
    assert page.evaluate("heard") == ["offline", "busy"]


# --- sessions ------------------------------------------------------------------------------------


def test_deleting_the_token_calls_set_auth_invalid(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    open_crm(page, crm, harness(server.base_url))
    evaluate(page, f"crm.login({json.dumps(token)})")
    live(page)
    with server.client() as client:
        client.request("DELETE", f"/vm/token/{token}", auth=acme.auth)
    eventually(lambda: seen(page, "auth_invalid"), timeout=3)
    assert evaluate(page, "crm.publish({status: 'online'})")["code"] == "not_logged_in"


def test_a_crm_page_reloaded_during_a_call_learns_the_call_and_the_status(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    script = f"crm.login({json.dumps(token)});"
    open_crm(page, crm, harness(server.base_url, script=script))
    live(page)
    evaluate(page, "crm.publish({status: 'online'})")
    call_id = call_in(server, acme)
    eventually(lambda: seen(page, "in"))
    page.frame_locator("#vm").locator('[data-action="answer"]').click()
    eventually(lambda: any(n["data"]["status"] == "busy" for n in seen(page, "status")))
    page.reload()
    live(page)
    incoming = eventually(lambda: seen(page, "in"))
    assert [n["data"]["id_call"] for n in incoming] == [call_id]
    assert eventually(lambda: seen(page, "status"))[-1]["data"]["status"] == "busy"
    expect(page.frame_locator("#vm").locator('.call[data-phase="connected"]')).to_have_count(1)


# --- origins, both ways --------------------------------------------------------------------------


def test_cnx_ignores_messages_that_do_not_come_from_the_banner(
    page: Page, server: LiveServer, acme: SeededAccount, crm: CrmSite
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    open_crm(page, crm, harness(server.base_url, script=f"crm.login({json.dumps(token)});"))
    live(page)
    forged = {
        "protocol": "vm.cnx",
        "version": 1,
        "type": "notify",
        "kind": "in",
        "data": {"id_call": "forged", "caller_id_num": "666"},
    }
    # From the CRM page itself, and from a frame of another origin inside it.
    page.evaluate(f"window.postMessage({json.dumps(forged)}, '*')")
    crm.pages["/evil"] = f"<script>parent.postMessage({json.dumps(forged)}, '*');</script>"
    page.evaluate(
        "(() => { const f = document.createElement('iframe');"
        f" f.src = {json.dumps(crm.url('/evil', host='127.0.0.1'))};"
        " document.body.append(f); })()"
    )
    time.sleep(1.0)
    assert seen(page, "in") == []


def test_the_banner_refuses_a_crm_origin_its_account_does_not_allow(
    page: Page, server: LiveServer, acme: SeededAccount, globex: SeededAccount, crm: CrmSite
) -> None:
    # The page may frame the login form (acme allows it), but globex's operator may not be
    # used from it: globex allows no origin.
    token = token_for(server, globex, id_agent=globex.id_agent)
    open_crm(page, crm, harness(server.base_url))
    assert evaluate(page, f"crm.login({json.dumps(token)})")["code"] == "forbidden_origin"
    with server.client() as client:
        client.post(
            "/api/v1/sim/calls",
            auth=globex.auth,
            json={"from": "33612345678", "to": globex.number},
        )
    time.sleep(0.5)
    assert [n["kind"] for n in seen(page)] == []
    expect(page.frame_locator("#vm").locator("#out-message")).to_contain_text("may not embed")


def test_a_hostile_page_opening_the_banner_can_neither_command_it_nor_hear_it(
    context: BrowserContext, page: Page, server: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(server, acme, id_agent=acme.id_agent)
    with crm_site() as evil:  # an origin acme never allowed
        url = (
            f"{server.base_url}/operateurs/index.htm?engine=standard&version=1&sound=off"
            f"&token_session={token}"
        )
        evil.pages["/evil"] = f"""<script>
window.heard = [];
addEventListener('message', function (e) {{ heard.push(e.data); }});
function attack() {{
  var banner = window.open({json.dumps(url)}, 'vm');
  setInterval(function () {{
    banner.postMessage({{protocol: 'vm.cnx', version: 1, type: 'hello'}}, '*');
    banner.postMessage({{protocol: 'vm.cnx', version: 1, type: 'command', id: 1,
                         method: 'publish', args: ['online']}}, '*');
  }}, 100);
}}
</script><button onclick="attack()">go</button>"""
        page.goto(evil.url("/evil"))
        with context.expect_page() as opened:
            page.click("button")
        opened.value.wait_for_selector("#conn[data-state=live]")
        time.sleep(1.5)
        assert page.evaluate("window.heard") == []
    assert state_of(server, token)["operator"]["presence"] == "offline"


def test_cnx_js_and_its_declarations_are_served(server: LiveServer) -> None:
    script = httpx.get(f"{server.base_url}/cnx.js")
    declarations = httpx.get(f"{server.base_url}/cnx.d.ts")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    for method in (
        "login", "login_credential", "hide_logout", "set_auth_invalid", "set_notif_in",
        "set_notif_out", "set_notif_status", "set_notif_endCall", "set_notif_missedCall",
        "call", "set_omnichannel", "subscribe", "unsubscribe", "publish",
    ):  # fmt: skip
        assert f"{method}:" in script.text, method
        assert f"{method}(" in declarations.text, method
    assert declarations.status_code == 200
