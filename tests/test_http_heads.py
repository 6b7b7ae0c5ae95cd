"""What the HTTP server believes and bears before the application runs: the client's address
(``VM_TRUSTED_PROXIES``), request heads' size and count (431) and how long a head may take
(408), through a real server on loopback."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support import LiveServer, SeededAccount, live_server, make_settings, seed_two_accounts


@contextmanager
def server_with(data_dir: Path, **overrides: Any) -> Iterator[tuple[LiveServer, SeededAccount]]:
    data_dir.mkdir(exist_ok=True)
    settings = make_settings(data_dir, **overrides)
    acme, _globex = seed_two_accounts(settings)
    with live_server(settings) as server:
        yield server, acme


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[tuple[LiveServer, SeededAccount]]:
    with server_with(tmp_path / "plain") as running:
        yield running


@pytest.fixture
def behind_proxy(tmp_path: Path) -> Iterator[tuple[LiveServer, SeededAccount]]:
    with server_with(tmp_path / "proxied", trusted_proxies=["127.0.0.1/32"]) as running:
        yield running


def session_ip(
    server: LiveServer, acme: SeededAccount, source: str = "127.0.0.1", **headers: str
) -> str:
    """The address a session was opened from, as the server recorded it."""
    with server.client(source=source) as client:
        opened = client.post(
            "/vm/login",
            json={"login": acme.agent_email, "password": acme.agent_password},
            headers=headers,
        )
        assert opened.status_code == 200, opened.text
        described = client.get(f"/vm/token/{opened.json()['token']}", auth=acme.auth)
    ip: str = described.json()["ip"]
    return ip


# the client's address


def test_forwarded_headers_are_ignored_when_no_proxy_is_trusted(
    plain: tuple[LiveServer, SeededAccount],
) -> None:
    server, acme = plain
    assert session_ip(server, acme, **{"X-Forwarded-For": "203.0.113.9"}) == "127.0.0.1"


def test_a_rotated_forwarded_for_does_not_escape_the_login_throttle(
    plain: tuple[LiveServer, SeededAccount],
) -> None:
    server, acme = plain
    with server.client() as client:
        codes = [
            client.post(
                "/vm/token",
                auth=(acme.login, f"guess{i}"),
                json={"id_agent": acme.id_agent},
                headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
            ).status_code
            for i in range(8)
        ]
    assert codes == [401] * 5 + [429] * 3


def test_a_trusted_proxy_names_the_client(behind_proxy: tuple[LiveServer, SeededAccount]) -> None:
    server, acme = behind_proxy
    assert session_ip(server, acme, **{"X-Forwarded-For": "203.0.113.9"}) == "203.0.113.9"
    # the rightmost address not of a trusted proxy: what the proxy itself saw
    forged = {"X-Forwarded-For": "192.0.2.66, 203.0.113.10"}
    assert session_ip(server, acme, **forged) == "203.0.113.10"


def test_a_peer_outside_the_trusted_proxies_cannot_forward(
    behind_proxy: tuple[LiveServer, SeededAccount],
) -> None:
    server, acme = behind_proxy
    forged = {"X-Forwarded-For": "203.0.113.9"}
    assert session_ip(server, acme, source="127.0.0.2", **forged) == "127.0.0.2"


def scheme_seen(server: LiveServer, source: str = "127.0.0.1") -> str:
    """The scheme the server believes the client used, as its redirects spell it."""
    with server.client(source=source) as client:
        moved = client.get("/api/v1/groups/", headers={"X-Forwarded-Proto": "https"})
    assert moved.status_code == 307
    location: str = moved.headers["location"]
    return location.split(":", 1)[0]


def test_forwarded_proto_is_believed_from_a_trusted_proxy_only(
    plain: tuple[LiveServer, SeededAccount], behind_proxy: tuple[LiveServer, SeededAccount]
) -> None:
    assert scheme_seen(plain[0]) == "http"
    assert scheme_seen(behind_proxy[0]) == "https"
    assert scheme_seen(behind_proxy[0], source="127.0.0.2") == "http"


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="trusted_proxies: 'nginx' is not an address or CIDR"):
        make_settings(tmp_path, trusted_proxies=["nginx"])


# request heads


def raw_exchange(server: LiveServer, head: bytes, timeout: float = 5) -> bytes:
    """Send ``head`` on a new connection (the server may stop reading midway) and read what
    comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # refused midway: the answer is there to read
            sock.sendall(head)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def status_and_body(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def request_head(*fields: tuple[str, str]) -> bytes:
    lines = ["GET /healthz HTTP/1.1", "Host: 127.0.0.1", *(f"{n}: {v}" for n, v in fields)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_head_within_the_limits_is_served(plain: tuple[LiveServer, SeededAccount]) -> None:
    server, _acme = plain
    fields = [(f"X-Field-{i}", "v" * 100) for i in range(95)]  # ~11 KiB
    with server.client() as client:  # httpx adds 5 (Host, Accept…): 100 fields
        assert client.get("/healthz", headers=dict(fields)).status_code == 200
    closing = ("Connection", "close")
    fields = [(f"X-Field-{i}", "v" * 100) for i in range(98)]  # with Host and Connection: 100
    assert raw_exchange(server, request_head(*fields, closing)).startswith(b"HTTP/1.1 200")
    fields.append(("X-One-Too-Many", "1"))
    assert raw_exchange(server, request_head(*fields, closing)).startswith(b"HTTP/1.1 431")


def test_a_megabyte_header_gets_431_with_the_json_error(
    plain: tuple[LiveServer, SeededAccount],
) -> None:
    server, _acme = plain
    started = time.monotonic()
    answer = raw_exchange(server, request_head(("X-Big", "a" * 1_000_000)))
    status, body = status_and_body(answer)
    assert status == 431
    assert body["err_code"] == "headers_too_large"
    assert body["details"] == {"max_header_bytes": 16384, "max_header_count": 100}
    assert time.monotonic() - started < 5


def test_a_head_just_over_16_kib_in_one_field_gets_431(
    plain: tuple[LiveServer, SeededAccount],
) -> None:
    server, _acme = plain
    with server.client() as client:
        answer = client.get("/healthz", headers={"X-Big": "a" * (16 * 1024)})
    assert answer.status_code == 431
    assert answer.json()["status"] == 431


def test_five_thousand_headers_get_431(plain: tuple[LiveServer, SeededAccount]) -> None:
    server, _acme = plain
    answer = raw_exchange(server, request_head(*((f"X-{i}", "1") for i in range(5000))))
    assert status_and_body(answer)[0] == 431


def test_the_limits_are_settings(tmp_path: Path) -> None:
    with server_with(tmp_path, max_header_count=20, max_header_bytes=2048) as (server, _acme):
        fields = [(f"X-{i}", "1") for i in range(18)] + [("Connection", "close")]  # + Host: 20
        assert raw_exchange(server, request_head(*fields)).startswith(b"HTTP/1.1 200")
        fields.append(("X-One-Too-Many", "1"))
        assert raw_exchange(server, request_head(*fields)).startswith(b"HTTP/1.1 431")
        with server.client() as client:
            assert client.get("/healthz", headers={"X-Big": "a" * 2048}).status_code == 431


# a head that takes too long


def test_slow_heads_are_cut_off_at_the_header_timeout(tmp_path: Path) -> None:
    """Slowloris: 300 clients sending their heads at a byte a second are answered 408 and
    closed at the timeout, and the server keeps serving others meanwhile."""
    with server_with(tmp_path, header_timeout_seconds=2) as (server, _acme):
        clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(300)]
        closed_after: list[float] = []
        answers: list[bytes] = []
        started = time.monotonic()

        def trickle(sock: socket.socket) -> None:
            sock.settimeout(0.05)
            received = b""
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                try:
                    sock.send(bytes([byte]))
                    chunk = sock.recv(4096)
                except TimeoutError:
                    time.sleep(1 - 0.05)
                    continue
                except OSError:
                    break
                received += chunk
                if not chunk:
                    break
            closed_after.append(time.monotonic() - started)
            answers.append(received)
            sock.close()

        threads = [threading.Thread(target=trickle, args=(c,), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        time.sleep(1)
        with server.client() as client:  # meanwhile, others are served
            assert client.get("/healthz").status_code == 200
        for thread in threads:
            thread.join(timeout=15)
        assert len(closed_after) == 300
        assert max(closed_after) < 6  # 2 s, plus a trickle's sleep and 300 threads' start
        assert sum(a.startswith(b"HTTP/1.1 408") for a in answers) >= 290
        status, body = status_and_body(next(a for a in answers if a))
        assert (status, body["err_code"]) == (408, "header_timeout")


def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(tmp_path: Path) -> None:
    with server_with(tmp_path, header_timeout_seconds=1) as (server, _acme):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            started = time.monotonic()
            answer = read_until_closed(sock)
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408")
        assert 0.8 < waited < 3


def test_a_keep_alive_connection_gets_a_fresh_deadline_for_each_head(tmp_path: Path) -> None:
    with (
        server_with(tmp_path, header_timeout_seconds=1) as (server, _acme),
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock,
    ):
        for _ in range(3):  # 3 requests over ~2.4 s on one connection, each head quick
            time.sleep(0.8)
            sock.sendall(request_head())
            answer = b""
            while not answer.endswith(b'{"status":"ok"}'):
                chunk = sock.recv(65536)
                assert chunk, f"closed after {answer!r}"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200")
