"""RTP packets (RFC 3550 §5.1) and RFC 4733 telephone events, without I/O.

``RtpHeader.parse`` reads the fixed header (skipping CSRCs, the extension and padding) and
tells where the payload starts; ``packet`` builds one. ``DtmfReceiver`` turns a stream of
telephone-event packets into digits, once per event whatever the redundancy (the same event
is sent many times with one timestamp, its end three times).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")
EVENTS = "0123456789*#ABCD"


class RtpError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RtpHeader:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload_offset: int
    payload_end: int

    @classmethod
    def parse(cls, data: bytes) -> RtpHeader:
        if len(data) < 12:
            raise RtpError("shorter than an RTP header")
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != 2:
            raise RtpError("not RTP version 2")
        offset = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # header extension
            if len(data) < offset + 4:
                raise RtpError("truncated header extension")
            (length,) = struct.unpack_from("!H", data, offset + 2)
            offset += 4 + 4 * length
        end = len(data)
        if first & 0x20:  # padding: its length is the last byte
            end -= data[-1]
        if offset > end:
            raise RtpError("truncated RTP packet")
        return cls(second & 0x7F, sequence, timestamp, ssrc, bool(second & 0x80), offset, end)


def is_rtcp(data: bytes) -> bool:
    """RTCP packet types 200-204 sit where RTP's marker and payload type are (RFC 5761)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def packet(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    *,
    marker: bool = False,
) -> bytes:
    return (
        _HEADER.pack(
            0x80,
            (0x80 if marker else 0) | (payload_type & 0x7F),
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc & 0xFFFFFFFF,
        )
        + payload
    )


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise RtpError("telephone-event payload shorter than 4 bytes")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def render(self) -> bytes:
        return _EVENT.pack(
            self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration & 0xFFFF
        )

    @property
    def digit(self) -> str | None:
        return EVENTS[self.event] if self.event < len(EVENTS) else None


class DtmfReceiver:
    """One digit per RFC 4733 event: reported on its first packet, duplicates dropped.

    The last ``REMEMBERED`` events are remembered, not only the last one: a late copy of an
    event's end, arriving after the next key's first packet, is no new key press.
    """

    REMEMBERED = 32

    def __init__(self) -> None:
        # (ssrc, timestamp) of the latest events, oldest first
        self._seen: deque[tuple[int, int]] = deque(maxlen=self.REMEMBERED)

    def receive(self, header: RtpHeader, payload: bytes) -> str | None:
        try:
            event = TelephoneEvent.parse(payload)
        except RtpError:
            return None
        key = (header.ssrc, header.timestamp)
        if key in self._seen:
            return None
        self._seen.append(key)
        digit = event.digit
        return digit if digit is not None and digit in "0123456789*#" else None


def dtmf_packets(
    digit: str, payload_type: int, sequence: int, timestamp: int, ssrc: int, *, steps: int = 5
) -> list[bytes]:
    """The packets of one key press (what a phone sends): start, updates, end three times."""
    event = EVENTS.index(digit)
    out = []
    for step in range(1, steps + 1):
        payload = TelephoneEvent(event, False, 10, step * 160).render()
        out.append(packet(payload_type, sequence, timestamp, ssrc, payload, marker=step == 1))
        sequence += 1
    end = TelephoneEvent(event, True, 10, steps * 160).render()
    for _ in range(3):
        out.append(packet(payload_type, sequence, timestamp, ssrc, end))
        sequence += 1
    return out
