"""SIP call cases with real peers: CANCEL, decline, ring timeout, hold, registration, and
click-to-call through the trunk to a SIPp answering peer (with the dial-out rules)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sip.peers import baresip, correlation, free_udp_port, need, read_wav
from tests.sip.platform import CALLER_VOICE, SipPlatform, sip_platform
from tests.sip.test_baresip_calls import give_phone
from tests.test_calls_api import Operator, events, eventually, next_event, record_of

pytestmark = pytest.mark.sip


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[SipPlatform]:
    need("baresip")
    with sip_platform(tmp_path) as running:
        yield running


def group_settings(platform: SipPlatform, **settings: object) -> None:
    acme = platform.acme
    with platform.client() as client:
        answer = client.patch(
            f"/api/v1/groups/{acme.id_group}", auth=acme.auth, json={"settings": settings}
        )
        assert answer.status_code == 200, answer.text
        answer = client.patch(
            f"/api/v1/operators/{acme.other_id_agent}",
            auth=acme.auth,
            json={"groups": [{"id_group": acme.id_group, "priority": 1}]},
        )
        assert answer.status_code == 200, answer.text


def test_the_caller_hangs_up_while_the_phone_rings(platform: SipPlatform, tmp_path: Path) -> None:
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
        caller.command("hangup")
        phone.wait_event("CALL_CLOSED")  # the platform CANCELled the INVITE
        record = record_of(platform.server, acme, call_id)
        assert record["outcome"] == "abandoned"
        assert record["ended_by"] == "caller"
        ana.http.close()


def test_the_operator_declines_on_the_phone(platform: SipPlatform, tmp_path: Path) -> None:
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
            phone.command("hangup")  # baresip refuses a ringing call with 486
            withdrawn = next_event(ws, "call.offer_withdrawn")
        assert withdrawn["data"]["reason"] == "declined"
        caller.command("hangup")
        ana.http.close()


def test_a_ring_timeout_moves_the_call_to_the_next_operator(
    platform: SipPlatform, tmp_path: Path
) -> None:
    acme = platform.acme
    group_settings(platform, ring_timeout=3, wrap_up=0)
    with (
        baresip(tmp_path, "caller", source=platform.caller_voice) as caller,
        baresip(tmp_path, "ana", source=platform.operator_voice) as ana_phone,
        baresip(tmp_path, "bob", source=platform.operator_voice) as bob_phone,
    ):
        for phone in (ana_phone, bob_phone, caller):
            phone.start()
        give_phone(platform, acme.id_agent, ana_phone, "ana")
        give_phone(platform, acme.other_id_agent, bob_phone, "bob")
        ana = Operator(platform.server, acme, acme.id_agent)
        bob = Operator(platform.server, acme, acme.other_id_agent)
        bob.status("online")
        time.sleep(0.5)
        ana.status("online")  # Bob has been idle longer: he is offered the call first
        caller.command("dial", platform.uri_of_number)
        bob_phone.wait_event("CALL_INCOMING")
        bob_phone.wait_event("CALL_CLOSED", timeout=10)  # no answer: CANCEL after 3 s
        ana_phone.wait_event("CALL_INCOMING", timeout=10)
        ana_phone.command("accept")
        ana_phone.wait_event("CALL_ESTABLISHED")
        call_id = eventually(lambda: ana.state()["calls"] and ana.state()["calls"][0]["id_call"])
        caller.command("hangup")
        ana_phone.wait_event("CALL_CLOSED")
        record = record_of(platform.server, acme, call_id)
        assert record["id_op"] == acme.id_agent
        assert acme.other_id_agent in record["operators_offered"]
        ana.http.close()
        bob.http.close()


def test_hold_plays_music_and_unhold_brings_the_operator_back(
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
        time.sleep(1.0)
        assert ana.act(call_id, "hold").status_code == 200
        time.sleep(3.0)
        assert ana.act(call_id, "unhold").status_code == 200
        time.sleep(1.0)
        caller.command("hangup")
        phone.wait_event("CALL_CLOSED")
        record = record_of(platform.server, acme, call_id)
        assert 2 <= record["duration_hold"] <= 6
        ana.http.close()
        heard_by_operator = read_wav(phone.recording("dec"))[0]
        reinvites = caller.logs().count("got re-INVITE")
    assert reinvites == 2  # sendonly to hold, sendrecv to resume
    assert correlation(CALLER_VOICE, heard_by_operator[-int(0.9 * 8000) : -int(0.1 * 8000)]) > 0.9


def test_a_phone_registers_with_digest_and_a_wrong_password_is_refused(
    tmp_path: Path,
) -> None:
    need("baresip")
    devices = {"ana": {"username": "ana", "password": "right-password"}}
    with sip_platform(tmp_path, devices=devices) as platform:
        acme = platform.acme
        registrar = f"sip:127.0.0.1:{platform.sip_port}"
        with (
            baresip(tmp_path, "intruder", source=platform.operator_voice) as intruder,
            baresip(tmp_path, "ana", source=platform.operator_voice) as phone,
            baresip(tmp_path, "caller", source=platform.caller_voice) as caller,
        ):
            intruder.add_account(
                f"sip:ana@127.0.0.1:{platform.sip_port}",
                auth_pass="wrong-password",
                outbound=registrar,
                regint="60",
            )
            intruder.start()
            intruder.wait_log("403 Forbidden")
            phone.add_account(
                f"sip:ana@127.0.0.1:{platform.sip_port}",
                auth_pass="right-password",
                outbound=registrar,
                regint="60",
            )
            phone.start()
            phone.wait_log("200 OK")
            caller.start()
            ana = Operator(platform.server, acme, acme.id_agent)
            ana.status("online")
            caller.command("dial", platform.uri_of_number)
            phone.wait_event("CALL_INCOMING")  # rung at its registered contact
            caller.command("hangup")
            phone.wait_event("CALL_CLOSED")
            ana.http.close()


def sipp_uas(
    workdir: Path, port: int, scenario: list[str] | None = None
) -> subprocess.Popen[bytes]:
    binary = need("sipp")
    return subprocess.Popen(
        [
            binary,
            *(scenario or ["-sn", "uas"]),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-nostdin",
            "-trace_msg",
            "-message_file",
            str(workdir / "sipp.log"),
            "-timeout",
            "60",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_click_to_call_rings_the_phone_then_dials_the_customer_through_the_trunk(
    tmp_path: Path,
) -> None:
    need("baresip")
    trunk_port = free_udp_port(gap=2)
    with sip_platform(tmp_path, sip_trunk_outbound=f"127.0.0.1:{trunk_port}") as platform:
        acme = platform.acme
        with platform.client() as client:
            client.patch(
                "/api/v1/account",
                auth=acme.auth,
                json={"settings": {"caller_id": "33170200299", "dial_out": {"home_country": 33}}},
            ).raise_for_status()
        carrier = sipp_uas(tmp_path, trunk_port)
        try:
            with baresip(tmp_path, "ana", source=platform.operator_voice) as phone:
                phone.start()
                give_phone(platform, acme.id_agent, phone, "ana")
                ana = Operator(platform.server, acme, acme.id_agent)
                ana.status("online")
                with events(platform.server, ana.token) as ws:
                    ws.recv(timeout=5)
                    answer = ana.http.post("/api/v1/me/calls", json={"to": "+33612345678"})
                    assert answer.status_code == 201, answer.text
                    call_id = answer.json()["id_call"]
                    incoming = phone.wait_event("CALL_INCOMING")
                    # the operator's phone shows whom it is about to call, not "anonymous"
                    assert incoming["peeruri"].startswith("sip:33612345678@"), incoming
                    assert "33612345678" in phone.logs()  # the display name baresip printed
                    phone.command("accept")
                    answered = next_event(ws, "call.answered", timeout=15)
                    assert answered["data"]["direction"] == "out"
                    time.sleep(1.0)
                    phone.command("hangup")
                    next_event(ws, "call.ended", timeout=15)
                record = record_of(platform.server, acme, call_id)
                assert record["outcome"] == "answered"
                assert record["direction"] == "out"
                ana.http.close()
        finally:
            stop(carrier)
        trace = (tmp_path / "sipp.log").read_text(errors="replace")
        assert "INVITE sip:33612345678@127.0.0.1" in trace
        assert "From: <sip:33170200299@" in trace
        assert "BYE sip:" in trace


@pytest.mark.parametrize(
    ("number", "reason"),
    [("+33899123456", "premium_not_allowed"), ("+14155550123", "international_not_allowed")],
)
def test_operators_cannot_dial_premium_or_international_numbers(
    tmp_path: Path, number: str, reason: str
) -> None:
    """A refused number is a clear API error before anything happens: no phone rings, no
    call is made, nothing reaches the carrier."""
    need("baresip")
    trunk_port = free_udp_port(gap=2)
    with sip_platform(tmp_path, sip_trunk_outbound=f"127.0.0.1:{trunk_port}") as platform:
        acme = platform.acme
        carrier = sipp_uas(tmp_path, trunk_port)
        try:
            with baresip(tmp_path, "ana", source=platform.operator_voice) as phone:
                phone.start()
                give_phone(platform, acme.id_agent, phone, "ana")
                ana = Operator(platform.server, acme, acme.id_agent)
                ana.status("online")
                answer = ana.http.post("/api/v1/me/calls", json={"to": number})
                assert answer.status_code == 403, answer.text
                assert answer.json()["err_code"] == "number_not_allowed"
                assert answer.json()["details"] == {"reason": reason}
                with pytest.raises(TimeoutError):
                    phone.wait_event("CALL_INCOMING", timeout=3)  # the phone never rang
                assert ana.http.get("/api/v1/me/calls").json()["items"] == []
                # the operator is still free: an allowed number goes through
                allowed = ana.http.post("/api/v1/me/calls", json={"to": "+33612345678"})
                assert allowed.status_code == 201, allowed.text
                phone.wait_event("CALL_INCOMING")
                ana.http.close()
        finally:
            stop(carrier)
        trace = (
            (tmp_path / "sipp.log").read_text(errors="replace")
            if (tmp_path / "sipp.log").exists()
            else ""
        )
        assert "INVITE" not in trace


@pytest.mark.parametrize(
    ("status", "reason"),
    [(486, "busy"), (480, "no_answer"), (404, "invalid_number"), (403, "forbidden")],
)
def test_a_customer_refused_by_the_carrier_ends_the_click_to_call_with_its_reason(
    tmp_path: Path, status: int, reason: str
) -> None:
    need("baresip")
    trunk_port = free_udp_port(gap=2)
    scenario = tmp_path / "refuse.xml"
    template = (Path(__file__).parent / "scenarios" / "refuse.xml").read_text()
    scenario.write_text(template.replace("CODE", str(status)))  # SIPp checks codes at load
    with sip_platform(tmp_path, sip_trunk_outbound=f"127.0.0.1:{trunk_port}") as platform:
        acme = platform.acme
        carrier = sipp_uas(tmp_path, trunk_port, ["-sf", str(scenario)])
        try:
            with baresip(tmp_path, "ana", source=platform.operator_voice) as phone:
                phone.start()
                give_phone(platform, acme.id_agent, phone, "ana")
                ana = Operator(platform.server, acme, acme.id_agent)
                ana.status("online")
                answer = ana.http.post("/api/v1/me/calls", json={"to": "+33612345678"})
                assert answer.status_code == 201, answer.text
                call_id = answer.json()["id_call"]
                phone.wait_event("CALL_INCOMING")
                phone.command("accept")
                phone.wait_event("CALL_CLOSED")  # the platform hangs up the operator's phone
                record = record_of(platform.server, acme, call_id)
                assert record["outcome"] == "failed"
                assert record["disconnect_reason"] == reason
                ana.http.close()
        finally:
            stop(carrier)
