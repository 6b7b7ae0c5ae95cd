"""RFC 3261 §12 dialogs: built from either side, requests inside them, sequence checks."""

from __future__ import annotations

from pathlib import Path

from voicemgmt.adapters.switch.sip.dialog import (
    Dialog,
    cancel_for,
    dialog_key_of,
    next_hop,
)
from voicemgmt.adapters.switch.sip.message import Request, parse, response_to
from voicemgmt.adapters.switch.sip.uri import NameAddr

CORPUS = Path(__file__).parent / "corpus" / "valid"
OURS = NameAddr.parse("<sip:vm@127.0.0.1:5060>")


def invite() -> Request:
    message = parse((CORPUS / "baresip_invite.sip").read_bytes())
    assert isinstance(message, Request)
    return message


def test_a_uas_dialog_sends_bye_to_the_callers_contact_with_swapped_tags() -> None:
    request = invite()
    dialog = Dialog.uas(request, "ourtag", OURS)
    bye = dialog.request("BYE", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKb1")
    assert str(bye.uri) == "sip:customer-0x55d0@127.0.0.1:5071"
    assert bye.from_.tag == "ourtag"
    assert bye.to.tag == request.from_.tag
    assert bye.call_id == request.call_id
    assert next_hop(bye) == ("127.0.0.1", 5071)
    assert dialog_key_of(bye, we_sent=True) == dialog.key


def test_in_dialog_requests_must_come_in_order() -> None:
    request = invite()
    dialog = Dialog.uas(request, "ourtag", OURS)
    reinvite = request
    reinvite.headers.set("cseq", f"{request.cseq[0] + 1} INVITE")
    assert dialog.accepts(reinvite)
    assert not dialog.accepts(reinvite)  # the same CSeq again: a stale request (500)


def test_a_uac_dialog_follows_the_record_route_in_reverse_and_acks_with_the_invite_cseq() -> None:
    request = invite()
    ok = response_to(request, 200, to_tag="theirs")
    ok.headers.add("contact", "<sip:ana@127.0.0.1:5072>")
    ok.headers.add("record-route", "<sip:p1.example:5070;lr>, <sip:p2.example:5080;lr>")
    dialog = Dialog.uac(request, ok)
    ack = dialog.request("ACK", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa", cseq=request.cseq[0])
    assert ack.cseq == (request.cseq[0], "ACK")
    assert ack.headers.all("route") == ["<sip:p2.example:5080;lr>", "<sip:p1.example:5070;lr>"]
    assert next_hop(ack) == ("p2.example", 5080)
    bye = dialog.request("BYE", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKb")
    assert bye.cseq == (request.cseq[0] + 1, "BYE")


def test_a_cancel_matches_its_invite() -> None:
    request = invite()
    cancel = cancel_for(request)
    assert cancel.top_via.branch == request.top_via.branch
    assert cancel.cseq == (request.cseq[0], "CANCEL")
    assert str(cancel.uri) == str(request.uri)
