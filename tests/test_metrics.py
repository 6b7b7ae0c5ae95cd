"""``/metrics``: scraped and parsed like Prometheus does, under simulated calls, against the
figures API and the live state; refused without credentials; one registry per container."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    LiveServer,
    SeededAccount,
    bearer,
    free_port,
    live_server,
    make_settings,
    seed_two_accounts,
    token_for,
)
from tests.test_calls_api import FAST, Operator, events, eventually, place_call, record_of
from voicemgmt.adapters.events.redis import RedisEventBus
from voicemgmt.bootstrap import build
from voicemgmt.config import Settings
from voicemgmt.observability.metrics import Metrics

TOKEN = "metrics-token-for-the-tests"
OUTCOMES = ("answered", "abandoned", "missed", "overflowed", "failed")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "", metrics_token=TOKEN, **FAST)


@pytest.fixture
def server(settings: Settings, seeded: tuple[SeededAccount, SeededAccount]) -> Iterator[LiveServer]:
    with live_server(settings) as running:
        yield running


def scrape(server: LiveServer) -> Samples:
    """Every sample of ``/metrics``, parsed by the Prometheus client's own parser."""
    with server.client() as client:
        answer = client.get("/metrics", headers=bearer(TOKEN))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str | int) -> float:
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str | int) -> float:
    """The sum over the samples of ``name`` whose labels include ``labels``."""
    wanted = {(k, str(v)) for k, v in labels.items()}
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


