"""Calls through the SIP driver with real baresip phones on loopback.

A caller dials a number, hears the IVR prompt, keys an order number (RFC 4733), waits with
music; the operator's phone rings and answers; each side hears the other; the caller hangs
up; the record carries the IVR variable and the durations. Audio is checked by correlating
what each phone recorded with what the other side played.
"""

from __future__ import annotations

import array
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sip.peers import Baresip, baresip, correlation, need, read_wav, rtpengine
from tests.sip.platform import CALLER_VOICE, OPERATOR_VOICE, SipPlatform, sip_platform
from tests.support import LiveServer, SeededAccount, live_server, make_settings, seed_two_accounts
from tests.test_calls_api import (
    Operator,
    events,
    next_event,
    place_call,
    record_of,
    token_for,
)
from voicemgmt.adapters.switch.sip.prompts import chime

pytestmark = pytest.mark.sip


@pytest.fixture(params=["relay", "rtpengine"])
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SipPlatform]:
    """The platform with each media backend: the in-process relay, then rtpengine."""
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
        yield stack.enter_context(sip_platform(tmp_path, **media))


def set_ivr(platform: SipPlatform) -> None:
    acme = platform.acme
    ivr = {
        "start": "order",
        "steps": {
            "order": {
                "type": "collect",
                "prompt": {"audio": "welcome.wav"},
                "variable": "order_number",
                "min_length": 4,
                "max_length": 8,
                "timeout": 20,
                "inter_digit_timeout": 5,
                "next": {"group": acme.id_group},
            }
        },
    }
    with platform.client() as client:
        answer = client.patch(f"/api/v1/numbers/{acme.number}", auth=acme.auth, json={"ivr": ivr})
        assert answer.status_code == 200, answer.text


def give_phone(platform: SipPlatform, operator_id: int, phone: Baresip, username: str) -> None:
    with platform.client() as client:
        answer = client.put(
            f"/api/v1/operators/{operator_id}/sip-device",
            auth=platform.acme.auth,
            json={"username": username, "contact": f"sip:{username}@{phone.address}"},
        )
        assert answer.status_code == 200, answer.text


def test_a_caller_goes_through_the_ivr_to_an_operator_and_both_hear_each_other(
    platform: SipPlatform, tmp_path: Path
) -> None:
    set_ivr(platform)
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
            caller.wait_event("CALL_ESTABLISHED")
            time.sleep(2.5)  # the prompt plays (2 s)
            for key in "4711#":
                caller.command("sndcode", key)
                time.sleep(0.25)
                caller.command("sndcode", "")  # release the key
                time.sleep(0.15)
            offered = next_event(ws, "call.offered", timeout=20)
            assert offered["data"]["variables"] == {"order_number": "4711"}
            call_id = offered["data"]["id_call"]
            phone.wait_event("CALL_INCOMING")
            time.sleep(1.0)  # music while the phone rings
            phone.command("accept")
            answered = next_event(ws, "call.answered")
            assert answered["data"]["id_op"] == acme.id_agent
            time.sleep(4.0)  # they talk
            caller.command("hangup")
            ended = next_event(ws, "call.ended", timeout=15)
            phone.wait_event("CALL_CLOSED")
        record = record_of(platform.server, acme, call_id)
        assert ended["data"]["record"]["id_call"] == call_id
        assert record["variables"] == {"order_number": "4711"}
        assert record["outcome"] == "answered"
        assert record["id_op"] == acme.id_agent
        assert record["duration_svi"] >= 2
        assert 3 <= record["duration_comm"] <= 20  # 4 s of talk; a loaded machine adds delay
        assert record["duration_ring"] >= 0.5
        assert record["duration"] >= record["duration_comm"] + record["duration_svi"]
        ana.http.close()

        heard_by_caller, _ = read_wav(caller.recording("dec"))
        heard_by_operator, _ = read_wav(phone.recording("dec"))
    assert correlation(heard_by_caller, platform.prompt) > 0.9
    music = array.array("h", chime().pcm[: 2 * 4000])  # the first half second of the music
    assert correlation(heard_by_caller, music) > 0.9
    talk = heard_by_operator[-3 * 8000 : -1 * 8000]  # a stretch of the conversation
    assert correlation(CALLER_VOICE, talk) > 0.9
    answer_part = heard_by_caller[-3 * 8000 : -1 * 8000]
    assert correlation(OPERATOR_VOICE, answer_part) > 0.9


