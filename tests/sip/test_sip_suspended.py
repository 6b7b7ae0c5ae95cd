"""A suspended number (platform API, SPEC §6) refuses a trunk's INVITE: 480, no call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sip.platform import SipPlatform, sip_platform
from tests.sip.test_hostile import SDP, Peer

pytestmark = pytest.mark.sip


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[SipPlatform]:
    with sip_platform(tmp_path) as running:
        yield running


def test_an_invite_to_a_suspended_number_is_480_and_starts_no_call(
    platform: SipPlatform,
) -> None:
    acme = platform.acme
    with platform.client() as client:
        suspend = {"service_number": acme.number, "state": "suspended"}
        answer = client.put("/vm/service_numbers", auth=acme.auth, json=suspend)
        assert answer.status_code == 200, answer.text
    peer = Peer(platform)
    refused = peer.final(peer.request("INVITE", acme.number, body=SDP.format(formats="0")))
    peer.close()
    assert refused is not None
    assert refused.status == 480
    live = platform.server.call_soon(lambda c: c.routing.snapshot(acme.id))
    assert live["calls"] == []
