"""The rtpengine ng control protocol: bencoded dictionaries over UDP, with a cookie each.

``encode``/``decode`` are the bencoding (RFC-less, BitTorrent's); ``NgClient.request`` sends
one command and waits for its answer, retrying a lost datagram (rtpengine caches answers by
cookie, so a retried command is not run twice).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

TIMEOUT = 1.0
TRIES = 3


class NgError(Exception):
    """rtpengine refused a command, answered garbage, or did not answer."""


def encode(value: Any) -> bytes:
    if isinstance(value, bool):
        raise TypeError("bencoding has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes | bytearray):
        return b"%d:%s" % (len(value), bytes(value))
    if isinstance(value, list | tuple):
        return b"l" + b"".join(encode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(encode(k) + encode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def decode(data: bytes) -> Any:
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise ValueError("trailing bytes after a bencoded value")
    return value


def _decode(data: bytes, index: int, depth: int) -> tuple[Any, int]:
    if depth > 32 or index >= len(data):
        raise ValueError("bencoding too deep or truncated")
    kind = data[index : index + 1]
    if kind == b"i":
        end = data.index(b"e", index)
        return int(data[index + 1 : end]), end + 1
    if kind in (b"l", b"d"):
        index += 1
        items: list[Any] = []
        while data[index : index + 1] != b"e":
            if index >= len(data):
                raise ValueError("unterminated list")
            item, index = _decode(data, index, depth + 1)
            items.append(item)
        if kind == b"l":
            return items, index + 1
        if len(items) % 2:
            raise ValueError("odd dictionary")
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in items[::2]]
        return dict(zip(keys, items[1::2], strict=True)), index + 1
    colon = data.index(b":", index)
    length = int(data[index:colon])
    start = colon + 1
    if length < 0 or start + length > len(data):
        raise ValueError("truncated string")
    return data[start : start + length], start + length


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: NgClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        cookie, _, body = data.partition(b" ")
        future = self.client._pending.get(cookie)
        if future is None or future.done():
            return
        try:
            future.set_result(decode(body))
        except (ValueError, IndexError) as exc:
            future.set_exception(NgError(f"unreadable answer: {exc}"))


class NgClient:
    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: dict[bytes, asyncio.Future[Any]] = {}

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), remote_addr=self.address
        )
        self._transport = transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def request(self, command: dict[str, Any]) -> dict[str, Any]:
        if self._transport is None:
            raise NgError("the ng client is not open")
        cookie = secrets.token_hex(8).encode()
        data = cookie + b" " + encode(command)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[cookie] = future
        try:
            for _ in range(TRIES):
                self._transport.sendto(data)
                try:
                    answer = await asyncio.wait_for(asyncio.shield(future), TIMEOUT)
                    break
                except TimeoutError:
                    continue
            else:
                raise NgError(f"rtpengine did not answer {command.get('command')!r}")
        finally:
            del self._pending[cookie]
        if not isinstance(answer, dict):
            raise NgError("rtpengine's answer is not a dictionary")
        result = answer.get("result")
        if result not in (b"ok", b"pong"):
            reason = answer.get("error-reason", result)
            raise NgError(f"{command.get('command')}: {reason!r}")
        return answer
