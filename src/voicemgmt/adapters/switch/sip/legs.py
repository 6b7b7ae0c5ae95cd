"""Call legs: one SIP dialog and one media leg between the platform and one peer.

``InboundLeg`` is the caller's INVITE we answer (UAS); ``OutboundLeg`` is an INVITE we send
to an operator's phone or, through the trunk, to a customer (UAC). Legs speak SIP through the
``SipContext`` and tell their owner what happened through ``LegEvents``; they never raise into
the transport. Hold is a re-INVITE with ``a=sendonly`` from our side.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import Protocol

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.dialog import (
    Dialog,
    cancel_for,
    initial_request,
    new_branch,
    new_call_id,
    new_tag,
    next_hop,
)
from voicemgmt.adapters.switch.sip.media.base import MediaLeg
from voicemgmt.adapters.switch.sip.message import Request, Response, response_to
from voicemgmt.adapters.switch.sip.transaction import UDP, Address, ServerTransaction
from voicemgmt.adapters.switch.sip.transport import SipTransport
from voicemgmt.adapters.switch.sip.uri import NameAddr, SipSyntaxError, SipUri

log = logging.getLogger(__name__)
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REGISTER"


class SipContext(Protocol):
    transport: SipTransport

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    def register_dialog(self, dialog: Dialog, leg: Leg) -> None: ...

    def forget_dialog(self, dialog: Dialog) -> None: ...


class LegEvents(Protocol):
    def leg_answered(self, leg: Leg) -> None: ...

    def leg_failed(self, leg: Leg, status: int) -> None: ...

    def leg_hung_up(self, leg: Leg) -> None: ...


class LegState(StrEnum):
    OFFERED = "offered"  # INVITE received, not answered / INVITE sent, no answer
    EARLY = "early"  # a provisional response went or came
    UP = "up"
    ENDED = "ended"


class Leg:
    def __init__(
        self,
        context: SipContext,
        owner: LegEvents,
        media: MediaLeg,
        role: str,
        key: str,
        *,
        transport: str = UDP,
        flow: Address | None = None,
    ) -> None:
        self.context = context
        # How the peer is reached: over TCP or TLS, every request of the dialog goes to
        # ``flow`` (the connection the peer used, or the one we opened), not to its Contact.
        self.transport = transport
        self.flow = flow
        self.owner = owner
        self.media = media
        self.role = role  # "caller", "operator", "customer"
        self.key = key  # which operator, or "remote"
        self.state = LegState.OFFERED
        self.dialog: Dialog | None = None
        self.local_sdp: sdp.Session | None = None
        self.remote_sdp: sdp.Session | None = None
        self._invite_server: ServerTransaction | None = None  # the last INVITE we answered 2xx

    @property
    def up(self) -> bool:
        return self.state is LegState.UP

    @property
    def ended(self) -> bool:
        return self.state is LegState.ENDED

    def via(self) -> str:
        port = self.context.transport.port_of(self.transport)
        return f"SIP/2.0/{self.transport} {self.context.host}:{port};branch={new_branch()};rport"

    def contact(self) -> NameAddr:
        port = self.context.transport.port_of(self.transport)
        uri = SipUri("sip", "vm", self.context.host, port)
        if self.transport != UDP:
            uri = uri.with_params(transport=self.transport.lower())
        return NameAddr(uri)

    def hop(self, request: Request) -> Address:
        """Where a request of this leg goes (its flow over a stream, else its next hop)."""
        if self.transport != UDP and self.flow is not None:
            return self.flow
        return next_hop(request)

    def _ended(self) -> None:
        if self.dialog is not None:
            self.context.forget_dialog(self.dialog)
        self.state = LegState.ENDED

    def _send(self, request: Request, callback: object = None) -> None:
        def ignore(response: Response | None) -> None:
            pass

        handler = callback if callable(callback) else ignore
        self.context.transport.send_request(request, self.hop(request), handler, self.transport)

    # in-dialog requests from the peer ------------------------------------------------------

    def in_dialog(self, request: Request, transaction: ServerTransaction | None) -> None:
        if request.method == "ACK":
            if self._invite_server is not None:
                self._invite_server.acknowledged()
            return
        if transaction is None:
            return
        dialog = self.dialog
        if dialog is None or not dialog.accepts(request):
            self._respond(transaction, response_to(request, 500, "Out of Order CSeq"))
            return
        if request.method == "BYE":
            self._respond(transaction, response_to(request, 200))
            self.media.stop()
            self._ended()
            self.owner.leg_hung_up(self)
        elif request.method == "INVITE":
            self._reinvited(request, transaction)
        elif (
            request.method in ("INFO", "OPTIONS", "UPDATE") and not request.body
        ) or request.method == "INFO":
            self._respond(transaction, response_to(request, 200))
        else:
            self._respond(transaction, response_to(request, 405, headers=[("allow", ALLOW)]))

    def _reinvited(self, request: Request, transaction: ServerTransaction) -> None:
        """The peer puts us on hold, takes us off, or moves its media (RFC 3264 §8)."""
        assert self.dialog is not None
        assert self.local_sdp is not None
        if request.body:
            try:
                offer = sdp.parse(request.body)
                answer = sdp.answer(offer, *self.media.local_address)
            except sdp.SdpError:
                self._respond(transaction, response_to(request, 488))
                return
            self.remote_sdp = offer
            self.media.connect(offer)
            self.local_sdp = sdp.Session(
                answer.host,
                answer.port,
                answer.codecs,
                answer.dtmf_pt,
                answer.direction,
                self.local_sdp.session_id,
                self.local_sdp.version + 1,
            )
        self.dialog.refresh_target(request)
        ok = response_to(
            request,
            200,
            headers=[("contact", str(self.contact())), ("content-type", "application/sdp")],
            body=self.local_sdp.render(),
        )
        self._invite_server = transaction
        self._respond(transaction, ok)

    def _respond(self, transaction: ServerTransaction, response: Response) -> None:
        self.context.transport.respond(transaction, response)

    # what the platform does ----------------------------------------------------------------

    def bye(self) -> None:
        if self.dialog is not None and self.state is LegState.UP:
            self._send(self.dialog.request("BYE", self.via()))
        self.media.stop()
        self._ended()

    def reinvite(self, direction: sdp.Direction) -> None:
        """Offer our media again with ``direction`` (sendonly: hold; sendrecv: resume)."""
        if self.dialog is None or self.local_sdp is None or not self.up:
            return
        self.local_sdp = self.local_sdp.with_direction(direction)
        request = self.dialog.request(
            "INVITE",
            self.via(),
            headers=[("content-type", "application/sdp")],
            body=self.local_sdp.render(),
        )
        dialog = self.dialog

        def answered(response: Response | None) -> None:
            if response is None or response.status < 200:
                return
            if response.status < 300 and not self.ended:
                if response.body:
                    try:
                        self.remote_sdp = sdp.parse(response.body)
                        self.media.connect(self.remote_sdp)
                    except sdp.SdpError:
                        pass
                ack = dialog.request("ACK", self.via(), cseq=request.cseq[0])
                self.context.transport.send_stateless(ack, self.hop(ack), self.transport)

        self._send(request, answered)


class InboundLeg(Leg):
    """The caller: an INVITE we received, answered when the platform says so."""

    def __init__(
        self,
        context: SipContext,
        owner: LegEvents,
        media: MediaLeg,
        invite: Request,
        transaction: ServerTransaction,
        offer: sdp.Session,
        *,
        transport: str = UDP,
        source: Address | None = None,
    ) -> None:
        super().__init__(
            context, owner, media, "caller", "remote", transport=transport, flow=source
        )
        self.invite = invite
        self.transaction = transaction
        self.remote_sdp = offer
        self.local_tag = new_tag()
        host, port = media.local_address
        self.local_sdp = sdp.answer(offer, host, port)
        media.connect(offer)

    def ring(self) -> None:
        if self.state is LegState.OFFERED:
            self.state = LegState.EARLY
            ringing = response_to(self.invite, 180, to_tag=self.local_tag)
            self._respond(self.transaction, ringing)

    def answer(self) -> None:
        if self.state not in (LegState.OFFERED, LegState.EARLY) or self.local_sdp is None:
            return
        ok = response_to(
            self.invite,
            200,
            to_tag=self.local_tag,
            headers=[
                ("contact", str(self.contact())),
                ("allow", ALLOW),
                ("content-type", "application/sdp"),
            ],
            body=self.local_sdp.render(),
        )
        try:
            self.dialog = Dialog.uas(self.invite, self.local_tag, self.contact())
        except SipSyntaxError:
            self.reject(400)
            return
        self.context.register_dialog(self.dialog, self)
        self.state = LegState.UP
        self._invite_server = self.transaction
        self._respond(self.transaction, ok)

    def reject(self, status: int, reason: str | None = None) -> None:
        if self.state in (LegState.OFFERED, LegState.EARLY):
            self._respond(
                self.transaction, response_to(self.invite, status, reason, to_tag=self.local_tag)
            )
            self.media.stop()
            self._ended()

    def cancelled(self) -> None:
        """The caller sent CANCEL before we answered (the CANCEL itself is answered apart)."""
        if self.state in (LegState.OFFERED, LegState.EARLY):
            self.reject(487)
            self.owner.leg_hung_up(self)

    def hang_up(self, status: int = 480) -> None:
        if self.up:
            self.bye()
        else:
            self.reject(status)

    def timed_out(self) -> None:
        """No ACK ever came for our 2xx: the caller is gone (RFC 3261 §13.3.1.4)."""
        if self.up:
            self.bye()
            self.owner.leg_hung_up(self)


class OutboundLeg(Leg):
    """An INVITE we send: to an operator's phone, or to a customer through the trunk."""

    def __init__(
        self,
        context: SipContext,
        owner: LegEvents,
        media: MediaLeg,
        role: str,
        key: str,
        *,
        target: SipUri,
        destination: Address,
        from_: NameAddr,
        to: NameAddr,
        codecs: tuple[int, ...],
        headers: Iterable[tuple[str, str]] = (),
        transport: str = UDP,
    ) -> None:
        super().__init__(context, owner, media, role, key, transport=transport, flow=destination)
        host, port = media.local_address
        self.local_sdp = sdp.offer(host, port, codecs)
        self.invite = initial_request(
            "INVITE",
            target,
            via=self.via(),
            from_=from_.with_tag(new_tag()),
            to=to,
            call_id=new_call_id(context.host),
            cseq=1,
            contact=self.contact(),
            headers=[
                ("allow", ALLOW),
                *headers,
                ("content-type", "application/sdp"),
            ],
            body=self.local_sdp.render(),
        )
        self.destination = destination
        self._cancel_requested = False
        self._provisional = False

    def start(self) -> None:
        self.context.transport.send_request(
            self.invite, self.destination, self._response, self.transport
        )

    def cancel(self) -> None:
        """Stop ringing (CANCEL), or hang up (BYE) if the phone answered meanwhile."""
        if self.state is LegState.UP:
            self.bye()
            return
        if self.state is LegState.ENDED:
            return
        self._cancel_requested = True
        if self._provisional:
            self._send_cancel()

    def _send_cancel(self) -> None:
        self.context.transport.send_request(
            cancel_for(self.invite), self.destination, lambda response: None, self.transport
        )

    def _response(self, response: Response | None) -> None:
        if self.state is LegState.ENDED and (response is None or response.status >= 300):
            return
        if response is None:
            self.media.stop()
            self._ended()
            self.owner.leg_failed(self, 408)
            return
        status = response.status
        if status < 200:
            if status > 100:
                self.state = LegState.EARLY
            if not self._provisional:
                self._provisional = True
                if self._cancel_requested:
                    self._send_cancel()
            return
        if status < 300:
            self._answered(response)
            return
        self.media.stop()
        self._ended()
        if not self._cancel_requested:
            self.owner.leg_failed(self, status)

    def _answered(self, response: Response) -> None:
        first = self.dialog is None
        if first:
            self.dialog = Dialog.uac(self.invite, response)
        assert self.dialog is not None
        ack = self.dialog.request("ACK", self.via(), cseq=self.invite.cseq[0])
        self.context.transport.send_stateless(ack, self.hop(ack), self.transport)
        if not first:
            return  # a retransmitted 2xx: acknowledged again, nothing else
        if self._cancel_requested or self.state is LegState.ENDED:
            self.state = LegState.UP
            self.bye()  # answered after we gave up: hang up at once (RFC 3261 §15)
            return
        try:
            self.remote_sdp = sdp.parse(response.body)
            self.media.connect(self.remote_sdp)
        except sdp.SdpError:
            self.state = LegState.UP
            self.bye()
            self.owner.leg_failed(self, 488)
            return
        self.context.register_dialog(self.dialog, self)
        self.state = LegState.UP
        self.owner.leg_answered(self)
