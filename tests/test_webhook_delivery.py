"""Webhook deliveries to a real receiver on loopback, through the real server, on SQLite and
PostgreSQL: signed, each event once (by id), in per-call order, through receiver outages and
server restarts; failures logged and retried; slow and hostile receivers contained."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support import (
    LiveServer,
    SeededAccount,
    live_server,
    make_settings,
    run_on,
    seed_two_accounts,
)
from tests.webhook_receiver import Behaviour, Receiver, wait_for
from voicemgmt.bootstrap import Container
from voicemgmt.config import Settings

API = "/api/v1/webhooks"


def fast_retries(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhooks_allow_http": True,
        "webhook_retry_base_seconds": 0.05,
        "webhook_retry_cap_seconds": 0.3,
        "webhook_connect_timeout_seconds": 1,
        "webhook_read_timeout_seconds": 1,
        "webhook_attempt_timeout_seconds": 2,
        **overrides,
    }
    return make_settings(tmp_path, database_url, **values)


@pytest.fixture
def wh_settings(tmp_path: Path, database_url: str) -> Settings:
    return fast_retries(tmp_path, database_url)


@pytest.fixture
def accounts(wh_settings: Settings) -> tuple[SeededAccount, SeededAccount]:
    seeded = seed_two_accounts(wh_settings)

    async def job(c: Container) -> None:  # tests need a receiver on loopback
        await c.webhooks.allow_private_targets(seeded[0].id, True)

    run_on(wh_settings, job)
    return seeded


@pytest.fixture
def acme(accounts: tuple[SeededAccount, SeededAccount]) -> SeededAccount:
    return accounts[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def server(wh_settings: Settings, accounts: Any) -> Iterator[LiveServer]:
    with live_server(wh_settings) as running:
        yield running


def subscribe(server: LiveServer, account: SeededAccount, url: str, **body: Any) -> dict[str, Any]:
    with server.client() as client:
        answer = client.post(API, auth=account.auth, json={"url": url, **body})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def publish(server: LiveServer, account: SeededAccount, *items: tuple[str, dict[str, Any]]) -> None:
    """Publish on the account's stream, as the routing core does."""

    async def job(c: Container) -> None:
        await c.bus.publish_many(account.id, list(items), datetime.now(UTC))

    server.call_soon(job)


def call_events(calls: int, per_call: int) -> list[tuple[str, dict[str, Any]]]:
    """Interleaved events of several calls: c0 #0, c1 #0, …, c0 #1, …"""
    return [
        ("call.ivr_variable", {"id_call": f"c{c}", "name": "step", "value": str(n)})
        for n in range(per_call)
        for c in range(calls)
    ]


def deliveries(server: LiveServer, account: SeededAccount, id_webhook: int) -> list[Any]:
    with server.client() as client:
        answer = client.get(f"{API}/{id_webhook}/deliveries?limit=1000", auth=account.auth)
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()["items"]
    return items


