"""SIP in ``/metrics``: transactions by method, responses by status class, malformed datagrams,
the relay's packets; handcrafted UDP from loopback, as in ``test_hostile``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sip.platform import SipPlatform, sip_platform
from tests.sip.test_hostile import SDP, Peer
from tests.support import bearer
from tests.test_calls_api import eventually
from tests.test_metrics import TOKEN, Samples, _parse, value

pytestmark = pytest.mark.sip


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[SipPlatform]:
    with sip_platform(tmp_path, metrics_token=TOKEN) as running:
        yield running


def scrape(platform: SipPlatform) -> Samples:
    with platform.client() as client:
        answer = client.get("/metrics", headers=bearer(TOKEN))
    assert answer.status_code == 200, answer.text
    return _parse(answer.text)


def test_sip_transactions_and_responses_are_counted_by_method_and_class(
    platform: SipPlatform,
) -> None:
    peer = Peer(platform)
    try:
        options = peer.final(peer.request("OPTIONS"))  # resent until answered: one transaction
        unknown = peer.final(peer.request("INVITE", "33999999999", body=SDP.format(formats="0")))
        odd = peer.final(peer.request("FROBNICATE"))
        peer.send(b"this is not SIP at all\r\n\r\n")
    finally:
        peer.close()
    assert (options and options.status, unknown and unknown.status, odd and odd.status) == (
        200,
        404,
        405,
    )
    eventually(lambda: value(scrape(platform), "voicemgmt_sip_malformed_messages_total") == 1)
    samples = scrape(platform)
    transactions = "voicemgmt_sip_transactions_total"
    assert value(samples, transactions, role="server", method="OPTIONS") == 1
    assert value(samples, transactions, role="server", method="INVITE") == 1
    assert value(samples, transactions, role="server", method="other") == 1  # not a label
    assert value(samples, transactions, role="server", method="FROBNICATE") == 0
    responses = "voicemgmt_sip_responses_total"
    assert value(samples, responses, direction="sent", method="OPTIONS", status_class="2xx") == 1
    assert value(samples, responses, direction="sent", method="INVITE", status_class="4xx") == 1
    assert value(samples, responses, direction="sent", method="other", status_class="4xx") == 1
    for direction in ("received", "sent"):  # the relay is there, idle
        assert (
            "voicemgmt_rtp_packets_total",
            frozenset({("backend", "relay"), ("direction", direction)}),
        ) in samples
