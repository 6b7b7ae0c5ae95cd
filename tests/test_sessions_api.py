"""Pages' own sessions and what they read: ``POST /vm/login``, ``POST /vm/logout``, logout
setting operators offline, ``GET /api/v1/me/directory``, ``/api/v1/me/state``; and the pages
themselves with their security headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support import (
    LiveServer,
    SeededAccount,
    bearer,
    live_server,
    make_settings,
    run_on,
    token_for,
)
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "", sim_prompt_seconds=0.05, sim_customer_answer_after=0.05)


@pytest.fixture
def app(settings: Settings, seeded: tuple[SeededAccount, SeededAccount]) -> Iterator[LiveServer]:
    with live_server(settings) as running:
        yield running


def login(server: LiveServer, source: str = "127.0.0.1", **body: Any) -> httpx.Response:
    with server.client(source=source) as client:
        return client.post("/vm/login", json=body)


def drain_until_closed(ws: ClientConnection) -> ConnectionClosed:
    while True:
        try:
            ws.recv(timeout=5)
        except ConnectionClosed as closed:
            return closed


def presence_of(server: LiveServer, account: SeededAccount, id_agent: int) -> str:
    supervisor = token_for(server, account, id_admin=account.id_admin)
    with server.client() as client:
        live = client.get("/api/v1/supervision/live", headers=bearer(supervisor)).json()
    presence: str = next(o for o in live["operators"] if o["id_op"] == id_agent)["presence"]
    return presence


def set_status(server: LiveServer, token: str, status: str) -> None:
    with server.client() as client:
        answer = client.put("/api/v1/me/status", headers=bearer(token), json={"status": status})
    assert answer.status_code == 200, answer.text


# --- POST /vm/login ----------------------------------------------------------------------------


def test_an_operator_logs_in_with_email_and_password(app: LiveServer, acme: SeededAccount) -> None:
    answer = login(app, login=acme.agent_email.upper(), password=acme.agent_password)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["user_type"], body["id_agent"]) == ("agent", acme.id_agent)
    with app.client() as client:
        me = client.get("/vm/me", headers=bearer(body["token"])).json()
    assert me["email"] == acme.agent_email


def test_a_supervisor_logs_in_with_user_type_admin(app: LiveServer, acme: SeededAccount) -> None:
    answer = login(app, login=acme.admin_email, password="sam-password", user_type="admin")
    assert answer.status_code == 200, answer.text
    assert answer.json()["id_admin"] == acme.id_admin
    as_agent = login(app, login=acme.admin_email, password="sam-password")
    assert as_agent.status_code == 401


@pytest.mark.parametrize(
    ("who", "password"),
    [
        ("ana@acme.example", "wrong-password"),
        ("nobody@acme.example", "ana-password"),
        ("bob@acme.example", "anything-at-all"),  # Bob has no password: no login form for him
    ],
)
def test_wrong_credentials_get_the_same_401(
    app: LiveServer, acme: SeededAccount, who: str, password: str
) -> None:
    answer = login(app, login=who, password=password)
    assert answer.status_code == 401
    assert answer.json()["err_msg"] == "wrong email or password"
    assert "token" not in answer.json()


def test_the_password_decides_between_accounts_sharing_an_email(
    settings: Settings, seeded: tuple[SeededAccount, SeededAccount]
) -> None:
    acme, globex = seeded

    async def share_email(container: Container) -> None:
        await container.directory.create_operator(
            globex.id, name="Ana G", email=acme.agent_email, password="globex-ana-password"
        )

    run_on(settings, share_email)
    with live_server(settings) as app:
        mine = login(app, login=acme.agent_email, password="globex-ana-password")
        theirs = login(app, login=acme.agent_email, password=acme.agent_password)
        with app.client() as client:
            me = client.get("/vm/me", headers=bearer(mine.json()["token"])).json()
    assert me["account"] == "globex Ltd"
    assert theirs.json()["id_agent"] == acme.id_agent


def test_failed_logins_are_throttled_per_client(app: LiveServer, acme: SeededAccount) -> None:
    statuses = [
        login(
            app, source="127.0.0.5", login=acme.agent_email, password="wrong-password"
        ).status_code
        for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    throttled = login(app, source="127.0.0.5", login=acme.agent_email, password="ana-password")
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    elsewhere = login(app, source="127.0.0.6", login=acme.agent_email, password="ana-password")
    assert elsewhere.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"login": "ana@acme.example"},
        {"login": "ana@acme.example", "password": 12345678},
        {"login": "ana@acme.example", "password": "x", "account": "acme"},
        {"login": "ana@acme.example", "password": "x", "user_type": "root"},
        {"login": "a" * 321, "password": "x"},
        {"login": "ana@acme.example", "password": "p" * 257},
        [],
    ],
)
def test_malformed_login_bodies_get_400(app: LiveServer, body: Any) -> None:
    with app.client() as client:
        answer = client.post("/vm/login", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["err_code"] in ("validation_failed", "invalid_json", "invalid_input")


def test_login_refuses_forms_and_oversized_bodies(app: LiveServer) -> None:
    with app.client() as client:
        form = client.post("/vm/login", data={"login": "a@b.example", "password": "x"})
        huge = client.post(
            "/vm/login",
            content=json.dumps({"login": "a@b.example", "password": "x" * 100_000}),
            headers={"Content-Type": "application/json"},
        )
    assert form.status_code == 415
    assert huge.status_code == 413


# --- logout ------------------------------------------------------------------------------------


def test_logout_ends_the_session_and_closes_its_event_stream(
    app: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(app, acme, id_agent=acme.id_agent)
    set_status(app, token, "online")
    with connect(f"ws://127.0.0.1:{app.port}/vm/events?token_session={token}") as ws:
        assert json.loads(ws.recv(timeout=5))["kind"] == "hello"
        with app.client() as client:
            answer = client.post("/vm/logout", headers=bearer(token))
            assert answer.status_code == 200, answer.text
            again = client.post("/vm/logout", headers=bearer(token))
            me = client.get("/vm/me", headers=bearer(token))
        closed = drain_until_closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4401
    assert again.status_code == 401
    assert me.status_code == 401
    assert presence_of(app, acme, acme.id_agent) == "offline"


def test_logout_needs_a_bearer_token(app: LiveServer) -> None:
    with app.client() as client:
        missing = client.post("/vm/logout")
        bogus = client.post("/vm/logout", headers=bearer("vm_" + "a" * 43))
        hostile = client.post("/vm/logout", headers=bearer("<script>" * 100))
    assert [r.status_code for r in (missing, bogus, hostile)] == [401, 401, 401]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_operator_stays_online_while_another_session_lives(
    app: LiveServer, acme: SeededAccount
) -> None:
    first = token_for(app, acme, id_agent=acme.id_agent)
    second = token_for(app, acme, id_agent=acme.id_agent)
    set_status(app, first, "online")
    with app.client() as client:
        deleted = client.request("DELETE", f"/vm/token/{first}", auth=acme.auth)
    assert deleted.status_code == 200
    assert presence_of(app, acme, acme.id_agent) == "online"
    with app.client() as client:
        client.request("DELETE", f"/vm/token/{second}", auth=acme.auth)
    assert presence_of(app, acme, acme.id_agent) == "offline"


# --- what pages read ----------------------------------------------------------------------------


def test_the_directory_of_a_page_names_its_accounts_groups_numbers_and_colleagues(
    app: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(app, acme, id_agent=acme.id_agent)
    with app.client() as client:
        client.patch(
            "/api/v1/account",
            auth=acme.auth,
            json={
                "crm_url": "https://crm.acme.example/fiche",
                "allowed_origins": ["https://crm.acme.example"],
            },
        )
        directory = client.get("/api/v1/me/directory", headers=bearer(token)).json()
    assert directory["me"] == {
        "user_type": "agent",
        "id": acme.id_agent,
        "name": "Ana",
        "email": acme.agent_email,
    }
    assert directory["account"]["crm_url"] == "https://crm.acme.example/fiche"
    assert directory["account"]["screen_pop"] == "presentation"
    assert directory["account"]["allowed_origins"] == ["https://crm.acme.example"]
    assert directory["groups"] == [
        {"id_group": acme.id_group, "name": "Support", "wrap_up": 10.0, "crm_url": None}
    ]
    assert directory["numbers"] == [
        {
            "e164": acme.number,
            "label": "Hotline",
            "id_group": acme.id_group,
            "display": "+33 1 70 20 02 00",
        }
    ]
    assert {o["name"]: o["status"] for o in directory["operators"]} == {
        "Ana": "offline",
        "Bob": "offline",
    }


def test_a_directory_shows_only_the_tokens_own_account(
    app: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    token = token_for(app, globex, id_admin=globex.id_admin)
    with app.client() as client:
        directory = client.get("/api/v1/me/directory", headers=bearer(token)).json()
        anonymous = client.get("/api/v1/me/directory")
    assert directory["me"]["user_type"] == "admin"
    assert [n["e164"] for n in directory["numbers"]] == [globex.number]
    assert acme.agent_email not in json.dumps(directory)
    assert anonymous.status_code == 401


def test_my_state_carries_the_stream_position_and_the_servers_time(
    app: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(app, acme, id_agent=acme.id_agent)
    set_status(app, token, "online")
    with app.client() as client:
        state = client.get("/api/v1/me/state", headers=bearer(token)).json()
    assert state["seq"] >= 1
    assert state["now"].endswith("Z")
    assert state["operator"]["status"] == "online"
    assert state["operator"]["status_since"].endswith("Z")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/account", {"settings": {"screen_pop": "sometimes"}}, "settings.screen_pop"),
        ("/api/v1/groups/{group}", {"settings": {"crm_url": "javascript:alert(1)"}}, None),
        ("/api/v1/groups/{group}", {"settings": {"crm_url": 42}}, None),
    ],
)
def test_screen_pop_settings_are_checked(
    app: LiveServer, acme: SeededAccount, path: str, body: dict[str, Any], field: str | None
) -> None:
    with app.client() as client:
        answer = client.patch(path.format(group=acme.id_group), auth=acme.auth, json=body)
        account = client.get("/api/v1/account", auth=acme.auth).json()
    assert answer.status_code == 400, answer.text
    if field:
        assert answer.json()["details"]["field"] == field
    assert account["settings"] == {}


# --- the pages ---------------------------------------------------------------------------------


def frame_ancestors(response: httpx.Response) -> list[str]:
    policy = response.headers["Content-Security-Policy"]
    directive = next(d for d in policy.split("; ") if d.startswith("frame-ancestors"))
    return directive.split()[1:]


def test_the_banner_may_be_framed_only_by_the_tokens_account_origins(
    app: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    with app.client() as client:
        client.patch(
            "/api/v1/account",
            auth=acme.auth,
            json={"allowed_origins": ["https://crm.acme.example"]},
        )
        client.patch(
            "/api/v1/account",
            auth=globex.auth,
            json={"allowed_origins": ["https://globex.example"]},
        )
        token = token_for(app, acme, id_agent=acme.id_agent)
        page = client.get("/operateurs/index.htm", params={"token_session": token})
        anonymous = client.get("/operateurs/index.htm")
        hostile = client.get("/operateurs/index.htm", params={"token_session": "'; script-src *"})
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert frame_ancestors(page) == ["'self'", "https://crm.acme.example"]
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    # Before a login the account is unknown, and the policy names no customer.
    assert frame_ancestors(anonymous) == ["'self'"]
    assert frame_ancestors(hostile) == ["'self'"]


def test_a_pages_policy_names_its_own_accounts_origins_only(
    app: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    with app.client() as client:
        for account, origins in ((acme, ["https://crm.acme.example"]), (globex, GLOBEX)):
            client.patch("/api/v1/account", auth=account.auth, json={"allowed_origins": origins})
        agent = token_for(app, acme, id_agent=acme.id_agent)
        admin = token_for(app, acme, id_admin=acme.id_admin)
        # embedded by Globex's CRM, with Acme's token: Acme's origins, never Globex's
        embedded = {"Referer": "https://globex.example/crm/contacts?id=4"}
        banner = client.get(f"/operateurs/index.htm?token_session={agent}", headers=embedded)
        supervisor = client.get(f"/superviseur/index.htm?token_session={admin}")
        deleted = token_for(app, acme, id_agent=acme.id_agent)
        client.request("DELETE", f"/vm/token/{deleted}", auth=acme.auth)
        stale = client.get(f"/operateurs/index.htm?token_session={deleted}")
    assert frame_ancestors(banner) == ["'self'", "https://crm.acme.example"]
    assert frame_ancestors(supervisor) == ["'self'", "https://crm.acme.example"]
    assert frame_ancestors(stale) == ["'self'"]


GLOBEX = ["https://globex.example", "https://other.globex.example"]


@pytest.mark.parametrize(
    ("referer", "ancestors"),
    [
        (None, ["'self'"]),
        ("https://globex.example/crm/login", ["'self'", "https://globex.example"]),
        ("https://crm.acme.example/", ["'self'", "https://crm.acme.example"]),
        ("https://unknown.example/", ["'self'"]),
        ("http://globex.example/", ["'self'"]),  # another origin: another scheme
        ("https://globex.example:8443/", ["'self'"]),
        ("not a url", ["'self'"]),
        ("https://[::1/", ["'self'"]),
    ],
)
def test_the_login_form_may_be_framed_by_the_one_allowed_crm_embedding_it(
    app: LiveServer,
    acme: SeededAccount,
    globex: SeededAccount,
    referer: str | None,
    ancestors: list[str],
) -> None:
    """The guide's ``crm.login_credential`` fills the banner's login form inside the CRM's
    iframe, before any token: the embedding page (its Referer, sent by browsers by default)
    is allowed when some account allows it, and the answer names no other origin."""
    with app.client() as client:
        client.patch(
            "/api/v1/account",
            auth=acme.auth,
            json={"allowed_origins": ["https://crm.acme.example"]},
        )
        client.patch("/api/v1/account", auth=globex.auth, json={"allowed_origins": GLOBEX})
        headers = {"Referer": referer} if referer else {}
        page = client.get("/operateurs/index.htm", headers=headers)
    assert page.status_code == 200
    assert frame_ancestors(page) == ancestors


def test_the_banners_assets_are_served_by_the_product(app: LiveServer) -> None:
    with app.client() as client:
        html = client.get("/operateurs/index.htm").text
        script = client.get("/static/js/banner.js")
        style = client.get("/static/css/banner.css")
        redirect = client.get("/operateurs/?fiche_num=33618220000", follow_redirects=False)
        missing = client.get("/static/js/nothing.js")
        escape = client.get("/static/../pages.py")
    assert 'src="/static/js/banner.js"' in html
    assert "http://" not in html
    assert "https://" not in html
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    assert style.status_code == 200
    assert redirect.status_code in (302, 307)
    assert redirect.headers["Location"] == "/operateurs/index.htm?fiche_num=33618220000"
    assert missing.status_code == 404
    assert escape.status_code == 404