def detail(server: LiveServer, account: SeededAccount, id_webhook: int, delivery: str) -> Any:
    with server.client() as client:
        answer = client.get(f"{API}/{id_webhook}/deliveries/{delivery}", auth=account.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


def verify(secret: str, header: str, body: bytes) -> bool:
    parts = [p.split("=", 1) for p in header.split(",")]
    timestamp = next(v for k, v in parts if k == "t")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return any(hmac.compare_digest(expected.hexdigest(), v) for k, v in parts if k == "v1")


def assert_each_once_in_call_order(received: list[Any], calls: int, per_call: int) -> None:
    ids = [r.delivery_id for r in received]
    assert len(ids) == len(set(ids)) == calls * per_call
    for c in range(calls):
        steps = [
            json.loads(r.body)["data"]["value"]
            for r in received
            if json.loads(r.body)["data"]["id_call"] == f"c{c}"
        ]
        assert steps == [str(n) for n in range(per_call)], (c, steps)


def test_each_event_arrives_signed_with_its_id_kind_and_timestamp(
    server: LiveServer, acme: SeededAccount, receiver: Receiver
) -> None:
    hook = subscribe(server, acme, receiver.url)
    publish(server, acme, *call_events(2, 2))
    received = wait_for(lambda: len(receiver.snapshot()) >= 4 and receiver.snapshot())
    for item in received:
        body = json.loads(item.body)
        assert item.headers["vm-webhook-id"] == body["id"]
        assert item.headers["vm-webhook-event"] == body["kind"] == "call.ivr_variable"
        assert item.headers["content-type"] == "application/json"
        timestamp = int(item.headers["vm-webhook-timestamp"])
        assert abs(time.time() - timestamp) < 60
        assert item.headers["vm-webhook-signature"].startswith(f"t={timestamp},v1=")
        assert verify(hook["secret"], item.headers["vm-webhook-signature"], item.body)
        assert not verify("whsec_other", item.headers["vm-webhook-signature"], item.body)
    assert sorted(json.loads(r.body)["seq"] for r in received) == [1, 2, 3, 4]
    assert_each_once_in_call_order(received, 2, 2)
    logged = wait_for(
        lambda: all(d["state"] == "delivered" for d in deliveries(server, acme, hook["id_webhook"]))
    )
    assert logged


def test_only_the_subscribed_kinds_are_sent(
    server: LiveServer, acme: SeededAccount, receiver: Receiver
) -> None:
    subscribe(server, acme, receiver.url, events=["call.held"])
    publish(
        server,
        acme,
        ("call.resumed", {"id_call": "c1", "id_op": 1}),
        ("call.held", {"id_call": "c1", "id_op": 1}),
        ("operator.status", {"id_op": 1, "status": "available"}),
    )
    received = wait_for(receiver.snapshot)
    time.sleep(0.5)
    assert [r.headers["vm-webhook-event"] for r in receiver.snapshot()] == ["call.held"]
    assert json.loads(received[0].body)["seq"] == 2


def test_a_receiver_down_for_a_while_gets_every_event_once_in_call_order(
    server: LiveServer, acme: SeededAccount, receiver: Receiver
) -> None:
    receiver.stop()
    hook = subscribe(server, acme, receiver.url)
    publish(server, acme, *call_events(3, 5))

    def failed_twice() -> bool:
        items = deliveries(server, acme, hook["id_webhook"])
        return len(items) == 15 and any(d["attempts"] >= 2 for d in items)

    wait_for(failed_twice, what="retries while the receiver is down")
    first = min(deliveries(server, acme, hook["id_webhook"]), key=lambda d: d["seq"])
    log = detail(server, acme, hook["id_webhook"], first["id"])["attempt_log"]
    assert log[0]["ok"] is False
    assert log[0]["response_code"] is None
    assert log[0]["error"]
    receiver.start()
    wait_for(lambda: len(receiver.snapshot()) >= 15, what="every event after the outage")
    time.sleep(0.5)
    assert_each_once_in_call_order(receiver.snapshot(), 3, 5)


def test_a_restart_in_the_middle_of_retries_loses_nothing(
    wh_settings: Settings, acme: SeededAccount, receiver: Receiver
) -> None:
    receiver.stop()
    with live_server(wh_settings) as first:
        hook = subscribe(first, acme, receiver.url)
        publish(first, acme, *call_events(2, 4))
        wait_for(
            lambda: sum(d["attempts"] for d in deliveries(first, acme, hook["id_webhook"])) >= 3,
            what="failed attempts before the restart",
        )
        publish(first, acme, *call_events(1, 0), ("call.held", {"id_call": "c9", "id_op": 1}))
    receiver.start()
    with live_server(wh_settings) as second:
        wait_for(lambda: len(receiver.snapshot()) >= 9, what="deliveries after the restart")
        time.sleep(0.5)
        received = receiver.snapshot()
        assert_each_once_in_call_order([r for r in received if b'"c9"' not in r.body], 2, 4)
        assert len(received) == 9
        states = {d["state"] for d in deliveries(second, acme, hook["id_webhook"])}
        assert states == {"delivered"}


@pytest.mark.parametrize("status", [301, 302, 307, 400, 404, 410, 500, 503])
def test_non_2xx_answers_are_failures_logged_and_retried(
    server: LiveServer, acme: SeededAccount, receiver: Receiver, status: int
) -> None:
    receiver.behaviour = Behaviour(status=status, location="http://169.254.169.254/latest")
    hook = subscribe(server, acme, receiver.url)
    publish(server, acme, ("call.held", {"id_call": "c1", "id_op": 1}))
    wait_for(lambda: len(receiver.snapshot()) >= 3, what="three attempts")
    ids = {r.delivery_id for r in receiver.snapshot()}
    assert len(ids) == 1  # the same delivery id on every attempt
    (delivery,) = deliveries(server, acme, hook["id_webhook"])
    attempts = detail(server, acme, hook["id_webhook"], delivery["id"])["attempt_log"]
    assert attempts
    assert all(a["ok"] is False and a["response_code"] == status for a in attempts)
    if 300 <= status < 400:
        assert "not followed" in attempts[0]["error"]
    receiver.behaviour = Behaviour(status=204)
    wait_for(
        lambda: deliveries(server, acme, hook["id_webhook"])[0]["state"] == "delivered",
        what="success once the receiver answers 2xx",
    )
    registry = server.container.metrics.registry  # what /metrics shows

    def counted(result: str) -> float | None:
        return registry.get_sample_value("voicemgmt_webhook_deliveries_total", {"result": result})

    assert counted("http_error") == len(receiver.snapshot()) - 1  # every attempt but the last
    assert counted("success") == 1
    assert counted("timeout") == 0


def test_a_slow_receiver_times_out_without_holding_back_the_others(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
    settings = fast_retries(
        tmp_path,
        database_url,
        webhook_read_timeout_seconds=4,
        webhook_attempt_timeout_seconds=5,
        webhook_retry_base_seconds=60,
    )
    acme_, _ = seed_two_accounts(settings)

    async def allow(c: Container) -> None:
        await c.webhooks.allow_private_targets(acme_.id, True)

    run_on(settings, allow)
    slow = Receiver(behaviour=Behaviour(delay=30))
    slow.start()
    try:
        with live_server(settings) as server:
            slow_hook = subscribe(server, acme_, slow.url)
            subscribe(server, acme_, receiver.url)
            publish(server, acme_, *call_events(4, 1))
            wait_for(lambda: len(receiver.snapshot()) >= 4, what="the fast receiver")
            # meanwhile the slow receiver's attempt is still under way: it held nothing back
            held = deliveries(server, acme_, slow_hook["id_webhook"])
            assert [d["attempts"] for d in held] == [0, 0, 0, 0]
            assert len(slow.snapshot()) >= 1

            def timed_out() -> Any:
                for item in deliveries(server, acme_, slow_hook["id_webhook"]):
                    log = detail(server, acme_, slow_hook["id_webhook"], item["id"])
                    if log["attempt_log"]:
                        return log["attempt_log"][0]
                return None

            attempt = wait_for(timed_out, what="the slow receiver's attempt")
            assert attempt["ok"] is False
            assert "timed out" in attempt["error"] or "within" in attempt["error"]
            assert 3900 <= attempt["latency_ms"] < 6000
    finally:
        slow.stop()


def test_a_huge_response_body_is_not_read(
    server: LiveServer, acme: SeededAccount, receiver: Receiver
) -> None:
    receiver.behaviour = Behaviour(status=200, body_bytes=200 * 1024 * 1024)
    hook = subscribe(server, acme, receiver.url)
    publish(server, acme, ("call.held", {"id_call": "c1", "id_op": 1}))
    wait_for(
        lambda: deliveries(server, acme, hook["id_webhook"])[0]["state"] == "delivered",
        timeout=10,
        what="delivered despite the body",
    )
    (delivery,) = deliveries(server, acme, hook["id_webhook"])
    (attempt,) = detail(server, acme, hook["id_webhook"], delivery["id"])["attempt_log"]
    assert attempt["latency_ms"] < 2000


def test_manual_redelivery_sends_the_same_delivery_again(
    server: LiveServer, acme: SeededAccount, receiver: Receiver
) -> None:
    hook = subscribe(server, acme, receiver.url)
    publish(server, acme, ("call.held", {"id_call": "c1", "id_op": 1}))
    (first,) = wait_for(receiver.snapshot)
    with server.client() as client:
        answer = client.post(
            f"{API}/{hook['id_webhook']}/deliveries/{first.delivery_id}/redeliver",
            auth=acme.auth,
        )
    assert answer.status_code == 202, answer.text
    wait_for(lambda: len(receiver.snapshot()) >= 2, what="the redelivery")
    again = receiver.snapshot()[1]
    assert again.delivery_id == first.delivery_id
    assert again.body == first.body
    assert again.headers["vm-webhook-attempt"] == "2"


def test_a_rotated_secret_signs_beside_the_previous_one(
    server: LiveServer, acme: SeededAccount, receiver: Receiver
) -> None:
    hook = subscribe(server, acme, receiver.url)
    with server.client() as client:
        rotated = client.post(
            f"{API}/{hook['id_webhook']}/rotate-secret", auth=acme.auth, json={}
        ).json()
    publish(server, acme, ("call.held", {"id_call": "c1", "id_op": 1}))
    (item,) = wait_for(receiver.snapshot)
    header = item.headers["vm-webhook-signature"]
    assert header.count("v1=") == 2
    assert verify(rotated["secret"], header, item.body)
    assert verify(hook["secret"], header, item.body)


def test_a_target_that_became_private_is_refused_at_delivery(
    server: LiveServer, wh_settings: Settings, acme: SeededAccount, receiver: Receiver
) -> None:
    hook = subscribe(server, acme, receiver.url.replace("127.0.0.1", "localhost"))

    async def forbid(c: Container) -> None:
        await c.webhooks.allow_private_targets(acme.id, False)

    server.call_soon(forbid)
    publish(server, acme, ("call.held", {"id_call": "c1", "id_op": 1}))

    def refused() -> Any:
        items = deliveries(server, acme, hook["id_webhook"])
        if not items:
            return None
        return detail(server, acme, hook["id_webhook"], items[0]["id"])["attempt_log"]

    log = wait_for(refused, what="a refused attempt")
    assert "127.0.0.1" in log[0]["error"]
    assert "public addresses only" in log[0]["error"]
    time.sleep(0.3)
    assert receiver.snapshot() == []


def test_failing_for_the_disable_period_disables_the_webhook_with_an_event(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
    settings = fast_retries(tmp_path, database_url, webhook_disable_after_seconds=1)
    acme_, _ = seed_two_accounts(settings)

    async def allow(c: Container) -> None:
        await c.webhooks.allow_private_targets(acme_.id, True)

    run_on(settings, allow)
    failing = Receiver(behaviour=Behaviour(status=500))
    failing.start()
    try:
        with live_server(settings) as server:
            bad = subscribe(server, acme_, failing.url)
            subscribe(server, acme_, receiver.url, events=["webhook.disabled"])
            publish(server, acme_, ("call.held", {"id_call": "c1", "id_op": 1}))

            def disabled() -> Any:
                with server.client() as client:
                    shown = client.get(f"{API}/{bad['id_webhook']}", auth=acme_.auth).json()
                return shown if shown["state"] == "disabled_failing" else None

            shown = wait_for(disabled, what="the automatic disabling")
            assert shown["active"] is False
            assert shown["failing_since"] is not None
            (event,) = wait_for(receiver.snapshot, what="the webhook.disabled event")
            body = json.loads(event.body)
            assert body["kind"] == "webhook.disabled"
            assert body["data"]["id_webhook"] == bad["id_webhook"]
            assert body["data"]["reason"] == "failing"
            count = len(failing.snapshot())
            time.sleep(0.5)
            assert len(failing.snapshot()) == count  # nothing more goes out
    finally:
        failing.stop()


def test_a_simulated_calls_events_arrive_in_the_calls_order(
    server: LiveServer, acme: SeededAccount, receiver: Receiver
) -> None:
    """Events made by the routing core itself, not published by the test."""
    subscribe(server, acme, receiver.url, events=["call.arrived", "call.queued", "call.ended"])
    with server.client() as client:
        answer = client.post(
            "/api/v1/sim/calls",
            auth=acme.auth,
            json={"from": "33612345678", "to": acme.number, "hangup_after": 0.3},
        )
    assert answer.status_code == 201, answer.text
    call = answer.json()["id_call"]

    def ended() -> list[dict[str, Any]]:
        bodies = [json.loads(r.body) for r in receiver.snapshot()]
        return bodies if any(b["kind"] == "call.ended" for b in bodies) else []

    bodies = wait_for(ended, what="the call's end")
    assert [b["kind"] for b in bodies] == ["call.arrived", "call.queued", "call.ended"]
    assert bodies[0]["data"]["id_call"] == call
    assert bodies[2]["data"]["record"]["id_call"] == call


def test_a_new_subscription_gets_only_the_events_after_it_even_after_a_restart(
    wh_settings: Settings, acme: SeededAccount, receiver: Receiver
) -> None:
    with live_server(wh_settings) as first:
        earlier = subscribe(first, acme, receiver.url)
        publish(first, acme, *call_events(5, 1))
        wait_for(lambda: len(receiver.snapshot()) >= 5, what="the first server's deliveries")
        with first.client() as client:
            gone = client.delete(f"{API}/{earlier['id_webhook']}", auth=acme.auth)
        assert gone.status_code == 204
    receiver.received.clear()
    with live_server(wh_settings) as second:  # its in-memory stream starts again at seq 1
        publish(second, acme, *call_events(3, 1))
        subscribe(second, acme, receiver.url)
        publish(second, acme, ("call.held", {"id_call": "after", "id_op": 1}))
        (only,) = wait_for(receiver.snapshot, what="the new subscription's delivery")
        time.sleep(0.5)
        assert len(receiver.snapshot()) == 1
    assert json.loads(only.body)["data"]["id_call"] == "after"


def test_after_a_change_of_the_platform_key_a_webhook_waits_for_a_new_secret(
    wh_settings: Settings, acme: SeededAccount, receiver: Receiver
) -> None:
    with live_server(wh_settings) as first:
        hook = subscribe(first, acme, receiver.url)
    other_key = wh_settings.model_copy(update={"secret_key": SecretStr("another-key-" * 4)})
    with live_server(other_key) as second:  # the server starts, the webhook is still there
        with second.client() as client:
            shown = client.get(f"{API}/{hook['id_webhook']}", auth=acme.auth)
            assert shown.status_code == 200, shown.text
            publish(second, acme, ("call.held", {"id_call": "c1", "id_op": 1}))
            time.sleep(0.5)
            assert receiver.snapshot() == []  # nothing goes out unsigned or wrongly signed
            rotated = client.post(f"{API}/{hook['id_webhook']}/rotate-secret", auth=acme.auth)
            assert rotated.status_code == 200, rotated.text
        publish(second, acme, ("call.held", {"id_call": "c2", "id_op": 1}))
        (item,) = wait_for(receiver.snapshot, what="a delivery with the new secret")
        header = item.headers["vm-webhook-signature"]
        assert header.count("v1=") == 1
        assert verify(rotated.json()["secret"], header, item.body)