class Scraper(threading.Thread):
    """Scrapes and parses every 50 ms while the load runs; remembers call counts seen."""

    def __init__(self, server: LiveServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.ended_calls: list[float] = []
        self.errors: list[BaseException] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.ended_calls.append(total(scrape(self.server), "voicemgmt_calls_total"))
            except BaseException as exc:  # reported by the test's thread
                self.errors.append(exc)
            self.stop.wait(0.05)


def test_metrics_equal_the_figures_and_the_live_state_under_simulated_calls(
    server: LiveServer, acme: SeededAccount, globex: SeededAccount
) -> None:
    ana = Operator(server, acme, acme.id_agent)
    bob = Operator(server, acme, acme.other_id_agent)
    gina = Operator(server, globex, globex.id_agent)
    with server.client() as client:  # no wrap-up: each call rings as soon as the last ends
        for account in (acme, globex):
            answer = client.patch(
                f"/api/v1/groups/{account.id_group}",
                auth=account.auth,
                json={"settings": {"wrap_up": 0}},
            )
            assert answer.status_code == 200, answer.text
    sam = token_for(server, acme, id_admin=acme.id_admin)
    scraper = Scraper(server)
    scraper.start()
    try:
        assert bob.status("break").status_code == 200
        assert ana.status("online").status_code == 200
        assert gina.status("online").status_code == 200
        for _ in range(4):  # answered
            call_id = place_call(server, acme)
            assert ana.ringing_call() == call_id
            assert ana.act(call_id, "answer").status_code == 200
            assert ana.act(call_id, "hangup").status_code == 200
            record_of(server, acme, call_id)
        call_id = place_call(server, globex)
        assert gina.ringing_call() == call_id
        assert gina.act(call_id, "answer").status_code == 200
        assert gina.act(call_id, "hangup").status_code == 200
        assert ana.status("break").status_code == 200
        gone = [place_call(server, acme, hangup_after=0.3) for _ in range(2)]  # abandoned
        for call_id in gone:
            assert record_of(server, acme, call_id)["outcome"] == "abandoned"
        # What stays still while the figures, the live state and the metrics are compared:
        # ana in a call, bob on break, two callers waiting.
        assert ana.status("online").status_code == 200
        talking = place_call(server, acme)
        assert ana.ringing_call() == talking
        assert ana.act(talking, "answer").status_code == 200
        place_call(server, acme)
        place_call(server, acme)
        eventually(lambda: _waiting(server, acme) == 2)
        time.sleep(1.1)  # the longest wait passes a second
    finally:
        scraper.stop.set()
        scraper.join(timeout=10)
        ana.http.close()
        bob.http.close()
        gina.http.close()
    assert scraper.errors == []
    assert len(scraper.ended_calls) >= 5
    assert scraper.ended_calls == sorted(scraper.ended_calls)  # counters never go back

    with events(server, sam) as stream:
        stream.recv(timeout=5)  # hello: the stream is open
        with server.client() as client:
            figures = client.get("/api/v1/figures", auth=acme.auth).json()["groups"]
            other = client.get("/api/v1/figures", auth=globex.auth).json()["groups"]
            live = client.get("/api/v1/supervision/live", headers=bearer(sam)).json()
        samples = scrape(server)
        assert value(samples, "voicemgmt_websockets_open", user_type="admin") == 1
        assert value(samples, "voicemgmt_websockets_open", user_type="agent") == 0

    (group,) = [g for g in figures if g["id_group"] == acme.id_group]
    assert (group["answered"], group["abandoned"], group["offered"]) == (4, 2, 6)
    for outcome in OUTCOMES:
        counted = value(
            samples,
            "voicemgmt_calls_total",
            account=acme.id,
            group=acme.id_group,
            direction="in",
            outcome=outcome,
        )
        assert counted == group[outcome], outcome
    assert total(samples, "voicemgmt_calls_total", account=acme.id) == group["offered"]
    assert total(samples, "voicemgmt_calls_total", account=globex.id, outcome="answered") == 1
    assert other[-1]["answered"] == 1

    (queue,) = [q for q in live["queues"] if q["id_group"] == acme.id_group]
    waiting = value(samples, "voicemgmt_calls_waiting", account=acme.id, group=acme.id_group)
    longest = value(samples, "voicemgmt_longest_wait_seconds", account=acme.id, group=acme.id_group)
    assert waiting == queue["waiting"] == 2
    assert 1 <= queue["longest_wait"] <= longest < queue["longest_wait"] + 1.5

    statuses = Counter(o["status"] for o in live["operators"])
    assert statuses == {"busy": 1, "break": 1}
    for status in ("offline", "online", "busy", "break"):
        assert value(samples, "voicemgmt_operators", account=acme.id, status=status) == (
            statuses.get(status, 0)
        )
    assert value(samples, "voicemgmt_calls_active", account=acme.id, state="connected") == 1
    assert value(samples, "voicemgmt_calls_active", account=acme.id, state="queued") == 2

    # Every offer went to an operator once: four answered, the globex one, the one in progress.
    assert value(samples, "voicemgmt_offer_delivery_seconds_count") == 6
    assert 0 < value(samples, "voicemgmt_offer_delivery_seconds_sum") < 6 * 1.0
    assert value(samples, "voicemgmt_offer_delivery_seconds_bucket", le="+Inf") == 6


def _waiting(server: LiveServer, account: SeededAccount) -> float:
    samples = scrape(server)
    return value(samples, "voicemgmt_calls_waiting", account=account.id, group=account.id_group)


def test_a_scrape_without_the_token_is_refused(server: LiveServer) -> None:
    with server.client() as client:
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers=bearer("not-the-metrics-token"))
        basic = client.get("/metrics", auth=("metrics", TOKEN))
        in_query = client.get("/metrics", params={"token": TOKEN})
    for answer, code in (
        (missing, "metrics_token_required"),
        (wrong, "invalid_metrics_token"),
        (basic, "metrics_token_required"),
        (in_query, "metrics_token_required"),
    ):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer ")
        body = answer.json()
        assert (body["status"], body["err_code"]) == (401, code)
        assert "voicemgmt_" not in answer.text


def test_without_a_token_or_addresses_the_endpoint_is_off(
    tmp_path: Path, seeded: tuple[SeededAccount, SeededAccount]
) -> None:
    with live_server(make_settings(tmp_path)) as server, server.client() as client:
        off = client.get("/metrics", headers=bearer(TOKEN))
        unknown = client.get("/no-such-path")
    assert off.status_code == unknown.status_code == 404
    assert off.json() == unknown.json()


