"""SRTP keyed by SDES over SIP over TLS: real baresip phones, and the media encryption policies.

The call test hears audio both ways between a caller and an operator's phone that both insist
on SRTP (baresip ``mediaenc=srtp-mand``: plain RTP would be dropped by them). The policy
tests send handcrafted INVITEs over TLS (and TCP) and read the answer.
"""

from __future__ import annotations

import base64
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.sip.peers import baresip, correlation, need, read_wav
from tests.sip.platform import CALLER_VOICE, OPERATOR_VOICE, SipPlatform, sip_platform
from tests.test_calls_api import Operator, events, next_event
from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.message import Response, parse

pytestmark = pytest.mark.sip
KEY = base64.b64encode(bytes(range(30))).decode()


def tls_config(platform: SipPlatform) -> tuple[str, ...]:
    certs = platform.workdir / "certs"
    return (
        f"sip_cafile {certs / 'ca.pem'}",
        f"sip_certificate {certs / 'chain.pem'}",
        "module srtp.so",
    )


def test_a_caller_and_a_phone_over_tls_with_srtp_hear_each_other(tmp_path: Path) -> None:
    need("baresip")
    devices = {
        "ana": {"username": "ana", "password": "right-password", "media_encryption": "required"}
    }
    with sip_platform(tmp_path, devices=devices, streams=True) as platform:
        acme = platform.acme
        tls_port = platform.sip_port + 1
        config = tls_config(platform)
        with (
            baresip(tmp_path, "ana", source=platform.operator_voice, extra_config=config) as phone,
            baresip(
                tmp_path, "caller", source=platform.caller_voice, extra_config=config
            ) as caller,
        ):
            phone.add_account(
                f"sip:ana@127.0.0.1:{tls_port};transport=tls",
                auth_pass="right-password",
                outbound=f'"sip:127.0.0.1:{tls_port};transport=tls"',  # quoted: one parameter
                regint="60",
                mediaenc="srtp-mand",
            )
            phone.start()
            phone.wait_log("200 OK")
            caller.add_account(f"sip:caller@{caller.address}", regint="0", mediaenc="srtp-mand")
            caller.start()
            ana = Operator(platform.server, acme, acme.id_agent)
            ana.status("online")
            with events(platform.server, ana.token) as ws:
                ws.recv(timeout=5)
                caller.command("dial", f"sip:+{acme.number}@127.0.0.1:{tls_port};transport=tls")
                caller.wait_event("CALL_ESTABLISHED")
                phone.wait_event("CALL_INCOMING")  # over its registration's TLS connection
                time.sleep(0.5)
                phone.command("accept")
                next_event(ws, "call.answered", timeout=15)
                time.sleep(4.0)
                caller.command("hangup")
                next_event(ws, "call.ended", timeout=15)
                phone.wait_event("CALL_CLOSED")
            ana.http.close()
            heard_by_caller = read_wav(caller.recording("dec"))[0]
            heard_by_operator = read_wav(phone.recording("dec"))[0]
            for side in (caller, phone):
                assert "SRTP is Enabled" in (side.dir / "baresip.log").read_text(errors="replace")
    assert correlation(CALLER_VOICE, heard_by_operator[-3 * 8000 : -1 * 8000]) > 0.9
    assert correlation(OPERATOR_VOICE, heard_by_caller[-3 * 8000 : -1 * 8000]) > 0.9


def offer(profile: str = "RTP/AVP", crypto: str | None = None, extra: str = "") -> str:
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=audio 40000 {profile} 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
    ]
    if crypto is not None:
        lines.append(f"a=crypto:{crypto}")
    if extra:
        lines.append(extra)
    return "\r\n".join(lines) + "\r\n"


