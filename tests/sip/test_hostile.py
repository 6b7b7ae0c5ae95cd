"""Hostile and malformed SIP on the wire: refused, throttled, never fatal, no call leaked.

Handcrafted UDP from loopback addresses (127.0.0.1 is the trunk; 127.0.0.2 and up are
strangers), and SIPp for a burst of real calls.
"""

from __future__ import annotations

import random
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sip.peers import free_udp_port, need
from tests.sip.platform import SipPlatform, sip_platform
from tests.support import run_on
from tests.test_calls_api import eventually
from voicemgmt.adapters.sql.tables import live_calls
from voicemgmt.adapters.switch.sip.message import Response, parse
from voicemgmt.bootstrap import Container

pytestmark = pytest.mark.sip
CORPUS = Path(__file__).parent / "corpus"
SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 9 RTP/AVP {formats}\r\n"
)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[SipPlatform]:
    with sip_platform(tmp_path) as running:
        yield running


class Peer:
    """A UDP socket on one loopback address, sending handcrafted SIP."""

    def __init__(self, platform: SipPlatform, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.host, self.port = self.sock.getsockname()
        self.target = ("127.0.0.1", platform.sip_port)
        self.counter = 0

    def close(self) -> None:
        self.sock.close()

    def request(
        self, method: str, user: str = "33170200200", *, body: str = "", agent: str = "test"
    ) -> bytes:
        self.counter += 1
        n = self.counter
        return (
            f"{method} sip:{user}@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch=z9hG4bKh{n}x{random.random()}\r\n"
            f"From: <sip:33612345678@{self.host}>;tag=f{n}\r\n"
            f"To: <sip:{user}@127.0.0.1>\r\n"
            f"Call-ID: hostile-{n}-{random.random()}@{self.host}\r\n"
            f"CSeq: 1 {method}\r\n"
            f"Contact: <sip:peer@{self.host}:{self.port}>\r\n"
            f"User-Agent: {agent}\r\nMax-Forwards: 70\r\n"
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def final(self, data: bytes, timeout: float = 3.0) -> Response | None:
        """Send a request, resent every 0.5 s as a UA would (UDP may drop it); its final
        response, or None if the platform stays silent until ``timeout``."""
        call_id = parse(data).call_id
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.send(data)
            self.sock.settimeout(min(0.5, left))
            try:
                while True:
                    message = parse(self.sock.recv(65535))
                    if (
                        isinstance(message, Response)
                        and message.status >= 200
                        and message.call_id == call_id
                    ):
                        return message
            except TimeoutError:
                continue
        return None


def test_options_is_answered_with_what_the_platform_allows(platform: SipPlatform) -> None:
    peer = Peer(platform)
    answer = peer.final(peer.request("OPTIONS"))
    peer.close()
    assert answer is not None
    assert answer.status == 200
    assert "INVITE" in (answer.headers.get("allow") or "")


def test_an_unknown_number_is_404_and_an_unshared_codec_488(platform: SipPlatform) -> None:
    peer = Peer(platform)
    unknown = peer.final(peer.request("INVITE", "33999999999", body=SDP.format(formats="0")))
    g729 = peer.final(peer.request("INVITE", body=SDP.format(formats="18")))
    stray_bye = peer.final(peer.request("BYE"))
    peer.close()
    assert unknown is not None
    assert unknown.status == 404
    assert g729 is not None
    assert g729.status == 488
    assert stray_bye is not None
    assert stray_bye.status == 481


def test_strangers_are_refused_then_ignored_while_the_trunk_still_gets_answers(
    platform: SipPlatform,
) -> None:
    stranger, trunk = Peer(platform, "127.0.0.2"), Peer(platform)
    invite = SDP.format(formats="0")
    first = stranger.final(stranger.request("INVITE", body=invite))
    assert first is not None
    assert first.status == 403
    for _ in range(12):
        stranger.final(stranger.request("INVITE", body=invite), timeout=0.3)
    assert stranger.final(stranger.request("OPTIONS"), timeout=1.0) is None  # throttled
    answer = trunk.final(trunk.request("OPTIONS"))
    assert answer is not None
    assert answer.status == 200
    scanner = Peer(platform, "127.0.0.3")
    assert scanner.final(scanner.request("OPTIONS", agent="friendly-scanner"), 1.0) is None
    for peer in (stranger, trunk, scanner):
        peer.close()


def test_malformed_and_mutated_messages_never_stop_the_driver(platform: SipPlatform) -> None:
    """A stranger floods every kind of message, mutated; the trunk floods all but INVITEs
    (a mutated INVITE from the trunk may well be a real call). The driver still answers."""
    stranger, trunk = Peer(platform, "127.0.0.5"), Peer(platform)
    rng = random.Random(7)
    valid = [p.read_bytes() for p in sorted((CORPUS / "valid").glob("*.sip"))]
    not_invites = [m for m in valid if b"INVITE sip:" not in m[:20]]
    try:
        for path in sorted((CORPUS / "invalid").glob("*.sip")):
            trunk.send(path.read_bytes())
        for peer, messages in ((stranger, valid), (trunk, not_invites)):
            for _ in range(1000):
                data = bytearray(rng.choice(messages))
                for _ in range(rng.randint(1, 6)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                peer.send(bytes(data))
        trunk.send(b"\r\n\r\n")
        trunk.send(bytes(rng.randrange(256) for _ in range(1400)))
        answer = trunk.final(trunk.request("OPTIONS"), timeout=10)
    finally:
        stranger.close()
        trunk.close()
    assert answer is not None
    assert answer.status == 200


def test_a_burst_of_sipp_calls_all_end_with_a_record(platform: SipPlatform, tmp_path: Path) -> None:
    """SIPp calls while nobody is online: answered, queued with music, hung up by SIPp."""
    sipp = need("sipp")
    calls = 30
    done = subprocess.run(
        [
            sipp,
            "-sn",
            "uac",
            f"127.0.0.1:{platform.sip_port}",
            "-s",
            platform.acme.number,
            "-i",
            "127.0.0.1",
            "-p",
            str(free_udp_port(gap=2)),  # -p 0 would announce 5060 in its Via
            "-r",
            "15",
            "-m",
            str(calls),
            "-d",
            "500",
            "-nostdin",
            "-timeout",
            "60",
            "-trace_err",
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    acme = platform.acme

    def all_recorded() -> bool:
        with platform.client() as client:
            items = client.get(
                "/api/v1/call-records", auth=acme.auth, params={"limit": 100}
            ).json()["items"]
        return len(items) == calls and all(r["outcome"] == "abandoned" for r in items)

    eventually(all_recorded, timeout=20)


def test_the_first_answer_to_an_invite_comes_once_the_call_is_stored(
    platform: SipPlatform,
) -> None:
    """What the caller is told survives a crash: no response (not even 100 Trying) before the
    call's trace is in the database (services/live_calls.py). Another writer holds SQLite's
    write lock for a second: the INVITE gets nothing meanwhile, then its answer."""
    database = Path(platform.settings.data_dir) / "voicemgmt.db"
    peer = Peer(platform)
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the write lock: the server's step must wait
    try:
        peer.send(peer.request("INVITE", body=SDP.format(formats="0")))
        peer.sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            peer.sock.recv(65535)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    peer.sock.settimeout(10)
    first = parse(peer.sock.recv(65535))
    stored = run_on(platform.settings, count_live_calls)
    peer.close()
    assert isinstance(first, Response)
    assert first.status in (100, 200)  # 200: answered at once, for its queue music
    assert stored == 1


async def count_live_calls(container: Container) -> int:
    async with container.engine.connect() as connection:
        return len((await connection.execute(live_calls.select())).all())
