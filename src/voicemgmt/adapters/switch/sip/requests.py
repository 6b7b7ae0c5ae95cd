"""Requests reaching the SIP driver: routed to a dialog, or starting something new.

In-dialog requests (a To tag) go to their leg, or get 481. New INVITEs are admitted from the
trunk only (allowed source, or digest as the trunk user), to a number given in the
Request-URI (or To) as E.164 digits, with or without '+'; REGISTER goes to the registrar;
OPTIONS is answered; anything else is refused. Sources that keep failing are throttled, and
nothing a peer sends may raise out of here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.calls import SipCall, SipOptions
from voicemgmt.adapters.switch.sip.dialog import Dialog, DialogKey, dialog_key_of
from voicemgmt.adapters.switch.sip.digest import Verdict
from voicemgmt.adapters.switch.sip.legs import ALLOW, InboundLeg, Leg, not_acceptable
from voicemgmt.adapters.switch.sip.media.base import MediaBackend, MediaUnavailable
from voicemgmt.adapters.switch.sip.media_policy import Capabilities, MediaRefused, answer_offer
from voicemgmt.adapters.switch.sip.message import Request, Response, response_to
from voicemgmt.adapters.switch.sip.registrar import MAX_EXPIRES, Registrar, TrunkPolicy
from voicemgmt.adapters.switch.sip.throttle import SipThrottle
from voicemgmt.adapters.switch.sip.transaction import TLS, Address, ServerTransaction
from voicemgmt.adapters.switch.sip.transaction_layer import IncomingRequest
from voicemgmt.adapters.switch.sip.transport import SipTransport
from voicemgmt.adapters.switch.sip.uri import SipSyntaxError
from voicemgmt.services.switch import SwitchReports

if TYPE_CHECKING:
    from voicemgmt.adapters.switch.sip.digest import DigestServer

log = logging.getLogger(__name__)


def e164_digits(user: str | None) -> str | None:
    """``+33170200200`` or ``33170200200`` → ``33170200200``; None if not a number."""
    if not user:
        return None
    digits = user.split(";")[0].removeprefix("+")
    return digits if digits.isascii() and digits.isdigit() and 3 <= len(digits) <= 15 else None


class RequestHandler:
    options: SipOptions
    transport: SipTransport
    registrar: Registrar
    trunk: TrunkPolicy
    throttle: SipThrottle
    digest: DigestServer
    media: MediaBackend
    reports: SwitchReports | None
    calls: dict[str, SipCall]
    _owners: dict[Leg, SipCall]
    clock: Callable[[], float]
    _new_call_id: Callable[[], str]

    def __init__(self) -> None:
        self._dialogs: dict[DialogKey, Leg] = {}
        self._invites: dict[int, InboundLeg] = {}  # INVITE transaction → leg, until final

    # SipContext ------------------------------------------------------------------------------

    def register_dialog(self, dialog: Dialog, leg: Leg) -> None:
        self._dialogs[dialog.key] = leg
        if isinstance(leg, InboundLeg):
            self._invites.pop(id(leg.transaction), None)

    def forget_dialog(self, dialog: Dialog) -> None:
        self._dialogs.pop(dialog.key, None)

    # SipHandler ------------------------------------------------------------------------------

    def request_received(self, incoming: IncomingRequest) -> None:
        request, source, transaction = incoming.request, incoming.source, incoming.transaction
        now = self.clock()
        try:
            in_dialog = request.to.tag and dialog_key_of(request, we_sent=False) in self._dialogs
        except (SipSyntaxError, ValueError):
            in_dialog = False
        if not in_dialog and self.throttle.blocked(request, source, now):
            return  # no answer: a scanner learns nothing
        try:
            self._route(request, source, transaction, now, incoming.transport)
        except (SipSyntaxError, ValueError) as exc:
            log.debug("unusable %s from %s: %s", request.method, source, exc)
            if transaction is not None:
                self._respond(transaction, response_to(request, 400))

    def server_timed_out(self, transaction: ServerTransaction) -> None:
        """Our 2xx was never acknowledged: the caller is gone."""
        for leg in list(self._dialogs.values()):
            if isinstance(leg, InboundLeg) and leg.transaction is transaction:
                leg.timed_out()

    def _route(
        self,
        request: Request,
        source: Address,
        transaction: ServerTransaction | None,
        now: float,
        transport: str,
    ) -> None:
        method = request.method
        if method == "ACK" or (transaction is not None and request.to.tag):
            leg = self._dialogs.get(dialog_key_of(request, we_sent=False))
            if leg is not None:
                leg.in_dialog(request, transaction)
            elif transaction is not None:
                self._respond(transaction, response_to(request, 481))
            return
        if transaction is None:
            return
        if method == "CANCEL":
            self._cancel(request, transaction)
        elif method == "INVITE":
            self.spawn(self._invite(request, source, transaction, now, transport))
        elif method == "REGISTER":
            self.spawn(self._register(request, source, transaction, now, transport))
        elif method == "OPTIONS":
            headers = [("allow", ALLOW), ("accept", "application/sdp")]
            self._respond(transaction, response_to(request, 200, headers=headers, to_tag="opt"))
        elif method in ("BYE", "INFO", "UPDATE", "PRACK"):
            self._respond(transaction, response_to(request, 481))
        else:
            self._respond(transaction, response_to(request, 405, headers=[("allow", ALLOW)]))

    def _cancel(self, cancel: Request, transaction: ServerTransaction) -> None:
        invite = self.transport.layer.invite_transaction(cancel)
        leg = self._invites.pop(id(invite), None) if invite is not None else None
        if leg is None:
            self._respond(transaction, response_to(cancel, 481))
            return
        self._respond(transaction, response_to(cancel, 200))
        leg.cancelled()

    async def _register(
        self,
        request: Request,
        source: Address,
        transaction: ServerTransaction,
        now: float,
        transport: str,
    ) -> None:
        try:
            response, failed = await self.registrar.register(request, source, now, transport)
        except Exception:
            log.exception("REGISTER from %s failed", source)
            response, failed = response_to(request, 500), False
        if failed:
            self.throttle.failed(request, source, now)
        elif response.status == 200 and request.headers.get("authorization") is not None:
            self.throttle.succeeded(source, now)
            self.transport.keep_open(transport, source, MAX_EXPIRES + 60)
        self._respond(transaction, response)

    async def _invite(
        self,
        request: Request,
        source: Address,
        transaction: ServerTransaction,
        now: float,
        transport: str,
    ) -> None:
        refusal = self._admit(request, source, now)
        if refusal is not None:
            self._respond(transaction, refusal)
            return
        called = e164_digits(request.uri.user) or e164_digits(request.to.uri.user)
        if called is None:
            self._respond(transaction, response_to(request, 404))
            return
        policy = self.options.trunk_media_encryption
        can = Capabilities(transport == TLS, self.media.sdes, self.media.dtls)
        try:
            offer = sdp.parse(request.body)
            sdp.answer(offer, "0.0.0.0", 0)  # noqa: S104 (only checks a codec is shared)
            keys = answer_offer(offer, policy, can)
        except sdp.SdpError:
            self._respond(transaction, response_to(request, 488))
            return
        except MediaRefused as exc:
            self._respond(transaction, not_acceptable(request, exc, self.host))
            return
        if len(self.calls) >= self.options.max_calls or self.transport.layer.busy:
            self._respond(transaction, response_to(request, 503, headers=[("retry-after", "5")]))
            return
        call = SipCall(self._new_call_id(), "in")
        call.caller = e164_digits(request.from_.uri.user) or ""
        try:
            # the media backend sees the one key taken (none if the media stays plain)
            media_offer = replace(offer, cryptos=(keys.theirs,) if keys.theirs else ())
            media = await self.media.open_leg(call.id, "caller", media_offer)
        except MediaUnavailable:
            self._respond(transaction, response_to(request, 503))
            return
        leg = InboundLeg(
            self,  # type: ignore[arg-type]
            self,  # type: ignore[arg-type]
            media,
            request,
            transaction,
            media_offer,
            transport=transport,
            source=source,
            keys=keys,
            policy=policy,
            can=can,
        )
        media.on_digit(lambda digit: self.digit(call, digit))
        call.remote = leg
        self.calls[call.id] = call
        self._owners[leg] = call
        self._invites[id(transaction)] = leg
        reports = self.reports
        assert reports is not None

        async def announce() -> None:
            # 100 Trying once the platform stored the call (its trace, services/live_calls.py):
            # what the caller was told survives a crash. Unless the platform already answered.
            try:
                await reports.inbound_call(call.id, call.caller, called)
            except Exception:
                self.end_call(call, 503)  # not stored: refused, never half-taken
                raise
            if transaction.last_response is None:
                self._respond(transaction, response_to(request, 100))

        call.report("inbound_call", announce)

    def _admit(self, request: Request, source: Address, now: float) -> Response | None:
        if self.trunk.allowed_source(source):
            return None
        if self.trunk.takes_digest:
            if request.headers.get("authorization") is None:
                return response_to(
                    request, 401, headers=[("www-authenticate", self.digest.challenge(now))]
                )
            verdict = self.trunk.authenticated(request, now)
            if verdict is Verdict.OK:
                self.throttle.succeeded(source, now)
                return None
            if verdict in (Verdict.STALE, Verdict.REPLAYED):
                challenge = self.digest.challenge(now, stale=True)
                return response_to(request, 401, headers=[("www-authenticate", challenge)])
        if self.registrar.registered_source(source):
            # An operator's phone dialling out: refused (click-to-call applies the account's
            # dial-out rules), but not counted against the phone's address.
            return response_to(request, 403, "Use Click-to-Call")
        self.throttle.failed(request, source, now)
        log.info("refused an INVITE from %s:%s (not a trunk peer)", *source)
        return response_to(request, 403)

    def _respond(self, transaction: ServerTransaction, response: Response) -> None:
        self.transport.respond(transaction, response)

    # provided by the driver ------------------------------------------------------------------

    @property
    def host(self) -> str:
        raise NotImplementedError

    def digit(self, call: SipCall, digit: str) -> None:
        raise NotImplementedError

    def end_call(self, call: SipCall, status: int) -> None:
        raise NotImplementedError

    def spawn(self, coroutine: object) -> None:
        raise NotImplementedError

    def _spawn_later(self, delay: float, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_later(delay, callback)
