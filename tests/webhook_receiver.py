"""A real webhook receiver on loopback for the tests: records what arrives, answers as told.

It can be down (its port closed) and up again on the same port, answer any status, redirect,
answer slowly, or send a huge body.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def delivery_id(self) -> str:
        return self.headers["vm-webhook-id"]


@dataclass
class Behaviour:
    status: int = 200
    location: str | None = None
    delay: float = 0.0
    body_bytes: int = 0


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    behaviour: Behaviour = field(default_factory=Behaviour)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                how = receiver.behaviour
                if how.delay:
                    time.sleep(how.delay)
                self.send_response(how.status)
                if how.location:
                    self.send_header("Location", how.location)
                self.send_header("Content-Length", str(how.body_bytes))
                self.end_headers()
                chunk = b"x" * 65536
                sent = 0
                try:
                    while sent < how.body_bytes:
                        self.wfile.write(chunk[: how.body_bytes - sent])
                        sent += len(chunk)
                except OSError:
                    pass  # the sender stopped reading, as it should

            def log_message(self, *_args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
