"""The webhook rules without I/O: the retry schedule, the signature header, public addresses,
URL syntax, what keeps deliveries in order, and which secrets sign."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from voicemgmt.domain.errors import InvalidInput, InvalidWebhookUrl
from voicemgmt.domain.webhooks import (
    EVENT_KINDS,
    RetryPolicy,
    Subscription,
    check_event_kinds,
    check_url,
    is_public_address,
    order_key,
    signature_header,
)
from voicemgmt.web.event_schema import EVENTS, INTERNAL_EVENTS


def test_the_wait_before_a_retry_is_full_jitter_under_a_doubling_ceiling() -> None:
    policy = RetryPolicy()
    ceilings = [policy.delay(n, 0.999999).total_seconds() for n in range(1, 14)]
    assert [round(c) for c in ceilings[:4]] == [5, 10, 20, 40]
    assert round(ceilings[7]) == 640
    assert all(round(c) == 3600 for c in ceilings[10:])  # the cap
    assert policy.delay(5, 0.0) == timedelta(0)
    assert policy.delay(3, 0.5) == timedelta(seconds=10)
    assert policy.delay(10_000, 0.5) == timedelta(minutes=30)  # no overflow


def test_the_documented_schedule_keeps_retrying_for_a_day() -> None:
    policy = RetryPolicy()
    assert policy.retry_for == timedelta(hours=24)
    assert policy.disable_after == timedelta(days=3)
    worst = sum((policy.delay(n, 1.0) for n in range(1, 40)), timedelta(0))
    assert worst > policy.retry_for  # with the longest waits, still tried until it expires


def test_the_signature_header_signs_timestamp_dot_body_with_each_secret() -> None:
    body = b'{"id":"x","seq":1}'
    header = signature_header(["whsec_new", "whsec_old"], 1796660457, body)
    t, first, second = header.split(",")
    assert t == "t=1796660457"
    for part, secret in ((first, "whsec_new"), (second, "whsec_old")):
        expected = hmac.new(secret.encode(), b"1796660457." + body, hashlib.sha256).hexdigest()
        assert part == f"v1={expected}"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("::1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # shared address space (carrier NAT)
        ("0.0.0.0", False),  # noqa: S104 (an address to refuse, not to bind)
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:93.184.216.34", True),
        ("192.0.2.1", False),  # documentation
    ],
)
def test_only_globally_routable_unicast_is_public(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "https://user@example.com/",
        "https://example.com/#x",
        "https://exa mple.com/",
        "https://example.com:0x10/",
        "https://" + "a" * 64 + ".com/",
        "mailto:someone@example.com",
        "//example.com/path",
    ],
)
def test_unacceptable_urls(url: str) -> None:
    with pytest.raises(InvalidWebhookUrl):
        check_url(url, allow_http=False)


def test_an_acceptable_url_and_its_target() -> None:
    target = check_url("https://CRM.example.com:8443/hooks?x=1", allow_http=False)
    assert (target.scheme, target.host, target.port, target.address) == (
        "https",
        "crm.example.com",
        8443,
        None,
    )
    literal = check_url("http://[::1]:8080/", allow_http=True)
    assert literal.address == ipaddress.ip_address("::1")


def test_what_keeps_deliveries_in_order() -> None:
    assert order_key("call.offered", {"id_call": "abc", "id_op": 3}) == "call:abc"
    assert order_key("call.ended", {"record": {"id_call": "abc"}}) == "call:abc"
    assert order_key("operator.status", {"id_op": 3}) == "operator:3"
    assert order_key("session.revoked", {"id_agent": 3}) is None


def test_event_kinds_are_known_kinds_or_everything() -> None:
    assert check_event_kinds(["*"]) is None
    assert check_event_kinds(None) is None
    assert check_event_kinds(["call.ended", "call.ended", "call.held"]) == (
        "call.ended",
        "call.held",
    )
    for wrong in ([], ["call.nope"], ["*", "call.held"], "call.held", [1]):
        with pytest.raises(InvalidInput):
            check_event_kinds(wrong)


def test_the_previous_secret_signs_until_it_expires() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    subscription = Subscription(
        id=1,
        account_id=1,
        url="https://example.com/",
        description="",
        event_kinds=None,
        active=True,
        disabled_reason=None,
        secret="whsec_new",
        previous_secret="whsec_old",
        previous_secret_expires_at=now + timedelta(hours=1),
        failing_since=None,
        created_at=now,
        updated_at=now,
    )
    assert subscription.signing_secrets(now) == ("whsec_new", "whsec_old")
    assert subscription.signing_secrets(now + timedelta(hours=1)) == ("whsec_new",)
    assert subscription.wants("call.ended")  # every kind a webhook carries


def test_webhooks_carry_every_catalogued_event_kind_and_no_internal_one() -> None:
    now = datetime.now(UTC)
    everything = Subscription(
        1, 1, "https://crm.example/hooks", "", None, True, None, "s", None, None, None, now, now
    )
    assert set(EVENT_KINDS) == set(EVENTS)  # what a subscription may name: docs/events.md
    assert all(everything.wants(kind) for kind in EVENTS)
    assert not any(everything.wants(kind) for kind in INTERNAL_EVENTS)
    with pytest.raises(InvalidInput):
        check_event_kinds(["session.revoked"])
