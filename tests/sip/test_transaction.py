"""RFC 3261 §17 transactions driven by a fake clock: retransmissions, timeouts, absorption."""

from __future__ import annotations

from collections.abc import Sequence

from voicemgmt.adapters.switch.sip.dialog import initial_request, new_branch
from voicemgmt.adapters.switch.sip.message import Request, Response, parse, response_to
from voicemgmt.adapters.switch.sip.transaction import (
    T1,
    T2,
    ClientTransaction,
    Deliver,
    Send,
    ServerTransaction,
    State,
    Timeout,
)
from voicemgmt.adapters.switch.sip.transaction_layer import (
    ClientTimeout,
    IncomingRequest,
    IncomingResponse,
    TransactionLayer,
)
from voicemgmt.adapters.switch.sip.uri import NameAddr, SipUri

PEER = ("127.0.0.1", 5080)


def request(method: str = "INVITE", branch: str | None = None) -> Request:
    built = initial_request(
        method,
        SipUri.parse("sip:ana@127.0.0.1:5080"),
        via=f"SIP/2.0/UDP 127.0.0.1:5060;branch={branch or new_branch()};rport",
        from_=NameAddr.parse("<sip:vm@127.0.0.1>;tag=ours"),
        to=NameAddr.parse("<sip:ana@127.0.0.1>"),
        call_id="c1@127.0.0.1",
        cseq=1,
        contact=NameAddr.parse("<sip:vm@127.0.0.1:5060>"),
    )
    reparsed = parse(built.serialize())
    assert isinstance(reparsed, Request)
    return reparsed


def sends(actions: Sequence[object]) -> int:
    return sum(isinstance(a, Send) for a in actions)


def run_until(transaction: ClientTransaction | ServerTransaction, end: float) -> list[float]:
    """Fire every timer up to ``end``; the times at which something was sent."""
    sent = []
    while transaction.deadline is not None and transaction.deadline <= end:
        now = transaction.deadline
        if sends(transaction.on_timer(now)):
            sent.append(now)
    return sent


def test_an_unanswered_invite_is_resent_at_t1_doubling_then_times_out_at_64_t1() -> None:
    invite = ClientTransaction(request(), PEER)
    assert sends(invite.start(0.0)) == 1
    sent = run_until(invite, 31.0)
    assert sent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5][: len(sent)]
    assert sent[-1] == 15.5
    assert invite.on_timer(32.0)[-1] == Timeout()
    assert invite.terminated


def test_a_provisional_response_stops_invite_retransmission() -> None:
    invite = ClientTransaction(request(), PEER)
    invite.start(0.0)
    ringing = response_to(invite.request, 180, to_tag="t")
    assert invite.receive(ringing, 0.1) == [Deliver(ringing)]
    assert invite.state is State.PROCEEDING
    assert run_until(invite, 100.0) == []


def test_a_failure_is_acknowledged_by_the_transaction_and_every_retransmission_too() -> None:
    invite = ClientTransaction(request(), PEER)
    invite.start(0.0)
    busy = response_to(invite.request, 486, to_tag="t")
    actions = invite.receive(busy, 0.2)
    ack = next(a.message for a in actions if isinstance(a, Send))
    assert isinstance(ack, Request)
    assert ack.method == "ACK"
    assert ack.top_via.branch == invite.request.top_via.branch
    assert ack.to.tag == "t"
    assert sends(invite.receive(busy, 0.3)) == 1
    assert not any(isinstance(a, Deliver) for a in invite.receive(busy, 0.4))
    invite.on_timer(0.2 + 32)
    assert invite.terminated


def test_every_2xx_goes_to_the_transaction_user_until_timer_m() -> None:
    invite = ClientTransaction(request(), PEER)
    invite.start(0.0)
    ok = response_to(invite.request, 200, to_tag="t")
    assert invite.receive(ok, 0.1) == [Deliver(ok)]
    assert invite.receive(ok, 0.6) == [Deliver(ok)]
    invite.on_timer(0.1 + 64 * T1)
    assert invite.terminated


