"""Request heads held to limits before the application sees them: size, field count, time.

uvicorn reads heads with httptools (llhttp), which sets no limit of its own: a 1 MB header or
5,000 fields reach the application, and a client that sends its head one byte a second
holds a connection (and its buffers) for as long as it likes; uvicorn's only timer is the
keep-alive one, armed *after* a response. An ASGI middleware cannot help with either: it
runs once the whole head has been read. So this is a subclass of uvicorn's httptools
protocol (passed as ``uvicorn.Config(http=...)``) that adds, per request head:

- a size limit: the bytes received before the head is complete, and the total of the
  fields' names and values, at most ``max_bytes`` → **431** with the JSON error body
  (``err_code`` ``headers_too_large``), and the connection is closed;
- a field count limit, ``max_count`` → the same 431;
- a deadline: the head must be complete ``timeout`` seconds after the connection opened or
  after the head's first byte → **408** (``header_timeout``), and the connection is closed.
  Idle keep-alive connections between requests stay under uvicorn's ``timeout_keep_alive``.

Bodies are not covered here (``BodyLimitMiddleware`` bounds their size).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from voicemgmt.web.errors import error_body


@dataclass(frozen=True, slots=True)
class HeadLimits:
    max_bytes: int
    max_count: int
    timeout: float


class _HeadRefused(Exception):
    """Raised in a parser callback to stop parsing; the answer is already chosen."""


def _answer(status: int, reason: str, code: str, message: str, details: dict[str, Any]) -> bytes:
    body = json.dumps(error_body(status, code, message, details)).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``limits`` on every request head."""

    limits: ClassVar[HeadLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # from the connection (or a head's first byte) to its end
        self._head_received = 0
        self._head_fields = 0
        self._head_size = 0
        self._head_deadline: asyncio.TimerHandle | None = None
        self._refusal: bytes | None = None

    # the deadline

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        super().connection_lost(exc)

    def _arm_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.limits.timeout, self._head_too_slow)

    def _disarm_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self._in_head and not self.transport.is_closing():
            message = f"the request head was not complete within {self.limits.timeout:g} s"
            details = {"timeout_seconds": self.limits.timeout}
            self._refuse(_answer(408, "Request Timeout", "header_timeout", message, details))

    # the size and the count

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the head's bytes counted and a refusal answered as chosen."""
        if self._in_head:
            self._head_received += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(self._refusal)
                return
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
            return
        if self._in_head and self._head_received > self.limits.max_bytes:
            self._refuse(self._too_large())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_fields = self._head_size = 0
        self._arm_deadline()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF, as sent
        if self._head_fields > self.limits.max_count or self._head_size > self.limits.max_bytes:
            self._refusal = self._too_large()
            raise _HeadRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_received = 0
        self._disarm_deadline()
        super().on_headers_complete()

    def _too_large(self) -> bytes:
        limits = self.limits
        message = (
            f"the request head is too large: at most {limits.max_bytes} bytes "
            f"and {limits.max_count} header fields"
        )
        details = {"max_header_bytes": limits.max_bytes, "max_header_count": limits.max_count}
        return _answer(
            431, "Request Header Fields Too Large", "headers_too_large", message, details
        )

    def _refuse(self, answer: bytes) -> None:
        self._disarm_deadline()
        self._in_head = False
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()


def guarded_http_protocol(limits: HeadLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to give uvicorn as ``http=``, bound to ``limits``."""
    return type("GuardedHttpProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
