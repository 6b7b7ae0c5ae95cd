"""SIP messages cut out of a byte stream (TCP, TLS: RFC 3261 §18.3), still without I/O.

On a stream, a message ends where its ``Content-Length`` says, which is therefore required.
``StreamFramer.feed`` takes the bytes as they come and returns what they completed: whole
messages (``Frame``, for ``message.parse``), keep-alive pings (``Ping``: a double CRLF between
messages, answered with one CRLF, RFC 5626 §3.5.1), or one ``Broken`` that ends the stream: a
head or body over the limits (``too_large``, with the head when one was read, so that a request
can be answered 413 before the connection is closed) or a head that cannot be framed.
``partial`` says whether a message has begun and not ended (the connection times that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voicemgmt.adapters.switch.sip.message import MAX_BODY, MAX_MESSAGE

_LENGTH = re.compile(
    rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True, slots=True)
class Frame:
    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Broken:
    reason: str  # "too_large" or "malformed"
    head: bytes = b""  # the message's head, when it could be read (to answer 413)


Framed = Frame | Ping | Broken


class StreamFramer:
    def __init__(self, max_message: int = MAX_MESSAGE, max_body: int = MAX_BODY) -> None:
        self.max_message = max_message
        self.max_body = max_body
        self._buffer = bytearray()
        self._head_end: int | None = None  # where the body starts, once the head is read
        self._length = 0
        self.broken = False

    @property
    def partial(self) -> bool:
        """A message has begun and is not complete."""
        return bool(self._buffer.strip(b"\r\n")) and not self.broken

    def feed(self, data: bytes) -> list[Framed]:
        if self.broken:
            return []
        self._buffer += data
        out: list[Framed] = []
        while True:
            found = self._next()
            if found is None:
                return out
            out.append(found)
            if isinstance(found, Broken):
                self.broken = True
                self._buffer.clear()
                return out

    def _next(self) -> Framed | None:
        buffer = self._buffer
        if self._head_end is None:
            if buffer.startswith(b"\r\n\r\n"):
                del buffer[:4]
                return Ping()
            rest = len(buffer.lstrip(b"\r\n"))
            if not rest:  # line ends only: the start of a ping, or a pong
                if len(buffer) > 3:
                    buffer.clear()
                return None
            del buffer[: len(buffer) - rest]  # CRLFs before a message (§7.5)
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > self.max_message:
                    return Broken("too_large")
                return None
            head = bytes(buffer[: end + 4])
            if len(head) > self.max_message:
                return Broken("too_large")
            lengths = _LENGTH.findall(head)
            if len(lengths) != 1:
                return Broken("malformed")  # none (required on a stream), or two
            value = lengths[0].strip()
            if not (value.isdigit() and len(value) <= 9):
                return Broken("malformed")
            length = int(value)
            if length > self.max_body or len(head) + length > self.max_message:
                return Broken("too_large", head)
            self._head_end, self._length = end + 4, length
        total = self._head_end + self._length
        if len(buffer) < total:
            return None
        frame = bytes(buffer[:total])
        del buffer[:total]
        self._head_end = None
        return Frame(frame)
