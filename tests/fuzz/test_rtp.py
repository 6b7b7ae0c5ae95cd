"""Fuzzing RTP headers, RFC 4733 telephone events and the media relay's packet path.

Seeds are real packets (audio, a key press, CSRCs, a header extension, padding); mutations
flip, cut and splice them. Properties: ``RtpError`` or a header whose payload lies inside the
packet; a telephone event survives its serialiser; one digit per event; and the relay's
``datagram_received`` (the hot path, fed by anyone who can reach the port) never raises and
forwards nothing but RTP version 2 of the negotiated type, through real sockets on loopback.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzz.mutations import mutated
from tests.sip.peers import free_udp_port
from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.media.relay import RtpRelay
from voicemgmt.adapters.switch.sip.rtp import (
    DtmfReceiver,
    RtpError,
    RtpHeader,
    TelephoneEvent,
    dtmf_packets,
    packet,
)

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

AUDIO = packet(0, 1000, 160_000, 0xCAFE, b"\xff" * 160, marker=True)
WITH_CSRCS = bytes([0x82]) + AUDIO[1:12] + b"\x00\x00\x00\x01" * 2 + AUDIO[12:]
EXTENSION = b"\xbe\xde\x00\x01" + b"\x10\xaa\x00\x00"  # RFC 8285, one element
WITH_EXTENSION = bytes([0x90]) + AUDIO[1:12] + EXTENSION + AUDIO[12:]
PADDED = bytes([0xA0]) + AUDIO[1:] + b"\x00\x00\x00\x04"
SEEDS = [
    AUDIO,
    WITH_CSRCS,
    WITH_EXTENSION,
    PADDED,
    packet(8, 7, 8, 9, b"\xd5" * 160),
    *dtmf_packets("5", 101, 2000, 320_000, 0xCAFE)[::3],
    bytes([0x80, 200]) + b"\x00" * 26,  # RTCP sender report on the RTP port
]


@FUZZ
@given(mutated(SEEDS, huge=1600))
@example(bytes([0xA0]) + AUDIO[1:12] + b"\xff")  # padding longer than the packet
@example(bytes([0x9F]) + AUDIO[1:12] + b"\x00\x00\xff\xff")  # extension past the end
def test_rtp_headers_are_read_or_refused_and_the_payload_is_inside(data: bytes) -> None:
    try:
        header = RtpHeader.parse(data)
    except RtpError:
        return
    assert 12 <= header.payload_offset <= header.payload_end <= len(data)
    assert 0 <= header.payload_type < 128
    rebuilt = packet(
        header.payload_type,
        header.sequence,
        header.timestamp,
        header.ssrc,
        data[header.payload_offset : header.payload_end],
        marker=header.marker,
    )
    again = RtpHeader.parse(rebuilt)
    assert (again.payload_type, again.sequence, again.timestamp, again.ssrc, again.marker) == (
        header.payload_type,
        header.sequence,
        header.timestamp,
        header.ssrc,
        header.marker,
    )


@FUZZ
@given(st.binary(max_size=12))
def test_telephone_events_are_read_or_refused_and_round_trip(payload: bytes) -> None:
    try:
        event = TelephoneEvent.parse(payload)
    except RtpError:
        assert len(payload) < 4
        return
    assert TelephoneEvent.parse(event.render()) == event
    assert event.digit is None or event.digit in "0123456789*#ABCD"


LATE_END = [*dtmf_packets("5", 101, 2000, 320_000, 1), *dtmf_packets("6", 101, 2008, 320_800, 1)]


@FUZZ
@given(st.lists(mutated(SEEDS[5:7], max_steps=3), max_size=DtmfReceiver.REMEMBERED - 1))
@example([LATE_END[0], LATE_END[8], LATE_END[7]])  # 5 starts, 6 starts, 5's end arrives late
def test_a_dtmf_receiver_reports_one_digit_per_event_whatever_arrives(
    packets: list[bytes],
) -> None:
    receiver = DtmfReceiver()
    reported: list[tuple[int, int]] = []
    for data in packets:
        try:
            header = RtpHeader.parse(data)
        except RtpError:
            continue
        digit = receiver.receive(header, data[header.payload_offset : header.payload_end])
        if digit is not None:
            assert digit in "0123456789*#"
            key = (header.ssrc, header.timestamp)
            assert key not in reported  # a late copy of an earlier event is no key press
            reported.append(key)


@FUZZ
@given(st.lists(mutated(SEEDS), min_size=1, max_size=30))
@example([PADDED[:12] + b"\x00" * 3 + b"\xff"])
def test_the_relay_never_fails_on_a_packet_and_forwards_only_rtp(packets: list[bytes]) -> None:
    forwarded = asyncio.run(_relay_packets(packets))
    for data in forwarded:
        header = RtpHeader.parse(data)
        assert data[0] == 0x80  # CSRCs, extensions and padding are never passed on
        assert header.payload_type in (sdp.PCMA, 96)
        assert struct.unpack_from("!I", data, 8)[0] != 0xCAFE  # re-stamped with our SSRC


async def _relay_packets(packets: list[bytes]) -> list[bytes]:
    """Bridge two relay legs; feed ``packets`` to the first as if they came from the caller;
    what the second leg sent to the callee's (real) socket."""
    base = free_udp_port(pairs=3)
    relay = RtpRelay("127.0.0.1", range(base, base + 4))
    callee = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    callee.bind(("127.0.0.1", base + 4))
    callee.setblocking(False)
    try:
        caller_leg = await relay.open_leg("fuzz", "caller")
        callee_leg = await relay.open_leg("fuzz", "callee")
        caller_leg.connect(sdp.Session("127.0.0.1", base + 5, (sdp.PCMU,), 101))
        callee_leg.connect(sdp.Session("127.0.0.1", base + 4, (sdp.PCMA,), 96))
        caller_leg.on_digit(lambda digit: None)
        relay.bridge(caller_leg, callee_leg)
        for data in packets:
            caller_leg.datagram_received(data, ("127.0.0.1", base + 5))
        await asyncio.sleep(0.01)
        received = []
        while True:
            try:
                received.append(callee.recv(2048))
            except BlockingIOError:
                return received
    finally:
        callee.close()
        await relay.close()