def test_the_phone_and_the_banner_stay_in_step(platform: SipPlatform, tmp_path: Path) -> None:
    """Answered in the banner while the phone rings: when the phone picks up, audio flows;
    hung up in the banner: both phones hang up."""
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
        caller.wait_event("CALL_ESTABLISHED")
        phone.wait_event("CALL_INCOMING")
        # The caller hears the queue music a moment first. Bridged within a few ms of the
        # music starting, rtpengine (not the relay) hands baresip the phone's stream with a
        # sequence jump that baresip drops (half the runs); see the closing note of issue 7.
        time.sleep(1.0)
        call_id = ana.ringing_call()
        assert ana.act(call_id, "answer").status_code == 200
        phone.command("accept")
        phone.wait_event("CALL_ESTABLISHED")
        time.sleep(2.0)
        assert ana.act(call_id, "hangup").status_code == 200
        caller.wait_event("CALL_CLOSED")
        phone.wait_event("CALL_CLOSED")
        record = record_of(platform.server, acme, call_id)
        assert record["ended_by"] == "operator"
        ana.http.close()
        heard = read_wav(caller.recording("dec"))[0]
    assert correlation(OPERATOR_VOICE, heard[-int(1.8 * 8000) : -int(0.3 * 8000)]) > 0.9


def kinds_until_ended(ws: Any) -> list[str]:
    """The kinds of the events seen until ``call.ended``, then half a second more."""
    kinds: list[str] = []
    deadline: float | None = None
    while deadline is None or time.monotonic() < deadline:
        try:
            frame = json.loads(ws.recv(timeout=0.5 if deadline else 15))
        except TimeoutError:
            if deadline is not None:
                break
            raise
        kinds.append(frame["kind"])
        if frame["kind"] == "call.ended":
            deadline = time.monotonic() + 0.5
    return kinds


def a_banner_answered_call(server: LiveServer, acme: SeededAccount, place: Any) -> list[str]:
    """Ana online; a call comes; she answers and hangs up in the banner: the events seen."""
    supervisor = token_for(server, acme, id_admin=acme.id_admin)
    ana = Operator(server, acme, acme.id_agent)
    try:
        with events(server, supervisor) as ws:
            ws.recv(timeout=5)
            ana.status("online")
            place()
            call_id = ana.ringing_call()
            assert ana.act(call_id, "answer").status_code == 200
            time.sleep(0.5)
            assert ana.act(call_id, "hangup").status_code == 200
            return kinds_until_ended(ws)
    finally:
        ana.http.close()


def test_the_event_stream_carries_the_same_events_as_with_the_simulated_switch(
    tmp_path: Path,
) -> None:
    need("baresip")
    with (
        sip_platform(tmp_path / "sip") as platform,
        baresip(tmp_path, "caller", source=platform.caller_voice) as caller,
    ):
        caller.start()
        sip_kinds = a_banner_answered_call(
            platform.server, platform.acme, lambda: caller.command("dial", platform.uri_of_number)
        )
    settings = make_settings(tmp_path / "sim", "", sim_prompt_seconds=0.05)
    acme, _ = seed_two_accounts(settings)
    with live_server(settings) as server:
        simulated_kinds = a_banner_answered_call(
            server, acme, lambda: place_call(server, acme, hangup_after=60)
        )
    assert sip_kinds == simulated_kinds
    assert "call.offered" in sip_kinds
    assert sip_kinds[-1] != "call.arrived"
