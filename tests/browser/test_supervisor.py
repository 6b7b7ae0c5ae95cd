"""The supervisor page (/superviseur/index.htm) in headless Chromium, against the real server,
the simulated switch and the event stream: access, live operators and queues, figures that
equal the call records, charts, records and CSV, forcing a status, resume, languages, XSS."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.support import banner_url, dropping_proxy, eventually, open_banner
from tests.support import LiveServer, SeededAccount, bearer, token_for
from tests.test_call_records import rec
from tests.test_calls_api import place_call
from voicemgmt.adapters.sql.call_records import SqlCallRecords
from voicemgmt.bootstrap import Container
from voicemgmt.domain.phone import display_number
from voicemgmt.domain.routing.model import CallRecord, Outcome, Side
from voicemgmt.services.call_records import record_json

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
OUTCOMES = ("answered", "abandoned", "missed", "overflowed", "failed")


@pytest.fixture
def wide(browser: Browser) -> Iterator[BrowserContext]:
    """A laptop's screen, as a supervisor's second screen is at least."""
    created = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    yield created
    created.close()


def supervisor_url(base: str, token: str | None, **params: str) -> str:
    query = dict(params)
    if token is not None:
        query["token_session"] = token
    return f"{base}/superviseur/index.htm?" + str(httpx.QueryParams(query))


def open_supervisor(page: Page, server: LiveServer, acme: SeededAccount, **params: str) -> str:
    token = token_for(server, acme, id_admin=acme.id_admin)
    page.goto(supervisor_url(server.base_url, token, **params))
    page.wait_for_selector("#conn[data-state=live]")
    page.wait_for_selector("#main[data-reports-at]")
    return token


def group_settings(server: LiveServer, acme: SeededAccount, **settings: Any) -> None:
    with server.client() as client:
        answer = client.patch(
            f"/api/v1/groups/{acme.id_group}", auth=acme.auth, json={"settings": settings}
        )
    assert answer.status_code == 200, answer.text


def records_today(server: LiveServer, acme: SeededAccount, since: str) -> list[dict[str, Any]]:
    with server.client() as client:
        answer = client.get(
            "/api/v1/call-records", auth=acme.auth, params={"since": since, "limit": 1000}
        )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def set_status(server: LiveServer, token: str, status: str) -> None:
    with server.client() as client:
        answer = client.put("/api/v1/me/status", json={"status": status}, headers=bearer(token))
    assert answer.status_code == 200, answer.text


class AnsweringOperator(threading.Thread):
    """An operator at work through the call-control API: answers what rings after a short
    delay, talks a little, hangs up, until stopped."""

    def __init__(self, server: LiveServer, token: str, talk: float) -> None:
        super().__init__(daemon=True)
        self.server, self.token, self.talk = server, token, talk
        self.done = threading.Event()
        self.answered = 0

    def run(self) -> None:
        with self.server.client(headers=bearer(self.token)) as client:
            while not self.done.is_set():
                state = client.get("/api/v1/me/state").json()
                me = state["operator"]["id_op"]
                ringing = [c["id_call"] for c in state["calls"] if me in c["ringing"]]
                if not ringing:
                    time.sleep(0.05)
                    continue
                time.sleep(0.15)
                if client.post(f"/api/v1/me/calls/{ringing[0]}/answer").status_code == 200:
                    self.answered += 1
                    time.sleep(self.talk)
                    client.post(f"/api/v1/me/calls/{ringing[0]}/hangup")

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


def expected_figures(records: list[dict[str, Any]], threshold: float) -> dict[Any, dict[str, Any]]:
    """The documented definitions, recomputed from the records (inbound calls with a group)."""
    inbound = [r for r in records if r["direction"] == "in" and r["id_group"] is not None]

    def figures(calls: list[dict[str, Any]]) -> dict[str, Any]:
        answered = [r for r in calls if r["outcome"] == "answered"]
        queued = [r for r in calls if r["duration_wait"] > 0 or r["outcome"] == "answered"]
        within = [r for r in answered if r["duration_wait"] <= threshold]
        waits = [r["duration_wait"] for r in queued]
        return {
            "offered": len(calls),
            **{o: sum(1 for r in calls if r["outcome"] == o) for o in OUTCOMES},
            "average_wait": sum(waits) / len(waits) if waits else None,
            "longest_wait": max(waits) if waits else None,
            "average_talk": sum(r["duration_comm"] for r in answered) / len(answered)
            if answered
            else None,
            "service_level": len(within) / len(calls) if calls else None,
        }

    groups = {r["id_group"] for r in inbound}
    found: dict[Any, dict[str, Any]] = {
        g: figures([r for r in inbound if r["id_group"] == g]) for g in groups
    }
    found["total"] = figures(inbound)
    return found


def same(page_value: str, expected: Any) -> bool:
    if expected is None:
        return page_value == ""
    return abs(float(page_value) - float(expected)) <= 0.002


def page_since(page: Page) -> str:
    since: str = page.evaluate(
        "(() => { const d = new Date(); d.setHours(0, 0, 0, 0); return d.toISOString(); })()"
    )
    return since


# --- access ----------------------------------------------------------------------------------


def test_an_operators_token_is_refused_with_a_clear_message(
    wide: BrowserContext, server: LiveServer, acme: SeededAccount
) -> None:
    page = wide.new_page()
    operator = token_for(server, acme, id_agent=acme.id_agent)
    page.goto(supervisor_url(server.base_url, operator))
    expect(page.locator("#logged-out")).to_have_attribute("data-reason", "wrong_role")
    expect(page.locator("#out-message")).to_contain_text("operator's session")
    assert page.locator("#main").is_hidden()
    assert page.locator("#operators tbody tr").count() == 0

    page.goto(supervisor_url(server.base_url, "not-a-token"))
    expect(page.locator("#logged-out")).to_have_attribute("data-reason", "invalid_token")
    page.goto(supervisor_url(server.base_url, None))
    expect(page.locator("#logged-out")).to_have_attribute("data-reason", "no_token")
    expect(page.locator("#out-message")).to_contain_text("token_session")


def test_deleting_the_token_logs_the_page_out_within_a_second(
    wide: BrowserContext, server: LiveServer, acme: SeededAccount
) -> None:
    page = wide.new_page()
    token = open_supervisor(page, server, acme)
    with server.client() as client:
        answer = client.request(
            "DELETE", f"/vm/token/{token}", auth=acme.auth, json={"id_admin": acme.id_admin}
        )
    assert answer.status_code == 200, answer.text
    page.wait_for_selector("#logged-out:not([hidden])", timeout=1000)
    expect(page.locator("#logged-out")).to_have_attribute("data-reason", "invalid_token")
    assert page.locator("#main").is_hidden()


def test_the_page_answers_with_a_strict_content_security_policy(
    server: LiveServer, acme: SeededAccount
) -> None:
    token = token_for(server, acme, id_admin=acme.id_admin)
    with server.client() as client:
        answer = client.get(supervisor_url("", token))
        redirect = client.get(f"/superviseur?token_session={token}")
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'self'" in policy
    assert "cdn" not in answer.text.lower()
    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"/superviseur/index.htm?token_session={token}"


# --- live operators and queues ---------------------------------------------------------------


def test_operators_and_queues_follow_live(
    wide: BrowserContext, server: LiveServer, acme: SeededAccount
) -> None:
    group_settings(server, acme, wrap_up=0)
    page = wide.new_page()
    open_supervisor(page, server, acme)
    ana_row = page.locator(f'#operators tr[data-id-op="{acme.id_agent}"]')
    expect(ana_row.locator('[data-field="status"]')).to_have_attribute("data-status", "offline")
    group_row = page.locator(f'#queues tr[data-id-group="{acme.id_group}"]')
    expect(group_row.locator('[data-field="waiting"]')).to_have_text("0")

    first = place_call(server, acme)  # nobody is online: the call waits
    second = place_call(server, acme, **{"from": "33698765432"})
    expect(group_row.locator('[data-field="waiting"]')).to_have_text("2")
    expect(page.locator("#waiting li[data-id-call]")).to_have_count(2)
    expect(page.locator(f'#waiting li[data-id-call="{first}"] .number')).to_have_text(
        "+33 6 12 34 56 78"
    )
    longest = group_row.locator('[data-field="longest_wait"]')
    eventually(lambda: int(longest.get_attribute("data-value") or 0) >= 2, timeout=5)  # ticks

    ana = token_for(server, acme, id_agent=acme.id_agent)
    set_status(server, ana, "online")
    expect(ana_row.locator('[data-field="status"]')).to_have_attribute("data-status", "online")
    expect(ana_row.locator('[data-field="call"]')).to_have_attribute("data-id-call", first)
    expect(ana_row.locator('[data-field="call"]')).to_contain_text("ringing")
    with server.client(headers=bearer(ana)) as client:
        assert client.post(f"/api/v1/me/calls/{first}/answer").status_code == 200
        expect(ana_row.locator('[data-field="status"]')).to_have_attribute("data-status", "busy")
        expect(ana_row.locator('[data-field="call"]')).not_to_contain_text("ringing")
        expect(group_row.locator('[data-field="waiting"]')).to_have_text("1")
        expect(group_row.locator('[data-field="busy"]')).to_have_text("1")
        assert client.post(f"/api/v1/me/calls/{first}/hangup").status_code == 200
    expect(ana_row.locator('[data-field="handled"]')).to_have_text("1")
    # she is still available (no wrap-up here): the second call is hers now
    expect(ana_row.locator('[data-field="call"]')).to_have_attribute("data-id-call", second)
    expect(group_row.locator('[data-field="waiting"]')).to_have_text("1")  # ringing still waits


def test_a_forced_status_reaches_the_operators_banner(
    wide: BrowserContext, context: BrowserContext, server: LiveServer, acme: SeededAccount
) -> None:
    banner = context.new_page()
    ana = token_for(server, acme, id_agent=acme.id_agent)
    open_banner(banner, banner_url(server.base_url, ana))
    banner.select_option("#status", "online")
    page = wide.new_page()
    open_supervisor(page, server, acme)
    row = page.locator(f'#operators tr[data-id-op="{acme.id_agent}"]')
    expect(row.locator('[data-field="status"]')).to_have_attribute("data-status", "online")

    row.locator('select[data-field="force"]').select_option("break")
    expect(banner.locator("#status")).to_have_value("break")
    expect(row.locator('[data-field="status"]')).to_have_attribute("data-status", "break")
    with server.client(headers=bearer(ana)) as client:
        assert client.get("/api/v1/me/state").json()["operator"]["presence"] == "break"

    banner.select_option("#status", "online")  # and the other way: the page follows
    expect(row.locator('[data-field="status"]')).to_have_attribute("data-status", "online")
    expect(row.locator('select[data-field="force"]')).to_have_value("online")


def test_a_click_to_call_shows_the_customers_number_live_and_after_a_reload(
    wide: BrowserContext, server: LiveServer, acme: SeededAccount
) -> None:
    with server.client() as client:  # the account's own line, as caller id
        answer = client.patch(
            "/api/v1/account", auth=acme.auth, json={"settings": {"caller_id": acme.number}}
        )
        assert answer.status_code == 200, answer.text
    page = wide.new_page()
    open_supervisor(page, server, acme)
    ana = token_for(server, acme, id_agent=acme.id_agent)
    set_status(server, ana, "online")
    with server.client(headers=bearer(ana)) as client:
        answer = client.post("/api/v1/me/calls", json={"to": "33618220000"})
        assert answer.status_code == 201, answer.text
    call = page.locator(f'#operators tr[data-id-op="{acme.id_agent}"] [data-field="call"]')
    expect(call.locator(".number")).to_have_text("+33 6 18 22 00 00")
    page.reload()  # the same from the live snapshot
    page.wait_for_selector("#conn[data-state=live]")
    expect(call.locator(".number")).to_have_text("+33 6 18 22 00 00")


# --- figures after a simulated load -----------------------------------------------------------


def test_every_figure_on_the_page_equals_what_the_call_records_give(
    wide: BrowserContext, server: LiveServer, acme: SeededAccount
) -> None:
    group_settings(server, acme, ring_timeout=1.5, max_wait=2.5)
    page = wide.new_page()
    open_supervisor(page, server, acme)
    since = page_since(page)
    operators = [
        AnsweringOperator(server, token_for(server, acme, id_agent=who), talk)
        for who, talk in ((acme.id_agent, 0.8), (acme.other_id_agent, 1.3))
    ]
    for operator in operators:
        set_status(server, operator.token, "online")
        operator.start()
    placed = []
    try:
        for i in range(18):
            body: dict[str, Any] = {"from": f"3361234{i:04}"}
            if i % 4 == 3:
                body["hangup_after"] = 0.6  # gives up if still waiting
            placed.append(place_call(server, acme, **body))
            time.sleep(0.12)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "supervisor.png"), full_page=True)
        eventually(lambda: len(records_today(server, acme, since)) == len(placed), timeout=40)
    finally:
        for operator in operators:
            operator.stop()
    # every record is stored: the page's next reading (after the last call.ended) has them all
    offered = page.locator('[data-total="offered"]')
    eventually(lambda: offered.get_attribute("data-value") == str(len(placed)), timeout=15)
    records = records_today(server, acme, since)
    expected = expected_figures(records, 20.0)
    total = expected["total"]
    assert total["offered"] == len(placed)
    assert total["answered"] > 0
    assert total["answered"] < total["offered"]  # the load was more than two could take

    for key, figures in expected.items():
        row = page.locator(f'#figures tr[data-id-group="{key}"]')
        for name, value in figures.items():
            cell = row.locator(f'[data-figure="{name}"]')
            assert same(cell.get_attribute("data-value") or "", value), (key, name, value)
    for name, value in total.items():
        if name in ("failed", "longest_wait"):  # in the table, not in a tile
            continue
        tile = page.locator(f'[data-total="{name}"]')
        assert same(tile.get_attribute("data-value") or "", value), (name, value)
    expect(page.locator('[data-total="offered"]')).to_have_text(str(len(placed)))

    # the charts hold exactly the records
    sliced = {o: 0 for o in OUTCOMES}
    for cell in page.locator("#slices-data td[data-outcome]").all():
        sliced[cell.get_attribute("data-outcome") or ""] += int(cell.inner_text())
    assert sliced == {o: total[o] for o in OUTCOMES}
    queued = [r for r in records if r["duration_wait"] > 0 or r["outcome"] == "answered"]
    bins = [
        int(c.get_attribute("data-calls") or 0)
        for c in page.locator("#waits-data td[data-calls]").all()
    ]
    assert sum(bins) == len(queued)
    assert page.locator("#chart-slices canvas").count() == 1
    assert page.locator("#chart-waits canvas").count() == 1

    # calls handled per operator, and the records listed
    for who in (acme.id_agent, acme.other_id_agent):
        handled = sum(1 for r in records if r["id_op"] == who and r["outcome"] == "answered")
        cell = page.locator(f'#operators tr[data-id-op="{who}"] [data-field="handled"]')
        expect(cell).to_have_text(str(handled))
    expect(page.locator("#records tbody tr[data-id-call]")).to_have_count(len(placed))
    listed = {r.get_attribute("data-id-call") for r in page.locator("#records tbody tr").all()}
    assert listed == set(placed)
    expect(page.locator('#queues [data-field="waiting"]')).to_have_text("0")

    # a stricter service level: the server's figures again, and the same as recomputed
    page.fill("#threshold", "1")
    page.locator("#threshold").dispatch_event("change")
    strict = expected_figures(records, 1.0)["total"]["service_level"]
    eventually(
        lambda: same(
            page.locator('[data-total="service_level"]').get_attribute("data-value") or "", strict
        )
    )

    # the records filtered, and exported as CSV
    page.select_option("#filter-outcome", "answered")
    expect(page.locator("#records tbody tr[data-id-call]")).to_have_count(total["answered"])
    with page.expect_download() as download:
        page.click("#export-csv")
    lines = Path(download.value.path()).read_text(encoding="utf-8").strip().splitlines()
    assert lines[0].startswith("id_call,")
    assert len(lines) == 1 + total["answered"]


def test_the_figures_stay_right_after_a_dropped_connection(
    wide: BrowserContext, server: LiveServer, acme: SeededAccount
) -> None:
    group_settings(server, acme, when_empty="missed")  # nobody online: each call missed at once
    page = wide.new_page()
    with dropping_proxy(server.port) as proxy:
        token = token_for(server, acme, id_admin=acme.id_admin)
        page.goto(supervisor_url(proxy.base_url, token))
        page.wait_for_selector("#conn[data-state=live]")
        page.wait_for_selector("#main[data-reports-at]")
        place_call(server, acme)
        expect(page.locator('[data-total="missed"]')).to_have_text("1")

        proxy.drop(stay_down=True)
        expect(page.locator("#conn")).not_to_have_attribute("data-state", "live")
        for _ in range(3):
            place_call(server, acme)
        since = page_since(page)
        eventually(lambda: len(records_today(server, acme, since)) == 4)
        proxy.restore()
        page.wait_for_selector("#conn[data-state=live]", timeout=15000)
        expect(page.locator('[data-total="missed"]')).to_have_text("4", timeout=15000)
        expect(page.locator('[data-total="offered"]')).to_have_text("4")
        expect(page.locator("#records tbody tr[data-id-call]")).to_have_count(4)
        expect(page.locator("#waiting li[data-id-call]")).to_have_count(0)


# --- safety, languages, screens --------------------------------------------------------------


def test_caller_ids_and_directory_names_are_inert_text(
    wide: BrowserContext, server: LiveServer, acme: SeededAccount
) -> None:
    group_name = '<img src=x onerror="window.__xss=1">'
    with server.client() as client:
        answer = client.patch(
            f"/api/v1/groups/{acme.id_group}", auth=acme.auth, json={"name": group_name}
        )
    assert answer.status_code == 200
    page = wide.new_page()
    open_supervisor(page, server, acme)
    caller = "<img src=x onerror=window.__xss=2>"
    now = datetime.now(UTC)

    async def hostile(container: Container) -> None:
        # A future data source (a SIP trunk's caller id) put through as it came: the stream
        # and the records carry it as data; the page must show it as text.
        await container.bus.publish(
            acme.id,
            "call.arrived",
            {
                "id_call": "hostile1",
                "caller_id_num": caller,
                "e164_in": acme.number,
                "display": {"caller_id_num": caller, "e164_in": display_number(acme.number)},
            },
            now,
        )
        await container.bus.publish(
            acme.id,
            "call.queued",
            {"id_call": "hostile1", "id_group": acme.id_group, "variables": {}},
            now,
        )
        record = rec(
            "hostile2",
            caller_number='"><svg onload=window.__xss=3>',
            service_number=acme.number,
            id_group=acme.id_group,
            id_op=None,
            operators_offered=(),
            outcome=Outcome.MISSED,
            ended_by=Side.SYSTEM,
            disconnect_reason="<script>window.__xss=4</script>",
            started_at=now.timestamp(),
            ended_at=now.timestamp() + 1,
            duration_comm=0.0,
        )
        await SqlCallRecords(container.engine).add(acme.id, record)
        await container.bus.publish(acme.id, "call.ended", {"record": record_json(record)}, now)

    server.call_soon(hostile)
    expect(page.locator('#waiting li[data-id-call="hostile1"] .number')).to_have_text(caller)
    expect(page.locator('#records tr[data-id-call="hostile2"] [data-field="caller"]')).to_have_text(
        '"><svg onload=window.__xss=3>'
    )
    expect(page.locator(f'#queues tr[data-id-group="{acme.id_group}"] td').first).to_have_text(
        group_name
    )
    time.sleep(0.3)
    assert page.evaluate("window.__xss") is None
    assert page.locator("#main img, #main svg:not(.u-legend svg), #main script").count() == 0


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1366, 768), (1920, 1080)])
def test_readable_on_a_laptop_screen_in_english_and_french(
    browser: Browser, server: LiveServer, acme: SeededAccount, width: int, height: int
) -> None:
    with server.client() as client:  # names as long as a real directory's
        for path, body in (
            (f"/api/v1/groups/{acme.id_group}", {"name": "Service client entreprises"}),
            (f"/api/v1/operators/{acme.id_agent}", {"name": "Anne-Charlotte Dupont-Moretti"}),
        ):
            assert client.patch(path, auth=acme.auth, json=body).status_code == 200
    context = browser.new_context(viewport={"width": width, "height": height}, locale="fr-FR")
    try:
        page = context.new_page()
        open_supervisor(page, server, acme)
        expect(page.locator("#queues-title")).to_have_text("Files d'attente")
        expect(page.locator("#figures-title")).to_have_text("Chiffres du jour")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        clipped = page.evaluate(
            "[...document.querySelectorAll('.panel')]"
            ".filter((p) => p.scrollWidth > p.clientWidth + 1)"
            ".map((p) => p.querySelector('h2').textContent)"
        )
        assert clipped == []  # every table whole, none scrolled sideways
        english = context.new_page()
        open_supervisor(english, server, acme, lang="en")
        expect(english.locator("#queues-title")).to_have_text("Queues")
        expect(english.locator("html")).to_have_attribute("lang", "en")
    finally:
        context.close()


def test_the_csv_export_takes_the_whole_day_page_by_page(
    wide: BrowserContext, server: LiveServer, acme: SeededAccount
) -> None:
    now = datetime.now(UTC).timestamp()
    count = 1_234  # more than one page of 1,000

    def record(i: int) -> CallRecord:
        return rec(
            f"busy{i:05}",
            caller_number=f"3361200{i:04}",
            service_number=acme.number,
            id_group=acme.id_group,
            id_op=None,
            operators_offered=(),
            outcome=Outcome.MISSED,
            ended_by=Side.SYSTEM,
            disconnect_reason="a reason\r\non two lines" if i == 7 else "max_wait",
            started_at=now - 1 - i * 0.01,
            ended_at=now,
            duration_comm=0.0,
        )

    async def busy_day(container: Container) -> None:
        await SqlCallRecords(container.engine).add_many(acme.id, [record(i) for i in range(count)])

    server.call_soon(busy_day)
    page = wide.new_page()
    open_supervisor(page, server, acme)
    expect(page.locator("#records-count")).to_have_text(f"50 of {count} calls")
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(
        csv.reader(io.StringIO(Path(download.value.path()).read_bytes().decode(), newline=""))
    )
    assert rows[0][0] == "id_call"
    assert len(rows) == 1 + count
    assert {r[0] for r in rows[1:]} == {f"busy{i:05}" for i in range(count)}
    assert "a reason\r\non two lines" in [r[rows[0].index("disconnect_reason")] for r in rows]
