"""The I/O-free parts of SIP over streams and SRTP: framing, a=crypto, the policy table."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.sip.certs import make_certificates
from tests.test_cli import cli_env, voicemgmt
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
from voicemgmt.config import Settings

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
DTLS = Capabilities(secure_signalling=True, dtls=True)
DTLS_OFFER = sdp.Session(
    "127.0.0.1", 4000, (0,), profile="UDP/TLS/RTP/SAVP", dtls_attributes=("fingerprint:sha-256 AB",)
)


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
        (session("UDP/TLS/RTP/SAVP"), "optional", DTLS, "needs an a=fingerprint"),
        (DTLS_OFFER, "optional", Capabilities(False, dtls=True), "only taken over TLS"),
        (DTLS_OFFER, "off", DTLS, "is off"),
        (DTLS_OFFER, "required", DTLS, "srtp"),
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
    if keys.dtls:
        assert keys.profile == "UDP/TLS/RTP/SAVP"
    elif keys.encrypted:
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


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sip_tls_port": 5061}, "sip_tls_port needs sip_tls_cert and sip_tls_key"),
        ({"sip_tls_port": 5061, "cert": "junk", "key": "junk"}, "not a usable PEM"),
        ({"sip_tls_port": 5061, "cert": "ok", "key": "other"}, "not a usable PEM"),
        ({"sip_tls_port": 5061, "cert": "ok", "key": "ok", "ca": "junk"}, "no usable"),
        ({"sip_tls_cert": "/nonexistent.pem", "key": "ok"}, "is not a readable file"),
        ({"sip_trunk_transport": "tls"}, "needs sip_tls_port"),
        ({"sip_trunk_transport": "tcp"}, "needs sip_tcp_port"),
        ({"sip_trunk_transport": "sctp"}, "sip_trunk_transport"),
        ({"sip_trunk_media_encryption": "required"}, "needs sip_trunk_transport 'tls'"),
        ({"sip_trunk_media_encryption": "always"}, "sip_trunk_media_encryption"),
        ({"sip_max_connections_per_address": 0}, "sip_max_connections_per_address"),
        ({"sip_tls_handshake_timeout": -1}, "sip_tls_handshake_timeout"),
    ],
)
def test_unusable_tls_settings_are_refused_with_a_clear_message(
    tmp_path: Path, values: dict[str, object], message: str
) -> None:
    certs = make_certificates(tmp_path / "certs")
    other = make_certificates(tmp_path / "other")
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    files = {"ok": (certs.cert, certs.key), "other": (other.cert, other.key), "junk": (junk, junk)}
    given = {k: v for k, v in values.items() if k.startswith("sip_")}
    if "cert" in values:
        given["sip_tls_cert"] = files[str(values["cert"])][0]
    if "key" in values:
        given["sip_tls_key"] = files[str(values["key"])][1]
    if "ca" in values:
        given["sip_tls_ca_file"] = junk
    with pytest.raises(ValidationError) as raised:
        Settings(switch="sip", **given)  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_serve_stops_at_an_unusable_certificate_before_listening(tmp_path: Path) -> None:
    """``voicemgmt serve`` exits 2 with the settings named, no traceback."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    env = {"VM_SWITCH": "sip", "VM_SIP_TLS_PORT": "5061"}
    env.update(VM_SIP_TLS_CERT=str(junk), VM_SIP_TLS_KEY=str(junk))
    done = voicemgmt("serve", env=cli_env(tmp_path / "var", **env))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: configuration")
    assert "sip_tls_cert and sip_tls_key are not a usable PEM" in done.stderr
    assert "Traceback" not in done.stderr
