"""One call leg's common part: a SIP dialog and a media leg between the platform and a peer.

``Leg`` speaks SIP through the ``SipContext`` (over the leg's transport: the peer's connection
for TCP and TLS) and tells its owner what happened through ``LegEvents``; it never raises into
the transport. It answers the peer's in-dialog requests (BYE, re-INVITE under the peer's media
encryption policy, INFO…) and sends ours (BYE, the re-INVITEs of hold and resume). The two
kinds of leg are in ``legs``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from enum import StrEnum
from typing import Protocol

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.dialog import (
    Dialog,
    new_branch,
    next_hop,
)
from voicemgmt.adapters.switch.sip.media.base import MediaLeg
from voicemgmt.adapters.switch.sip.media_policy import (
    OPTIONAL,
    PLAIN,
    Capabilities,
    Keys,
    MediaRefused,
    answer_offer,
    check_answer,
)
from voicemgmt.adapters.switch.sip.message import Request, Response, response_to
from voicemgmt.adapters.switch.sip.transaction import UDP, Address, ServerTransaction
from voicemgmt.adapters.switch.sip.transport import SipTransport
from voicemgmt.adapters.switch.sip.uri import NameAddr, SipUri

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
        policy: str = OPTIONAL,
        can: Capabilities | None = None,
    ) -> None:
        self.context = context
        self.policy = policy  # the peer's media encryption policy
        self.can = can or Capabilities(secure_signalling=False, sdes=False)
        self.keys: Keys = PLAIN  # what was agreed with the peer
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

    def _secure(self, keys: Keys) -> None:
        """Use ``keys`` from now on (SRTP when both sides have one)."""
        self.keys = keys
        if keys.ours is not None and keys.theirs is not None:
            self.media.encrypt(keys.ours, keys.theirs)

    def _with_keys(self, session: sdp.Session, keys: Keys) -> sdp.Session:
        cryptos = (keys.ours,) if keys.ours is not None else ()
        dtls = self.media.dtls_attributes() if keys.dtls else ()
        return replace(session, profile=keys.profile, cryptos=cryptos, dtls_attributes=dtls)

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
                keys = answer_offer(offer, self.policy, self.can)
            except sdp.SdpError:
                self._respond(transaction, response_to(request, 488))
                return
            except MediaRefused as exc:
                self._respond(transaction, not_acceptable(request, exc, self.context.host))
                return
            if self.keys.ours is not None and keys.ours is not None:  # keep our key
                keys = replace(keys, ours=replace(self.keys.ours, tag=keys.ours.tag))
            offer = replace(offer, cryptos=(keys.theirs,) if keys.theirs else ())
            self.remote_sdp = offer
            self.media.connect(offer)
            self._secure(keys)
            self.local_sdp = self._with_keys(
                replace(
                    answer,
                    session_id=self.local_sdp.session_id,
                    version=self.local_sdp.version + 1,
                ),
                keys,
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
                        if self.keys.ours is not None:  # the peer may change its key
                            self._secure(check_answer(self.keys, self.remote_sdp, self.policy))
                    except (sdp.SdpError, MediaRefused):
                        pass
                ack = dialog.request("ACK", self.via(), cseq=request.cseq[0])
                self.context.transport.send_stateless(ack, self.hop(ack), self.transport)

        self._send(request, answered)


def not_acceptable(request: Request, refused: MediaRefused, host: str) -> Response:
    """488 with the reason in a Warning header (RFC 3261 §20.43, code 399: miscellaneous)."""
    reason = refused.reason.replace('"', "'")
    log.info("refused the media of %s %s: %s", request.method, request.call_id, reason)
    return response_to(request, 488, headers=[("warning", f'399 {host} "{reason}"')])
