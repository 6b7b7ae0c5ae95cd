"""The I/O-free parts of SIP over streams and SRTP: framing, a=crypto, the policy table."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.framing import Broken, Frame, Ping, StreamFramer
from voicemgmt.adapters.switch.sip.media_policy import (
    Capabilities,
    Keys,
    MediaRefused,
    answer_offer,
    check_answer,
    our_offer,
)
from voicemgmt.adapters.switch.sip.message import MAX_MESSAGE, Request, parse, response_to
from voicemgmt.adapters.switch.sip.sdes import Crypto, parse_crypto
from voicemgmt.adapters.switch.sip.transaction import (
    ClientTransaction,
    Send,
    ServerTransaction,
)

KEY = base64.b64encode(bytes(range(30))).decode()
MESSAGE = (
    b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bKa\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n"
    b"l: 4\r\n\r\nbody"
)


def test_messages_pings_and_leading_crlfs_are_framed_in_any_chunking() -> None:
    stream = b"\r\n\r\n" + MESSAGE + b"\r\n" + MESSAGE
    for size in (1, 3, 7, len(stream)):
        framer = StreamFramer()
        out = []
        for index in range(0, len(stream), size):
            out.extend(framer.feed(stream[index : index + size]))
        assert out == [Ping(), Frame(MESSAGE), Frame(MESSAGE)]
        assert not framer.partial
    assert parse(MESSAGE).body == b"body"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (MESSAGE.replace(b"l: 4", b"X-No-Length: 4"), "malformed"),
        (MESSAGE.replace(b"l: 4", b"l: 4\r\nContent-Length: 4"), "malformed"),
        (MESSAGE.replace(b"l: 4", b"l: -4"), "malformed"),
        (MESSAGE.replace(b"l: 4", b"l: \xd9\xa4"), "malformed"),  # an Arabic-Indic four
        (MESSAGE.replace(b"l: 4", b"l: 999999999999"), "malformed"),
        (MESSAGE.replace(b"l: 4", b"l: 99999999"), "too_large"),
        (b"OPTIONS sip:x SIP/2.0\r\n" + b"X: y\r\n" * (MAX_MESSAGE // 6), "too_large"),
    ],
)
def test_streams_that_cannot_be_framed_break_once(data: bytes, reason: str) -> None:
    framer = StreamFramer()
    out = framer.feed(data)
    assert len(out) == 1
    assert isinstance(out[0], Broken)
    assert out[0].reason == reason
    assert framer.feed(MESSAGE) == []  # broken for good: the connection is closed


@given(st.lists(st.binary(max_size=300), max_size=30))
def test_the_framer_never_raises(chunks: list[bytes]) -> None:
    framer = StreamFramer()
    for chunk in chunks:
        for item in framer.feed(chunk):
            assert isinstance(item, Frame | Ping | Broken)


def test_over_a_reliable_transport_nothing_is_retransmitted() -> None:
    invite = parse(MESSAGE.replace(b"OPTIONS", b"INVITE"))
    assert isinstance(invite, Request)
    client = ClientTransaction(invite, ("127.0.0.1", 5), "TCP")
    assert client.start(0.0) == [Send(invite, ("127.0.0.1", 5), "TCP")]
    assert client.deadline == 32.0  # timer B only, no timer A
    server = ServerTransaction(invite, 0.0, "TLS")
    busy = response_to(invite, 486)
    assert server.respond(busy, 1.0) == [Send(busy, ("127.0.0.1", 5), "TLS")]
    assert server.deadline == 1.0 + 32.0  # timer H only, no timer G


@pytest.mark.parametrize(
    "value",
    [
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}",
        f"99 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^31",
    ],
)
def test_usable_crypto_lines(value: str) -> None:
    found = parse_crypto(value)
    assert found is not None
    assert found.key == bytes(range(30))
    assert parse_crypto(found.render()) == found


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1 AES_CM_128_HMAC_SHA1_80",
        f"x AES_CM_128_HMAC_SHA1_80 inline:{KEY}",
        f"1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY}",
        f"1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4",  # MKI
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY};inline:{KEY}",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP",
        "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(29)).decode(),
        "1 AES_CM_128_HMAC_SHA1_80 inline:%%%%",
        "1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 100_000,
    ],
)
def test_unusable_crypto_lines_are_skipped(value: str) -> None:
    assert parse_crypto(value) is None


def session(profile: str = "RTP/AVP", *cryptos: Crypto) -> sdp.Session:
    return sdp.Session("127.0.0.1", 4000, (0,), profile=profile, cryptos=cryptos)


THEIRS = Crypto(3, "AES_CM_128_HMAC_SHA1_80", bytes(30))
TLS = Capabilities(secure_signalling=True)
CLEAR = Capabilities(secure_signalling=False)


@pytest.mark.parametrize(
    ("offer", "policy", "can", "outcome"),
    [
        (session(), "optional", TLS, "plain"),
        (session(), "off", TLS, "plain"),
        (session(), "required", TLS, "SRTP is required"),
        (session("RTP/SAVP", THEIRS), "optional", TLS, "srtp"),
        (session("RTP/SAVP", THEIRS), "required", TLS, "srtp"),
        (session("RTP/SAVP", THEIRS), "off", TLS, "is off"),
        (session("RTP/SAVP", THEIRS), "optional", CLEAR, "over TLS"),
        (session("RTP/SAVP"), "optional", TLS, "no usable a=crypto"),
        (session("RTP/AVP", THEIRS), "optional", TLS, "srtp"),
        (session("RTP/AVP", THEIRS), "optional", CLEAR, "plain"),
        (session("RTP/AVP", THEIRS), "off", TLS, "plain"),
        (session("RTP/AVP", THEIRS), "required", CLEAR, "over TLS"),
        (session("RTP/SAVP", THEIRS), "optional", Capabilities(True, sdes=False), "backend"),
        (session("UDP/TLS/RTP/SAVP"), "optional", TLS, "DTLS-SRTP"),
    ],
)
def test_the_policy_table_for_offers(
    offer: sdp.Session, policy: str, can: Capabilities, outcome: str
) -> None:
    if outcome not in ("srtp", "plain"):
        with pytest.raises(MediaRefused, match=outcome):
            answer_offer(offer, policy, can)
        return
    keys = answer_offer(offer, policy, can)
    assert outcome == ("srtp" if keys.encrypted else "plain")
    if keys.encrypted:
        assert keys.theirs == THEIRS
        assert keys.ours is not None
        assert keys.ours.tag == THEIRS.tag
        assert keys.ours.key != THEIRS.key
        assert keys.profile == offer.profile


def test_our_offers_and_the_answers_they_accept() -> None:
    assert our_offer("off", TLS) == Keys()
    assert our_offer("optional", CLEAR) == Keys()
    with pytest.raises(MediaRefused):
        our_offer("required", CLEAR)
    required = our_offer("required", TLS)
    assert required.profile == "RTP/SAVP"
    assert required.ours is not None
    answer = session("RTP/SAVP", Crypto(1, required.ours.suite, bytes(30)))
    assert check_answer(required, answer, "required").encrypted
    with pytest.raises(MediaRefused):
        check_answer(required, session(), "required")
    optional = our_offer("optional", TLS)
    assert optional.profile == "RTP/AVP"
    assert optional.ours is not None
    assert not check_answer(optional, session(), "optional").encrypted  # a plain phone
    with pytest.raises(MediaRefused):
        check_answer(Keys(), session("RTP/SAVP", THEIRS), "optional")


def test_sdp_with_crypto_round_trips() -> None:
    ours = Crypto(2, "AES_CM_128_HMAC_SHA1_32", bytes(range(30)))
    rendered = session("RTP/SAVP", ours).render()
    assert b"m=audio 4000 RTP/SAVP 0 101" in rendered
    back = sdp.parse(rendered)
    assert back.cryptos == (ours,)
    assert back.srtp_only
    assert not back.dtls