class StreamPeer:
    """A trunk peer on one TCP or TLS connection, sending INVITEs and reading answers."""

    def __init__(self, platform: SipPlatform, transport: str) -> None:
        port = platform.sip_port + (1 if transport == "TLS" else 0)
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        if transport == "TLS":
            context = ssl.create_default_context(cafile=str(platform.workdir / "certs" / "ca.pem"))
            self.sock: socket.socket = context.wrap_socket(raw, server_hostname="127.0.0.1")
        else:
            self.sock = raw
        self.transport = transport
        self.host, self.port = self.sock.getsockname()[:2]
        self.number = platform.acme.number
        self.buffer = b""
        self.count = 0

    def invite(self, body: str) -> Response:
        """Send an INVITE; its final answer (a 2xx is acknowledged and hung up)."""
        self.count += 1
        n, call_id = self.count, f"srtp-{self.count}-{time.time_ns()}@{self.host}"
        contact = f"sip:peer@{self.host}:{self.port};transport={self.transport.lower()}"
        common = (
            f"From: <sip:33612345678@{self.host}>;tag=f{n}\r\n"
            f"Call-ID: {call_id}\r\n"
            f"Max-Forwards: 70\r\n"
        )
        self.sock.sendall(
            (
                f"INVITE sip:{self.number}@127.0.0.1 SIP/2.0\r\n"
                f"Via: SIP/2.0/{self.transport} {self.host}:{self.port};branch=z9hG4bKs{n}\r\n"
                f"{common}To: <sip:{self.number}@127.0.0.1>\r\n"
                f"CSeq: 1 INVITE\r\n"
                f"Contact: <{contact}>\r\n"
                f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
        )
        while True:
            response = self.read()
            if response.status >= 200:
                break
        if response.status < 300:
            to = response.headers.get("to")
            for cseq, method in ((1, "ACK"), (2, "BYE")):
                self.sock.sendall(
                    (
                        f"{method} sip:vm@127.0.0.1 SIP/2.0\r\n"
                        f"Via: SIP/2.0/{self.transport} {self.host}:{self.port};"
                        f"branch=z9hG4bKs{n}{method}\r\n"
                        f"{common}To: {to}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
                    ).encode()
                )
        return response

    def read(self) -> Response:
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end >= 0:
                head = self.buffer[:head_end].decode()
                length = next(
                    int(line.split(":")[1])
                    for line in head.split("\r\n")
                    if line.lower().startswith("content-length")
                )
                total = head_end + 4 + length
                if len(self.buffer) >= total:
                    data, self.buffer = self.buffer[:total], self.buffer[total:]
                    message = parse(data)
                    if isinstance(message, Response):
                        return message
                    continue
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


@contextmanager
def peer(platform: SipPlatform, transport: str = "TLS") -> Iterator[StreamPeer]:
    found = StreamPeer(platform, transport)
    try:
        yield found
    finally:
        found.close()


def warning(response: Response) -> str:
    return response.headers.get("warning") or ""


@pytest.fixture
def optional(tmp_path: Path) -> Iterator[SipPlatform]:
    with sip_platform(tmp_path, streams=True) as platform:
        yield platform


def test_an_sdes_offer_over_tls_is_answered_with_srtp_and_our_own_key(
    optional: SipPlatform,
) -> None:
    with peer(optional) as trunk:
        answer = trunk.invite(offer("RTP/SAVP", f"7 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"))
    assert answer.status == 200, answer
    session = sdp.parse(answer.body)
    assert session.profile == "RTP/SAVP"
    assert [(c.tag, c.suite) for c in session.cryptos] == [(7, "AES_CM_128_HMAC_SHA1_80")]
    assert base64.b64encode(session.cryptos[0].key).decode() != KEY


@pytest.mark.parametrize(
    ("transport", "body", "reason"),
    [
        # RFC 4568 §8.3: keys in clear signalling are not taken
        ("TCP", offer("RTP/SAVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"), "over TLS"),
        ("TLS", offer("RTP/SAVP", "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64!"), "a=crypto"),
        ("TLS", offer("RTP/SAVP", "1 AES_CM_128_HMAC_SHA1_80 inline:" + "QUFB" * 4), "a=crypto"),
        ("TLS", offer("RTP/SAVP", f"1 F8_128_HMAC_SHA1_80 inline:{KEY}"), "a=crypto"),
        ("TLS", offer("RTP/SAVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4"), "a=crypto"),
        ("TLS", offer("RTP/SAVP", "9" * 400 + " x" * 3000), "a=crypto"),
        ("TLS", offer("UDP/TLS/RTP/SAVP", extra="a=fingerprint:sha-256 AB:CD"), "DTLS-SRTP"),
    ],
)
def test_srtp_offers_that_cannot_be_taken_get_488_with_the_reason(
    optional: SipPlatform, transport: str, body: str, reason: str
) -> None:
    with peer(optional, transport) as trunk:
        answer = trunk.invite(body)
        assert answer.status == 488
        assert reason in warning(answer)
        plain = trunk.invite(offer())  # the connection and the node carry on
        assert plain.status == 200
        assert sdp.parse(plain.body).profile == "RTP/AVP"


def test_best_effort_crypto_over_tcp_is_ignored_and_answered_plain(
    optional: SipPlatform,
) -> None:
    with peer(optional, "TCP") as trunk:
        answer = trunk.invite(offer("RTP/AVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"))
    assert answer.status == 200
    assert sdp.parse(answer.body).cryptos == ()


@pytest.mark.parametrize(
    ("policy", "body", "status", "reason"),
    [
        ("required", offer(), 488, "SRTP is required"),
        ("required", offer("RTP/SAVP", f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY}"), 200, ""),
        ("off", offer("RTP/SAVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"), 488, "is off"),
        ("off", offer("RTP/AVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"), 200, ""),
    ],
)
def test_the_trunk_policy_decides(
    tmp_path: Path, policy: str, body: str, status: int, reason: str
) -> None:
    settings: dict[str, Any] = {"sip_trunk_media_encryption": policy, "sip_trunk_transport": "tls"}
    with sip_platform(tmp_path, streams=True, **settings) as platform, peer(platform) as trunk:
        answer = trunk.invite(body)
    assert answer.status == status
    assert reason in warning(answer)
    if status == 200:
        encrypted = bool(sdp.parse(answer.body).cryptos)
        assert encrypted == (policy == "required")


def test_hold_and_resume_keep_srtp_with_the_caller(tmp_path: Path) -> None:
    """Our re-INVITEs (hold, resume) to an SRTP caller carry our key again; after resuming
    the operator hears the caller through SRTP. (What the caller hears after a re-INVITE
    cannot be checked here: baresip stops recording its decoded audio at the first one, with
    plain RTP as well.)"""
    need("baresip")
    with sip_platform(tmp_path, streams=True) as platform:
        acme = platform.acme
        tls_port = platform.sip_port + 1
        with (
            baresip(tmp_path, "ana", source=platform.operator_voice) as phone,
            baresip(
                tmp_path, "caller", source=platform.caller_voice, extra_config=tls_config(platform)
            ) as caller,
        ):
            phone.start()
            caller.add_account(f"sip:caller@{caller.address}", regint="0", mediaenc="srtp-mand")
            caller.start()
            with platform.client() as client:
                client.put(
                    f"/api/v1/operators/{acme.id_agent}/sip-device",
                    auth=acme.auth,
                    json={"username": "ana", "contact": f"sip:ana@{phone.address}"},
                ).raise_for_status()
            ana = Operator(platform.server, acme, acme.id_agent)
            ana.status("online")
            caller.command("dial", f"sip:+{acme.number}@127.0.0.1:{tls_port};transport=tls")
            phone.wait_event("CALL_INCOMING")
            call_id = ana.ringing_call()
            phone.command("accept")
            phone.wait_event("CALL_ESTABLISHED")
            time.sleep(1.0)
            assert ana.act(call_id, "hold").status_code == 200
            time.sleep(2.0)
            assert ana.act(call_id, "unhold").status_code == 200
            time.sleep(2.0)
            caller.command("hangup")
            phone.wait_event("CALL_CLOSED")
            ana.http.close()
            heard_by_operator = read_wav(phone.recording("dec"))[0]
            heard_before = read_wav(caller.recording("dec"))[0]  # until the first re-INVITE
            log = (caller.dir / "baresip.log").read_text(errors="replace")
    assert log.count("got re-INVITE") == 2  # sendonly to hold, sendrecv to resume
    assert log.count("SRTP is Enabled") == 3  # the call, then each re-INVITE, same keys
    assert correlation(OPERATOR_VOICE, heard_before) > 0.9
    assert correlation(CALLER_VOICE, heard_by_operator[-int(1.5 * 8000) : -int(0.3 * 8000)]) > 0.9
