"""SDP offer/answer, RTP headers, RFC 4733 DTMF and G.711."""

from __future__ import annotations

import array
import math

import pytest

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.media import g711
from voicemgmt.adapters.switch.sip.rtp import (
    DtmfReceiver,
    RtpError,
    RtpHeader,
    dtmf_packets,
    is_rtcp,
    packet,
)

BARESIP_OFFER = (
    b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 10000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
)


def test_the_answer_takes_the_first_offered_codec_and_its_dtmf_payload_type() -> None:
    offer = sdp.parse(BARESIP_OFFER)
    assert (offer.host, offer.port, offer.codecs, offer.dtmf_pt) == (
        "127.0.0.1",
        10000,
        (0, 8),
        101,
    )
    answer = sdp.parse(sdp.answer(offer, "127.0.0.1", 20000).render())
    assert answer.codecs == (0,)
    assert answer.dtmf_pt == 101
    assert answer.port == 20000


def test_a_pcma_only_offer_is_answered_in_pcma_and_hold_is_seen() -> None:
    offer = sdp.parse(BARESIP_OFFER.replace(b"0 8 101", b"8").replace(b"sendrecv", b"sendonly"))
    assert offer.codecs == (8,)
    assert offer.dtmf_pt is None
    assert offer.on_hold
    assert sdp.answer(offer, "127.0.0.1", 1).direction is sdp.Direction.RECVONLY
    old_hold = sdp.parse(BARESIP_OFFER.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 0.0.0.0"))
    assert old_hold.on_hold


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"v=0\r\n",
        BARESIP_OFFER.replace(b"0 8 101", b"9 18"),  # G.722 and G.729 only
        BARESIP_OFFER.replace(b"RTP/AVP", b"RTP/XYZ"),
        BARESIP_OFFER.replace(b"IP4 127.0.0.1", b"IP6 ::1"),
        BARESIP_OFFER.replace(b"10000", b"99999"),
        b"\xff\xfe" * 10,
    ],
)
def test_an_unusable_description_raises_sdp_error(body: bytes) -> None:
    with pytest.raises(sdp.SdpError):
        sdp.answer(sdp.parse(body), "127.0.0.1", 1)


def test_rtp_headers_round_trip_and_skip_csrcs_and_extensions() -> None:
    data = packet(0, 65535, 2**32 - 1, 0xDEADBEEF, b"\xff" * 160, marker=True)
    header = RtpHeader.parse(data)
    assert (header.payload_type, header.sequence, header.timestamp, header.ssrc) == (
        0,
        65535,
        2**32 - 1,
        0xDEADBEEF,
    )
    assert header.marker
    assert data[header.payload_offset : header.payload_end] == b"\xff" * 160
    with_csrc = bytes([0x91]) + data[1:12] + b"\x00" * 4 + b"\x00\x01\x00\x01" + b"\x00" * 4
    assert RtpHeader.parse(with_csrc + b"ab").payload_offset == 12 + 4 + 8
    for bad in (b"", b"\x00" * 12, bytes([0x8F]) + data[1:12]):
        with pytest.raises(RtpError):
            RtpHeader.parse(bad)
    assert is_rtcp(b"\x80\xc8" + b"\x00" * 6)
    assert not is_rtcp(data)


def test_each_key_press_is_one_digit_whatever_the_redundancy() -> None:
    receiver = DtmfReceiver()
    digits = []
    timestamp = 1000
    for index, digit in enumerate("12#*0"):
        for data in dtmf_packets(digit, 101, index * 10, timestamp, 42):
            header = RtpHeader.parse(data)
            found = receiver.receive(header, data[header.payload_offset :])
            if found:
                digits.append(found)
        timestamp += 1600
    assert "".join(digits) == "12#*0"


@pytest.mark.parametrize("law", [g711.PCMU, g711.PCMA])
def test_g711_keeps_a_tone_and_transcodes_between_laws(law: int) -> None:
    tone = array.array(
        "h", (int(8000 * math.sin(i / 8000 * 2 * math.pi * 440)) for i in range(800))
    )
    back = array.array("h", g711.decode(g711.encode(tone.tobytes(), law), law))
    error = max(abs(a - b) for a, b in zip(tone, back, strict=True))
    assert error < 300
    other = g711.PCMA if law == g711.PCMU else g711.PCMU
    crossed = g711.decode(g711.transcode(g711.encode(tone.tobytes(), law), law, other), other)
    assert max(abs(a - b) for a, b in zip(tone, array.array("h", crossed), strict=True)) < 600
