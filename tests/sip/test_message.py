"""SIP message parsing: a corpus of real and malformed messages, and random bytes."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicemgmt.adapters.switch.sip.message import Request, Response, parse, response_to
from voicemgmt.adapters.switch.sip.uri import NameAddr, SipSyntaxError, SipUri, Via

CORPUS = Path(__file__).parent / "corpus"
VALID = sorted((CORPUS / "valid").glob("*.sip"))
INVALID = sorted((CORPUS / "invalid").glob("*.sip"))


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_real_messages_parse_and_survive_a_round_trip(path: Path) -> None:
    message = parse(path.read_bytes())
    again = parse(message.serialize())
    assert type(again) is type(message)
    assert again.call_id == message.call_id
    assert again.cseq == message.cseq
    assert again.body == message.body
    assert [str(v) for v in again.vias] == [str(v) for v in message.vias]


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_malformed_and_hostile_messages_are_refused(path: Path) -> None:
    with pytest.raises(SipSyntaxError):
        parse(path.read_bytes())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_raise_nothing_but_a_syntax_error(data: bytes) -> None:
    with contextlib.suppress(SipSyntaxError):
        parse(data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_real_messages_raise_nothing_but_a_syntax_error(data: st.DataObject) -> None:
    original = bytearray(data.draw(st.sampled_from(VALID)).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    with contextlib.suppress(SipSyntaxError):
        parse(bytes(original))


def test_compact_forms_mean_the_long_headers() -> None:
    message = parse((CORPUS / "valid" / "compact_options.sip").read_bytes())
    assert message.call_id == "compact-forms@example"
    assert message.headers.get("Content-Length") == "0"
    assert message.contact is not None
    assert message.contact.uri.port == 5080


def test_folded_lines_and_quoted_display_names() -> None:
    message = parse((CORPUS / "valid" / "folded_and_quoted.sip").read_bytes())
    assert message.top_via.branch == "z9hG4bKfold"
    assert message.headers.get("subject") == "folded over lines"
    assert message.from_.display == 'J "Q" Public'


def test_comma_joined_vias_are_separate_values() -> None:
    message = parse((CORPUS / "valid" / "multiple_vias.sip").read_bytes())
    assert [v.branch for v in message.vias] == ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc"]
    assert message.headers.all("record-route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]


def test_a_request_uri_may_be_a_tel_uri_and_lines_may_end_in_lf() -> None:
    message = parse((CORPUS / "valid" / "lf_line_ends_tel_uri.sip").read_bytes())
    assert isinstance(message, Request)
    assert message.uri.scheme == "tel"
    assert message.uri.user == "+33170200200"


def test_the_body_ends_at_content_length() -> None:
    raw = (CORPUS / "valid" / "sipp_uas_200.sip").read_bytes() + b"trailing junk"
    message = parse(raw)
    assert isinstance(message, Response)
    assert message.body.endswith(b"a=rtpmap:0 PCMU/8000\r\n\r\n")


def test_a_response_copies_the_request_and_adds_a_to_tag_once() -> None:
    request = parse((CORPUS / "valid" / "baresip_invite.sip").read_bytes())
    assert isinstance(request, Request)
    ringing = parse(response_to(request, 180, to_tag="abc").serialize())
    assert isinstance(ringing, Response)
    assert ringing.status == 180
    assert ringing.to.tag == "abc"
    assert ringing.from_.tag == request.from_.tag
    assert ringing.top_via.branch == request.top_via.branch
    assert ringing.cseq == request.cseq


def test_via_received_and_rport_say_where_responses_go() -> None:
    via = Via.parse("SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bKx;rport")
    seen = via.received_from("127.0.0.5", 40000)
    assert seen.response_address == ("127.0.0.5", 40000)
    assert Via.parse("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx").response_address == (
        "127.0.0.1",
        5060,
    )


def test_uris_and_name_addrs_print_back_as_read() -> None:
    uri = SipUri.parse("sip:+33170200200@127.0.0.1:5060;user=phone")
    assert (uri.user, uri.host, uri.port, uri.params) == (
        "+33170200200",
        "127.0.0.1",
        5060,
        {"user": "phone"},
    )
    assert str(uri) == "sip:+33170200200@127.0.0.1:5060;user=phone"
    addr = NameAddr.parse('"Ana" <sip:ana@127.0.0.1>;tag=9')
    assert str(addr) == '"Ana" <sip:ana@127.0.0.1>;tag=9'
    assert addr.tag == "9"
    bare = NameAddr.parse("sip:ana@127.0.0.1;tag=9")
    assert bare.tag == "9"
    assert bare.uri.params == {}
