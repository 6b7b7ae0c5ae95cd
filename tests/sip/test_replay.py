"""A captured REGISTER sent again is refused with a fresh challenge and changes nothing.

baresip registers with digest (its SIP trace, ``-s``, is the capture); an attacker on another
address sends the authenticated REGISTER again, its Via rewritten so that answers come back
to it (the Authorization covers only the method and the URI). Before nonces were counted the
replay was accepted and the binding moved to the attacker, who then got the operator's calls.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from tests.sip.peers import Baresip, baresip, need
from tests.sip.platform import sip_platform
from tests.sip.test_hostile import Peer
from tests.test_calls_api import Operator, events, next_event
from voicemgmt.adapters.switch.sip.message import Request, parse

pytestmark = pytest.mark.sip


def captured(phone: Baresip, method: str) -> str:
    """The last ``method`` request with an Authorization header in the phone's SIP trace,
    byte for byte as it went out."""
    raw = (phone.dir / "baresip.log").read_bytes().decode(errors="replace")
    sent: list[str] = re.findall(rf"-> [0-9.:]+\n({method} .*?)\x1b\[;m", raw, flags=re.DOTALL)
    authenticated = [message for message in sent if "\r\nAuthorization: Digest" in message]
    assert authenticated, raw[-3000:]
    return authenticated[-1]


def as_attacker(message: str, peer: Peer) -> bytes:
    via = f"Via: SIP/2.0/UDP {peer.host}:{peer.port};branch=z9hG4bKreplay{peer.port};rport"
    return re.sub(r"Via: [^\r]*", via, message, count=1).encode()


def test_a_replayed_register_gets_a_stale_challenge_and_the_phone_keeps_its_calls(
    tmp_path: Path,
) -> None:
    need("baresip")
    devices = {"ana": {"username": "ana", "password": "right-password"}}
    with sip_platform(tmp_path, devices=devices) as platform:
        acme = platform.acme
        registrar = f"sip:127.0.0.1:{platform.sip_port}"
        with (
            baresip(tmp_path, "ana", source=platform.operator_voice) as phone,
            baresip(tmp_path, "caller", source=platform.caller_voice) as caller,
        ):
            phone.add_account(
                f"sip:ana@127.0.0.1:{platform.sip_port}",
                auth_pass="right-password",
                outbound=registrar,
                regint="3600",
            )
            phone.start(trace=True)
            phone.wait_log("[1 binding]")
            capture = captured(phone, "REGISTER")
            attacker = Peer(platform, "127.0.0.2")
            replayed = as_attacker(capture, attacker)
            answer = attacker.final(replayed)
            assert answer is not None
            assert answer.status == 401
            challenge = answer.headers.get("www-authenticate") or ""
            assert "stale=true" in challenge
            assert re.search(r'nonce="([^"]+)"', challenge)
            # twice more, for good measure: never accepted, never throttled into silence
            for _ in range(2):
                again = attacker.final(replayed)
                assert again is not None
                assert again.status == 401
            caller.start()
            ana = Operator(platform.server, acme, acme.id_agent)
            ana.status("online")
            caller.command("dial", platform.uri_of_number)
            phone.wait_event("CALL_INCOMING")  # still rung at its own contact
            caller.command("hangup")
            phone.wait_event("CALL_CLOSED")
            ana.http.close()
            attacker.sock.settimeout(0.2)
            received: list[bytes] = []
            try:
                while True:
                    received.append(attacker.sock.recv(65535))
            except TimeoutError:
                pass
            attacker.close()
            invites = [m for m in map(parse, received) if isinstance(m, Request)]
            assert invites == []


def test_a_replayed_invite_from_a_digest_trunk_is_challenged_and_makes_no_call(
    tmp_path: Path,
) -> None:
    """The carrier authenticates by digest (no trusted network); its captured INVITE, sent
    again from elsewhere with a new branch, gets a stale challenge and places no call."""
    need("baresip")
    ha1 = hashlib.md5(b"carrier:voicemgmt:carrier-secret", usedforsecurity=False).hexdigest()
    trunk: dict[str, Any] = {
        "sip_trunk_sources": [],
        "sip_trunk_username": "carrier",
        "sip_trunk_ha1": ha1,
    }
    with sip_platform(tmp_path, **trunk) as platform:
        acme = platform.acme
        with baresip(tmp_path, "carrier", source=platform.caller_voice) as carrier:
            carrier.add_account(
                f"sip:carrier@127.0.0.1:{platform.sip_port}",
                auth_pass="carrier-secret",
                regint="0",
            )
            carrier.start(trace=True)
            ana = Operator(platform.server, acme, acme.id_agent)
            ana.status("online")
            with events(platform.server, ana.token) as ws:
                ws.recv(timeout=5)
                carrier.command("dial", platform.uri_of_number)
                first = next_event(ws, "call.offered", timeout=15)
                capture = captured(carrier, "INVITE")
                attacker = Peer(platform, "127.0.0.2")
                answer = attacker.final(as_attacker(capture, attacker))
                attacker.close()
                assert answer is not None
                assert answer.status == 401
                assert "stale=true" in (answer.headers.get("www-authenticate") or "")
                with pytest.raises(TimeoutError):
                    next_event(ws, "call.offered", timeout=2)  # no second call
                carrier.command("hangup")
                next_event(ws, "call.ended", timeout=10)
            ana.http.close()
    assert first["data"]["id_call"]
