"""Call legs: one SIP dialog and one media leg between the platform and one peer.

``InboundLeg`` is the caller's INVITE we answer (UAS); ``OutboundLeg`` is an INVITE we send
to an operator's phone or, through the trunk, to a customer (UAC). Legs speak SIP through the
``SipContext`` and tell their owner what happened through ``LegEvents``; they never raise into
the transport. Hold is a re-INVITE with ``a=sendonly`` from our side. Each leg applies its
peer's media encryption policy (``media_policy``) to every offer and answer, and keys its
media leg when SRTP was agreed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.dialog import (
    Dialog,
    cancel_for,
    initial_request,
    new_call_id,
    new_tag,
)
from voicemgmt.adapters.switch.sip.leg import (
    ALLOW,
    Leg,
    LegEvents,
    LegState,
    SipContext,
    not_acceptable,
)
from voicemgmt.adapters.switch.sip.media.base import MediaLeg
from voicemgmt.adapters.switch.sip.media_policy import (
    OPTIONAL,
    PLAIN,
    Capabilities,
    Keys,
    MediaRefused,
    check_answer,
)
from voicemgmt.adapters.switch.sip.message import Request, Response, response_to
from voicemgmt.adapters.switch.sip.transaction import UDP, Address, ServerTransaction
from voicemgmt.adapters.switch.sip.uri import NameAddr, SipSyntaxError, SipUri

__all__ = [
    "ALLOW",
    "InboundLeg",
    "Leg",
    "LegEvents",
    "LegState",
    "OutboundLeg",
    "SipContext",
    "not_acceptable",
]
log = logging.getLogger(__name__)


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
        keys: Keys = PLAIN,
        policy: str = OPTIONAL,
        can: Capabilities | None = None,
    ) -> None:
        super().__init__(
            context,
            owner,
            media,
            "caller",
            "remote",
            transport=transport,
            flow=source,
            policy=policy,
            can=can,
        )
        self.invite = invite
        self.transaction = transaction
        self.remote_sdp = offer
        self.local_tag = new_tag()
        host, port = media.local_address
        chosen = media.sdes_key()
        if chosen is not None and keys.ours is not None:  # the backend's own key (rtpengine)
            keys = replace(keys, ours=chosen)
        self.local_sdp = self._with_keys(sdp.answer(offer, host, port), keys)
        media.connect(offer)
        self._secure(keys)

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
        keys: Keys = PLAIN,
        policy: str = OPTIONAL,
        can: Capabilities | None = None,
    ) -> None:
        super().__init__(
            context,
            owner,
            media,
            role,
            key,
            transport=transport,
            flow=destination,
            policy=policy,
            can=can,
        )
        host, port = media.local_address
        self.offered = keys  # our key in the INVITE; the peer's comes with its answer
        self.local_sdp = self._with_keys(sdp.offer(host, port, codecs), keys)
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
            keys = check_answer(self.offered, self.remote_sdp, self.policy)
        except (sdp.SdpError, MediaRefused) as exc:
            log.warning("%s leg %s: unusable answer: %s", self.role, self.key, exc)
            self.state = LegState.UP
            self.bye()
            self.owner.leg_failed(self, 488)
            return
        self.media.connect(self.remote_sdp)
        self._secure(keys)
        self.context.register_dialog(self.dialog, self)
        self.state = LegState.UP
        self.owner.leg_answered(self)
