"""SIP over TCP and TLS: real calls (SIPp over TCP), and every stream limit against abuse.

Each hostile case ends with a well-formed OPTIONS on a new connection: the node carries on.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sip.peers import free_udp_port, need
from tests.sip.platform import SipPlatform, sip_platform
from tests.sip.test_sip_metrics import scrape
from tests.test_calls_api import eventually
from tests.test_metrics import TOKEN, value
from voicemgmt.adapters.switch.sip.message import Response, parse

pytestmark = pytest.mark.sip


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[SipPlatform]:
    limits: dict[str, Any] = {
        "sip_max_connections_per_address": 20,
        "sip_idle_timeout": 2.0,
        "sip_message_timeout": 1.0,
        "sip_tls_handshake_timeout": 1.0,
        "metrics_token": TOKEN,
    }
    with sip_platform(tmp_path, streams=True, **limits) as running:
        yield running


def options(transport: str, host: str, port: int, n: int = 1, *, body: bytes = b"") -> bytes:
    return (
        f"OPTIONS sip:33170200200@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {host}:{port};branch=z9hG4bKstream{n}-{time.time_ns()}\r\n"
        f"From: <sip:probe@{host}>;tag=p{n}\r\n"
        f"To: <sip:33170200200@127.0.0.1>\r\n"
        f"Call-ID: stream-{n}-{time.time_ns()}@{host}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        f"Max-Forwards: 70\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def read_response(sock: socket.socket, timeout: float = 5.0) -> Response:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    message = parse(data)
    assert isinstance(message, Response)
    return message


def tcp(platform: SipPlatform, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(
        ("127.0.0.1", platform.sip_port), timeout=5, source_address=(source, 0)
    )
    return sock


def tls(platform: SipPlatform) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(platform.workdir / "certs" / "ca.pem"))
    raw = socket.create_connection(("127.0.0.1", platform.sip_port + 1), timeout=5)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def closed_by_server(sock: socket.socket, timeout: float = 5.0) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False
    return True


def still_serving(platform: SipPlatform) -> None:
    """A fresh OPTIONS over TCP and over TLS is answered 200."""
    with tcp(platform) as sock:
        host, port = sock.getsockname()
        sock.sendall(options("TCP", host, port))
        assert read_response(sock).status == 200
    with tls(platform) as sock:
        host, port = sock.getsockname()
        sock.sendall(options("TLS", host, port))
        assert read_response(sock).status == 200


def test_options_over_tcp_and_tls_reuse_the_connection_and_pings_are_answered(
    platform: SipPlatform,
) -> None:
    for sock, name in ((tcp(platform), "TCP"), (tls(platform), "TLS")):
        with sock:
            host, port = sock.getsockname()
            for n in (1, 2):  # two requests, one connection, answers on it
                sock.sendall(options(name, host, port, n))
                answer = read_response(sock)
                assert answer.status == 200
                assert answer.top_via.transport == name
            sock.sendall(b"\r\n\r\n")  # RFC 5626 keep-alive ping
            assert sock.recv(16) == b"\r\n"


def test_a_message_split_in_pieces_is_read_whole(platform: SipPlatform) -> None:
    with tcp(platform) as sock:
        host, port = sock.getsockname()
        data = options("TCP", host, port, body=b"v=0\r\n")
        for index in range(0, len(data), 7):
            sock.sendall(data[index : index + 7])
        assert read_response(sock).status == 200


def test_a_huge_content_length_gets_413_and_the_connection_closes(platform: SipPlatform) -> None:
    with tcp(platform) as sock:
        host, port = sock.getsockname()
        head = options("TCP", host, port).replace(
            b"Content-Length: 0", b"Content-Length: 999999999"
        )
        sock.sendall(head)
        assert read_response(sock).status == 413
        assert closed_by_server(sock)
    still_serving(platform)
    closed = "voicemgmt_sip_connections_closed_total"
    assert value(scrape(platform), closed, reason="too_large") == 1


def test_a_message_without_end_or_length_closes_the_connection(platform: SipPlatform) -> None:
    with tcp(platform) as sock:  # 20 KiB of headers and never the blank line
        sock.sendall(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n" + b"X-Pad: aaaaaaaa\r\n" * 1200)
        assert closed_by_server(sock)
    with tcp(platform) as sock:  # no Content-Length: the stream cannot be framed
        host, port = sock.getsockname()
        sock.sendall(options("TCP", host, port).replace(b"Content-Length: 0\r\n", b""))
        assert closed_by_server(sock)
    still_serving(platform)


def test_garbage_on_the_tls_port_and_a_handshake_that_never_ends_are_closed(
    platform: SipPlatform,
) -> None:
    with socket.create_connection(("127.0.0.1", platform.sip_port + 1), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 4)
        assert closed_by_server(sock)
    with socket.create_connection(("127.0.0.1", platform.sip_port + 1), timeout=5) as sock:
        started = time.monotonic()
        assert closed_by_server(sock, timeout=5)  # says nothing: the handshake timeout (1 s)
        assert time.monotonic() - started < 4.5
    with tcp(platform) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00" + bytes(512))  # TLS on the TCP port: junk
        assert closed_by_server(sock)
    still_serving(platform)


def test_a_slow_partial_message_and_an_idle_connection_are_closed(platform: SipPlatform) -> None:
    with tcp(platform) as slow:
        host, port = slow.getsockname()
        closed = False
        for byte in options("TCP", host, port)[:40]:  # 0.1 s a byte: 4 s for 40 bytes
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
        assert closed or closed_by_server(slow, timeout=3)  # the message timeout (1 s)
    with tcp(platform) as idle:
        started = time.monotonic()
        assert closed_by_server(idle, timeout=5)  # the idle timeout (2 s)
        assert time.monotonic() - started >= 1.5
    still_serving(platform)


def test_thousands_of_connections_from_one_address_are_refused_beyond_the_limit(
    platform: SipPlatform,
) -> None:
    source = "127.0.0.9"
    held: list[socket.socket] = []
    refused = 0
    try:
        for _ in range(1000):
            try:
                sock = tcp(platform, source)
            except OSError:
                refused += 1
                continue
            held.append(sock)
        time.sleep(0.5)
        alive = 0
        for sock in held:
            sock.settimeout(0.01)
            try:
                if sock.recv(1) == b"":
                    continue
            except TimeoutError:
                alive += 1
            except OSError:
                continue
        assert 1 <= alive <= 20  # the per-address limit; the rest were closed at once
        still_serving(platform)  # other addresses are not affected
        counted = value(
            scrape(platform), "voicemgmt_sip_connections_refused_total", limit="max_per_address"
        )
        # most were refused; a few more got in as idle ones closed (2 s) during the loop
        assert counted >= 800 - refused
    finally:
        for sock in held:
            sock.close()


def test_sipp_places_calls_over_tcp(platform: SipPlatform, tmp_path: Path) -> None:
    """SIPp calls over TCP (``-t t1``) while nobody is online: queued, hung up, recorded."""
    sipp = need("sipp")
    calls = 10
    done = subprocess.run(
        [
            sipp,
            "-sn",
            "uac",
            f"127.0.0.1:{platform.sip_port}",
            "-t",
            "t1",
            "-s",
            platform.acme.number,
            "-i",
            "127.0.0.1",
            "-p",
            str(free_udp_port(gap=2)),
            "-r",
            "5",
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
