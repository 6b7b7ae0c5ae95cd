"""Fuzzing the SIP message parser, SDP and digest headers with mutated corpus cases.

Properties: nothing but the documented parse error escapes (``SipSyntaxError``, ``SdpError``,
``ValueError`` / ``None`` for digest values), whatever the bytes; what parses can be read
(every accessor works) and survives its serialiser. Crashes found this way are corpus cases in
``tests/sip/corpus/invalid`` (unicode_digit_*) and regression tests below.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzz.mutations import mutated
from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.digest import (
    Algorithm,
    Credentials,
    DigestServer,
    Verdict,
    authorization,
    ha1,
    parse_challenge,
)
from voicemgmt.adapters.switch.sip.message import (
    MAX_MESSAGE,
    Request,
    Response,
    parse,
    response_to,
)
from voicemgmt.adapters.switch.sip.uri import SipSyntaxError, Via
from voicemgmt.services.sip_digest import ha1_pair

CORPUS = Path(__file__).parent.parent / "sip" / "corpus"
VALID = [p.read_bytes() for p in sorted((CORPUS / "valid").glob("*.sip"))]
INVALID = [p.read_bytes() for p in sorted((CORPUS / "invalid").glob("*.sip"))]
SEEDS = VALID + [case for case in INVALID if len(case) <= MAX_MESSAGE]

SDP_SEEDS = [message.partition(b"\r\n\r\n")[2] for message in VALID if b"m=audio" in message] + [
    sdp.offer("127.0.0.1", 4000).render(),
    sdp.offer("10.0.0.1", 5000, (sdp.PCMA,), direction=sdp.Direction.SENDONLY).render(),
    b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
    b"m=video 4002 RTP/AVP 96\r\nc=IN IP4 5.6.7.8/127\r\n"
    b"m=audio 4000 RTP/AVPF 8 0 101 13\r\na=rtpmap:101 telephone-event/8000\r\na=inactive\r\n"
    b"m=audio 4004 RTP/AVP 0\r\n",
]

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Crashes the fuzzers found, kept as explicit examples (each also a corpus case).
UNICODE_STATUS = VALID[-1].replace(b"SIP/2.0 200", "SIP/2.0 ²²²".encode(), 1)


def _readable(message: Request | Response) -> None:
    """Every accessor of a parsed message works, and its top Via says where to answer."""
    assert message.call_id
    number, method = message.cseq
    assert 0 <= number < 2**31
    assert method
    assert message.vias
    host, port = message.top_via.response_address
    assert host
    assert 0 < port < 65536
    # Responses go back where the request came from, never where it says to send them.
    assert message.top_via.received_from("192.0.2.7", 5099).response_address[0] == "192.0.2.7"
    message.from_  # noqa: B018 (reading is the check)
    message.to  # noqa: B018
    message.contact  # noqa: B018


@FUZZ
@given(mutated(SEEDS))
@example(UNICODE_STATUS)
@example(VALID[0].replace(b"CSeq: 20814", "CSeq: ٢٠٨١٤".encode()))
@example(VALID[0].replace(b"Content-Length: 220", "Content-Length: ²²".encode()))
@example(VALID[0].replace(b"rport;", b"rport=99999999;"))
@example(VALID[0].replace(b"rport;", b"received=reflect.example;"))
def test_sip_messages_raise_nothing_but_a_syntax_error_and_round_trip(data: bytes) -> None:
    try:
        message = parse(data)
    except SipSyntaxError:
        return
    _readable(message)
    again = parse(message.serialize())
    assert type(again) is type(message)
    assert (again.call_id, again.cseq, again.body) == (message.call_id, message.cseq, message.body)
    assert [str(v) for v in again.vias] == [str(v) for v in message.vias]
    if isinstance(message, Request):
        assert isinstance(again, Request)
        assert (again.method, str(again.uri)) == (message.method, str(message.uri))
        answer = response_to(message, 180, to_tag="fuzz")
        assert parse(answer.serialize()).to.tag is not None
    else:
        assert isinstance(again, Response)
        assert again.status == message.status


@pytest.mark.parametrize(
    "text", ["SIP/2.0/UDP h:²", "SIP/2.0/UDP h;rport=²", "SIP/2.0/UDP h;rport=70000"]
)
def test_via_ports_in_other_digits_or_out_of_range_are_not_used(text: str) -> None:
    try:
        via = Via.parse(text)
    except SipSyntaxError:
        return
    assert via.response_address == ("h", 5060)


@FUZZ
@given(mutated(SDP_SEEDS))
@example(SDP_SEEDS[0].replace(b"m=audio 10000", "m=audio ²".encode()))
@example(SDP_SEEDS[0].replace(b"RTP/AVP 0 8", "RTP/AVP ² 0 8".encode()))
@example(SDP_SEEDS[0].replace(b"a=rtpmap:0", "a=rtpmap:²".encode()))
def test_sdp_raises_nothing_but_sdp_error_and_round_trips(body: bytes) -> None:
    try:
        offer = sdp.parse(body)
    except sdp.SdpError:
        return
    assert 0 <= offer.port <= 65535
    if not offer.codecs and offer.dtmf_pt is None:
        return  # no format we know: an m= line of ours always has one (RFC 4566 §5.14)
    again = sdp.parse(offer.render())
    assert (again.host, again.port, again.codecs, again.dtmf_pt, again.direction) == (
        offer.host,
        offer.port,
        offer.codecs,
        offer.dtmf_pt,
        offer.direction,
    )
    with contextlib.suppress(sdp.SdpError):
        answer = sdp.answer(offer, "127.0.0.1", 20000)
        assert sdp.parse(answer.render()).codecs == answer.codecs


SERVER = DigestServer("voicemgmt", b"fuzz-key-of-32-bytes-at-least-ok")
NOW = 1_000_000.0
GOOD = authorization(
    SERVER.challenge(NOW),
    method="REGISTER",
    uri="sip:127.0.0.1",
    username="ana",
    password="secret",
)
REGISTER_AUTH = next(
    line.partition(b": ")[2]
    for message in VALID
    for line in message.split(b"\r\n")
    if line.startswith(b"Authorization:")
)
DIGEST_SEEDS = [
    GOOD.encode(),
    REGISTER_AUTH,
    SERVER.challenge(NOW, stale=True, algorithm=Algorithm.SHA256).encode(),
    b'Digest username="a\\"b", realm="voicemgmt", nonce="1.2.3", uri="sip:x", response="00"',
]


@FUZZ
@given(mutated(DIGEST_SEEDS))
def test_digest_headers_are_read_or_refused_never_crash(data: bytes) -> None:
    value = data.decode("utf-8", "replace")
    with contextlib.suppress(ValueError):
        parse_challenge(value)
    credentials = SERVER.credentials(value)
    if credentials is None:
        return
    assert isinstance(credentials, Credentials)
    stored = ha1(credentials.algorithm, "ana", "voicemgmt", "secret")
    verdict = DigestServer("voicemgmt", b"fuzz-key-of-32-bytes-at-least-ok").verify(
        credentials, "REGISTER", stored, NOW
    )
    assert verdict in set(Verdict)


_PRINTABLE = st.characters(codec="utf-8", exclude_categories=["Cc"])
_NAMES = st.text(_PRINTABLE, min_size=1, max_size=40).filter(lambda s: s.strip() == s)


@FUZZ
@given(
    username=_NAMES,
    password=st.text(st.characters(codec="utf-8"), max_size=40),
    algorithm=st.sampled_from(Algorithm),
    nc=st.integers(1, 2**32 - 1),
)
@example(username='quote"in', password="p", algorithm=Algorithm.MD5, nc=1)
@example(username="back\\slash", password="p", algorithm=Algorithm.MD5, nc=1)
def test_digest_answers_verify_for_any_username_and_password(
    username: str, password: str, algorithm: Algorithm, nc: int
) -> None:
    server = DigestServer("voicemgmt", b"fuzz-key-of-32-bytes-at-least-ok")
    value = authorization(
        server.challenge(NOW, algorithm=algorithm),
        method="REGISTER",
        uri="sip:127.0.0.1",
        username=username,
        password=password,
        nc=nc,
    )
    credentials = server.credentials(value)
    assert credentials is not None
    assert credentials.username == username
    stored_md5, stored_sha256 = ha1_pair(username, "voicemgmt", password)
    assert stored_md5 == ha1(Algorithm.MD5, username, "voicemgmt", password)
    assert stored_sha256 == ha1(Algorithm.SHA256, username, "voicemgmt", password)
    stored = stored_sha256 if algorithm is Algorithm.SHA256 else stored_md5
    assert server.verify(credentials, "REGISTER", stored, NOW) is Verdict.OK
    assert server.verify(credentials, "REGISTER", stored, NOW) is Verdict.REPLAYED


@pytest.mark.parametrize("host", ["media.example", "a" * 3000, "127.0.0.1.", "010.0.0.1", "::1"])
def test_a_connection_address_that_is_not_ipv4_is_refused(host: str) -> None:
    """Found by fuzzing: any word was taken as the RTP destination (a DNS lookup on the
    media path, or a socket error closing the leg)."""
    body = SDP_SEEDS[0].replace(b"c=IN IP4 127.0.0.1", f"c=IN IP4 {host}".encode())
    with pytest.raises(sdp.SdpError):
        sdp.parse(body)
