"""RTP inactivity: an answered call whose RTP stops coming from either side is hung up, with
``media_timeout`` in its record; a call whose phones keep talking is left alone.

Real baresip phones on both media backends; one of them is killed with SIGKILL mid-call (a
phone that lost power: no BYE, no more RTP).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sip.peers import Baresip, baresip, need, rtpengine
from tests.sip.platform import SipPlatform, sip_platform
from tests.sip.test_baresip_calls import give_phone
from tests.test_calls_api import Operator, events, next_event, record_of

pytestmark = pytest.mark.sip
TIMEOUT = 2.0


@pytest.fixture(params=["relay", "rtpengine"])
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SipPlatform]:
    need("baresip")
    with contextlib.ExitStack() as stack:
        media: dict[str, Any] = {}
        if request.param == "rtpengine":
            daemon = stack.enter_context(rtpengine(tmp_path))
            media = {
                "media": "rtpengine",
                "rtpengine_ng": f"127.0.0.1:{daemon.ng_port}",
                "rtpengine_dtmf": f"127.0.0.1:{daemon.dtmf_port}",
            }
        yield stack.enter_context(sip_platform(tmp_path, sip_media_timeout=TIMEOUT, **media))


def kill(phone: Baresip) -> None:
    """Pull the plug: no BYE, no more RTP."""
    assert phone._process is not None
    os.killpg(phone._process.pid, signal.SIGKILL)
    phone._process.wait()


@pytest.mark.parametrize("silent", ["caller", "operator"])
def test_a_call_whose_rtp_stops_is_hung_up_with_media_timeout(
    platform: SipPlatform, tmp_path: Path, silent: str
) -> None:
    acme = platform.acme
    with (
        baresip(tmp_path, "caller", source=platform.caller_voice) as caller,
        baresip(tmp_path, "ana", source=platform.operator_voice) as phone,
    ):
        phone.start()
        caller.start()
        give_phone(platform, acme.id_agent, phone, "ana")
        ana = Operator(platform.server, acme, acme.id_agent)
        ana.status("online")
        with events(platform.server, ana.token) as ws:
            ws.recv(timeout=5)
            caller.command("dial", platform.uri_of_number)
            phone.wait_event("CALL_INCOMING")
            phone.command("accept")
            answered = next_event(ws, "call.answered", timeout=15)
            call_id = answered["data"]["id_call"]
            # both phones talk: twice the timeout passes and the call is still up
            with pytest.raises(TimeoutError):
                next_event(ws, "call.ended", timeout=2 * TIMEOUT + 1)
            killed_at = time.monotonic()
            kill(caller if silent == "caller" else phone)
            ended = next_event(ws, "call.ended", timeout=4 * TIMEOUT + 5)
            waited = time.monotonic() - killed_at
            survivor = phone if silent == "caller" else caller
            survivor.wait_event("CALL_CLOSED")  # the platform hung up the other side too
        record = record_of(platform.server, acme, call_id)
        ana.http.close()
    assert ended["data"]["record"]["id_call"] == call_id
    assert record["disconnect_reason"] == "media_timeout"
    assert record["outcome"] == "answered"
    assert record["ended_by"] == "system"
    assert TIMEOUT <= waited <= TIMEOUT + 4


def test_a_call_on_hold_is_not_hung_up_for_the_silence_of_hold(
    platform: SipPlatform, tmp_path: Path
) -> None:
    acme = platform.acme
    with (
        baresip(tmp_path, "caller", source=platform.caller_voice) as caller,
        baresip(tmp_path, "ana", source=platform.operator_voice) as phone,
    ):
        phone.start()
        caller.start()
        give_phone(platform, acme.id_agent, phone, "ana")
        ana = Operator(platform.server, acme, acme.id_agent)
        ana.status("online")
        caller.command("dial", platform.uri_of_number)
        phone.wait_event("CALL_INCOMING")
        call_id = ana.ringing_call()
        phone.command("accept")
        phone.wait_event("CALL_ESTABLISHED")
        assert ana.act(call_id, "hold").status_code == 200
        time.sleep(3 * TIMEOUT)  # the caller, re-INVITEd sendonly, may send nothing
        assert ana.act(call_id, "unhold").status_code == 200
        time.sleep(1.0)
        caller.command("hangup")
        phone.wait_event("CALL_CLOSED")
        record = record_of(platform.server, acme, call_id)
        ana.http.close()
    assert record["ended_by"] == "caller"
    assert record["disconnect_reason"] != "media_timeout"