def test_a_non_invite_request_is_resent_up_to_t2_and_times_out() -> None:
    bye = ClientTransaction(request("BYE"), PEER)
    bye.start(0.0)
    sent = run_until(bye, 31.9)
    gaps = [b - a for a, b in zip([0.0, *sent], sent, strict=False)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(gaps) == T2
    assert bye.on_timer(32.0)[-1] == Timeout()


def test_an_invite_server_resends_its_final_response_until_the_ack() -> None:
    invite = request()
    server = ServerTransaction(invite, 0.0)
    busy = response_to(invite, 486, to_tag="x")
    assert sends(server.respond(busy, 0.0)) == 1
    assert run_until(server, 1.6) == [0.5, 1.5]
    assert sends(server.receive(invite, 1.7)) == 1  # a retransmitted INVITE
    ack = request("ACK", branch=invite.top_via.branch)
    server.receive(ack, 2.0)
    assert server.state is State.CONFIRMED
    assert run_until(server, 100.0) == []
    assert server.terminated


def test_an_invite_server_without_ack_times_out_at_64_t1() -> None:
    server = ServerTransaction(request(), 0.0)
    server.respond(response_to(server.request, 480, to_tag="x"), 0.0)
    run_until(server, 31.9)
    assert server.on_timer(32.0)[-1] == Timeout()


def test_a_2xx_is_retransmitted_until_the_dialog_sees_the_ack() -> None:
    server = ServerTransaction(request(), 0.0)
    server.respond(response_to(server.request, 200, to_tag="x"), 0.0)
    assert run_until(server, 1.6) == [0.5, 1.5]
    server.acknowledged()
    assert run_until(server, 100.0) == []
    assert server.terminated


def test_an_unacknowledged_2xx_is_reported_so_the_call_is_hung_up() -> None:
    server = ServerTransaction(request(), 0.0)
    server.respond(response_to(server.request, 200, to_tag="x"), 0.0)
    run_until(server, 31.9)
    assert Timeout() in server.on_timer(32.0)


def test_the_layer_absorbs_retransmitted_requests_and_matches_responses() -> None:
    layer = TransactionLayer()
    invite = request()
    (first,) = layer.receive(invite, PEER, 0.0)
    assert isinstance(first, IncomingRequest)
    assert first.transaction is not None
    assert layer.receive(invite, PEER, 0.1) == []  # nothing answered yet: nothing to resend
    layer.respond(first.transaction, response_to(invite, 100), 0.1)
    (again,) = layer.receive(invite, PEER, 0.2)
    assert isinstance(again, Send)
    assert isinstance(again.message, Response)

    transaction, out = layer.send_request(request("OPTIONS"), PEER, 0.0)
    assert len(out) == 1
    ok = response_to(transaction.request, 200)
    (event,) = layer.receive(ok, PEER, 0.1)
    assert isinstance(event, IncomingResponse)
    assert event.transaction is transaction
    assert layer.receive(response_to(request("OPTIONS"), 200), PEER, 0.1) == []  # stray


def test_the_layer_reports_a_client_timeout_and_forgets_finished_transactions() -> None:
    layer = TransactionLayer()
    layer.send_request(request("OPTIONS"), PEER, 0.0)
    events = []
    while layer.deadline is not None:
        events.extend(layer.on_timer(layer.deadline))
    assert any(isinstance(e, ClientTimeout) for e in events)
    assert len(layer) == 0


def test_an_ack_for_a_2xx_reaches_the_transaction_user() -> None:
    layer = TransactionLayer()
    invite = request()
    (incoming,) = layer.receive(invite, PEER, 0.0)
    assert isinstance(incoming, IncomingRequest)
    assert incoming.transaction is not None
    layer.respond(incoming.transaction, response_to(invite, 200, to_tag="x"), 0.0)
    ack = request("ACK")  # a new branch: the 2xx's ACK is a transaction of its own
    (event,) = layer.receive(ack, PEER, 0.1)
    assert isinstance(event, IncomingRequest)
    assert event.transaction is None