def test_allowed_addresses_restrict_who_scrapes(
    tmp_path: Path, seeded: tuple[SeededAccount, SeededAccount]
) -> None:
    settings = make_settings(tmp_path, metrics_allowed_sources=["127.0.0.2/32"])
    with live_server(settings) as server:
        with server.client() as client:
            refused = client.get("/metrics")
        with server.client(source="127.0.0.2") as client:
            allowed = client.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["err_code"] == "forbidden_source"
    assert allowed.status_code == 200
    names = {family.name for family in text_string_to_metric_families(allowed.text)}
    assert {"voicemgmt_calls", "voicemgmt_operators", "voicemgmt_calls_waiting"} <= names


def test_a_database_error_is_counted(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, metrics_token=TOKEN)
    acme, _globex = seed_two_accounts(settings)
    device = {"username": "shared", "password": "a-long-secret"}
    with live_server(settings) as server:
        before = scrape(server)
        with server.client() as client:  # the database's unique constraint says no
            first = client.put(
                f"/api/v1/operators/{acme.id_agent}/sip-device", auth=acme.auth, json=device
            )
            again = client.put(
                f"/api/v1/operators/{acme.other_id_agent}/sip-device",
                auth=acme.auth,
                json=device,
            )
        after = scrape(server)
    assert (first.status_code, again.status_code) == (200, 409)
    name = "voicemgmt_database_errors_total"
    assert value(before, name, error="IntegrityError") == 0
    assert value(after, name, error="IntegrityError") == 1


def test_a_redis_error_is_counted() -> None:
    metrics = Metrics()
    bus = RedisEventBus(f"redis://127.0.0.1:{free_port()}/0", on_error=metrics.redis_error)

    async def publish() -> None:
        try:
            with pytest.raises(Exception, match=r"(?i)connect"):
                await bus.publish(1, "call.arrived", {"id_call": "x"}, _now())
        finally:
            await bus.aclose()

    asyncio.run(publish())
    samples = _parse(metrics.exposition().decode())
    assert value(samples, "voicemgmt_redis_errors_total", operation="publish") == 1


def test_each_container_has_its_own_registry(tmp_path: Path) -> None:
    first = build(make_settings(tmp_path / "a"))
    second = build(make_settings(tmp_path / "b"))
    first.metrics.webhook_deliveries.labels(result="success").inc()
    first.metrics.webhook_deliveries.labels(result="success").inc()
    one = _parse(first.metrics.exposition().decode())
    two = _parse(second.metrics.exposition().decode())
    assert value(one, "voicemgmt_webhook_deliveries_total", result="success") == 2
    assert value(two, "voicemgmt_webhook_deliveries_total", result="success") == 0
    asyncio.run(_dispose(first, second))


def test_the_endpoint_and_its_refusals_are_described_in_openapi(server: LiveServer) -> None:
    with server.client() as client:
        described = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]["responses"]
    (content,) = described["200"]["content"]
    assert content.startswith("text/plain; version=0.0.4")
    for status in ("401", "403", "404"):
        schema = described[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}


def test_settings_refuse_a_short_token_and_bad_networks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metrics_token"):
        make_settings(tmp_path, metrics_token="short")
    with pytest.raises(ValueError, match="metrics_allowed_sources"):
        make_settings(tmp_path, metrics_allowed_sources=["not-a-network"])
    with pytest.raises(ValueError, match="log_format"):
        make_settings(tmp_path, log_format="xml")
    with pytest.raises(ValueError, match="log_level"):
        make_settings(tmp_path, log_level="loud")


def _parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _now() -> datetime:
    return datetime.now(UTC)


async def _dispose(*containers: Any) -> None:
    for container in containers:
        await container.engine.dispose()
