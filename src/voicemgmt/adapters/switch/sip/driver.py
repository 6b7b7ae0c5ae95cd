"""The SIP driver: a :class:`~voicemgmt.services.switch.Switch` on a SIP trunk and SIP phones.

A back-to-back user agent. A carrier's INVITE to one of the platform's numbers becomes
``inbound_call``; the routing core's commands answer it, play prompts and music, ring
operators' phones (INVITEs to their registered or static contacts), bridge the media, hold
(re-INVITE), dial customers through the trunk (click-to-call, under the account's dial-out
rules) and hang up. What phones and the trunk do comes back as reports, in order, per call.
Answering or hanging up on the phone and in the banner are the same act: whichever comes
first, the other side follows. Requests are handled in ``requests.py``, the calls it places
are made in ``dialling.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Callable

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.calls import (
    SipCall,
    SipOptions,
    failure_reason,
    hangup_status,
)
from voicemgmt.adapters.switch.sip.dialling import Dialling
from voicemgmt.adapters.switch.sip.digest import DigestServer
from voicemgmt.adapters.switch.sip.legs import InboundLeg, Leg, OutboundLeg
from voicemgmt.adapters.switch.sip.media.base import MediaBackend, MediaLeg
from voicemgmt.adapters.switch.sip.media_watch import MediaWatch
from voicemgmt.adapters.switch.sip.prompts import PromptLibrary, PromptUnavailable
from voicemgmt.adapters.switch.sip.registrar import Registrar, TrunkPolicy
from voicemgmt.adapters.switch.sip.requests import RequestHandler
from voicemgmt.adapters.switch.sip.throttle import SipThrottle
from voicemgmt.adapters.switch.sip.transaction import TCP, TLS
from voicemgmt.adapters.switch.sip.transport import SipObserver, SipTransport
from voicemgmt.domain.routing.events import (
    AnswerCaller,
    Bridge,
    CancelRing,
    DialCustomer,
    Forward,
    HangUp,
    Hold,
    PlayPrompt,
    PlayQueueMusic,
    RingOperator,
    StopPrompt,
    SwitchCommand,
    Unhold,
)
from voicemgmt.domain.sip import SipDevice
from voicemgmt.observability.logs import about_call
from voicemgmt.services.sip_devices import SipDirectory, SipRegistrationStore
from voicemgmt.services.switch import SwitchReports, new_call_id

log = logging.getLogger(__name__)
ENDED_REMEMBERED = 10_000
PURGE_SECONDS = 300.0  # expired registrations are deleted this often


class SipSwitch(RequestHandler, Dialling):
    def __init__(
        self,
        options: SipOptions,
        media: MediaBackend,
        prompts: PromptLibrary,
        directory: SipDirectory,
        *,
        clock: Callable[[], float] = time.monotonic,
        new_call_id: Callable[[], str] = new_call_id,
        observer: SipObserver | None = None,
        registrations: SipRegistrationStore | None = None,
    ) -> None:
        self.options = options
        self.media = media
        self.prompts = prompts
        self.directory = directory
        self.clock = clock
        self._new_call_id = new_call_id
        key = options.digest_key or secrets.token_bytes(32)
        self.digest = DigestServer(options.realm, key)
        self.registrar = Registrar(self.digest, directory, registrations)
        self.trunk = TrunkPolicy(
            list(options.trunk_networks), self.digest, options.trunk_username, options.trunk_ha1
        )
        self.throttle = SipThrottle(self.trunk.allowed_source)
        self.transport = SipTransport(
            self,
            clock,
            observer,
            limits=options.stream_limits,
            client_tls=options.tls_client,
        )
        self.reports: SwitchReports | None = None
        self.calls: dict[str, SipCall] = {}
        self._ended: dict[str, None] = {}
        self._owners: dict[Leg, SipCall] = {}
        self._devices: dict[tuple[int, int], tuple[float, SipDevice | None]] = {}
        self._tokens = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        super().__init__()

    # SipContext ------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.options.public_host or self.transport.address[0]

    @property
    def port(self) -> int:
        return self.transport.address[1]

    # Switch ----------------------------------------------------------------------------------

    async def start(self, reports: SwitchReports) -> None:
        if self.reports is not None:
            raise RuntimeError("the SIP switch is started already")
        self.reports = reports
        restored = await self.registrar.restore(self.clock())
        if restored:
            log.info("%s phone registrations restored", restored)
        await self.media.start()
        await self.transport.listen(*self.options.listen)
        log.info("SIP listening on %s:%s (UDP)", *self.transport.address)
        host = self.options.listen[0]
        if self.options.tcp_port is not None:
            address = await self.transport.listen_stream(TCP, host, self.options.tcp_port)
            log.info("SIP listening on %s:%s (TCP)", *address)
        if self.options.tls_port is not None and self.options.tls_server is not None:
            address = await self.transport.listen_stream(
                TLS, host, self.options.tls_port, self.options.tls_server
            )
            log.info("SIP listening on %s:%s (TLS)", *address)
        if self.options.media_timeout > 0:
            watch = MediaWatch(self.media, self.options.media_timeout)
            self.spawn(watch.run(lambda: list(self.calls.values()), self.clock, self._media_lost))
        self.spawn(self._purge_registrations())

    async def execute(self, account_id: int, command: SwitchCommand) -> None:
        with about_call(command.call_id):
            await self._execute(account_id, command)

    async def _execute(self, account_id: int, command: SwitchCommand) -> None:
        call = self.calls.get(command.call_id)
        if call is None and isinstance(command, RingOperator) and self._accepts(command.call_id):
            call = self.calls[command.call_id] = SipCall(command.call_id, "out")
        if call is None or call.ended:
            return
        if call.account_id is None:
            call.account_id = account_id
        elif account_id not in (call.account_id, 0):
            log.warning("ignoring account %s's command for call %s", account_id, call.id)
            return
        async with call.lock:
            try:
                await self._apply(call, command)
            except Exception:
                log.exception("could not %s for call %s", type(command).__name__, call.id)

    async def dial_refusal(self, account_id: int, number: str) -> str | None:
        if self.options.trunk_outbound is None:
            return "no_trunk"
        rules = await self.directory.dial_out_rules(account_id)
        return rules.refusal(number.removeprefix("+"))

    async def close(self) -> None:
        self._closed = True
        for call in list(self.calls.values()):
            self.end_call(call, 480)
        await asyncio.sleep(0)  # let the BYEs and CANCELs go out
        await self.transport.aclose()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.media.close()

    # commands --------------------------------------------------------------------------------

    async def _apply(self, call: SipCall, command: SwitchCommand) -> None:
        remote = call.remote
        match command:
            case AnswerCaller():
                if isinstance(remote, InboundLeg):
                    remote.answer()
            case PlayPrompt(prompt=prompt):
                await self._play_prompt(call, prompt)
            case StopPrompt():
                call.prompt = None
                if remote is not None:
                    remote.media.stop()
            case PlayQueueMusic():
                self._drop_connected_operator(call)
                await self._music(call)
            case RingOperator(operator_id=operator_id, shown=shown):
                if shown and call.direction == "out":
                    call.caller = shown.removeprefix("+")  # the customer, on the phone's screen
                if call.bridged_to is not None:  # a blind transfer: the caller waits again
                    self._drop_connected_operator(call)
                    await self._music(call)
                await self._ring(call, operator_id)
            case CancelRing(operator_id=operator_id):
                leg = call.operators.pop(operator_id, None)
                if leg is not None:
                    leg.cancel()
                    self._release(leg)
            case Bridge(operator_id=operator_id):
                call.bridged_to, call.prompt = operator_id, None
                self._connect(call)
            case Hold():
                if remote is not None and remote.up and not call.held:
                    call.held = True
                    self.media.unbridge(remote.media)
                    remote.reinvite(sdp.Direction.SENDONLY)
                    await self._music(call)
            case Unhold():
                if remote is not None and call.held:
                    call.held = False
                    remote.reinvite(sdp.Direction.SENDRECV)
                    remote.media.stop()
                    self._connect(call)
            case DialCustomer(number=number, caller_id=caller_id):
                if call.direction == "out" and not call.dialled:
                    call.dialled = True
                    await self._dial(call, number, caller_id)
            case Forward(number=number):
                call.forwarded = True
                await self._dial(call, number, call.caller, forward=True)
            case HangUp(reason=reason):
                if not call.forwarded:
                    self.end_call(call, hangup_status(reason))

    async def _play_prompt(self, call: SipCall, prompt: dict[str, str]) -> None:
        token = call.prompt = next(self._tokens)
        remote = call.remote
        try:
            audio = await self.prompts.load(prompt)
        except PromptUnavailable as exc:
            log.warning("call %s: prompt unavailable (%s); skipping it", call.id, exc)
            self._prompt_done(call, token)
            return
        if call.prompt == token and remote is not None and not call.ended:
            remote.media.play(audio, loop=False, done=lambda: self._prompt_done(call, token))

    def _prompt_done(self, call: SipCall, token: int) -> None:
        reports = self.reports
        if call.prompt != token or call.ended or reports is None:
            return
        call.prompt = None
        call.report("prompt_finished", lambda: reports.prompt_finished(call.id))

    async def _music(self, call: SipCall) -> None:
        call.prompt = None
        remote = call.remote
        if remote is None:
            return
        self.media.unbridge(remote.media)
        audio = await self.prompts.music()
        if not call.ended and (call.bridged_to is None or call.held):
            remote.media.play(audio, loop=True, done=None)

    def _drop_connected_operator(self, call: SipCall) -> None:
        if call.bridged_to is None:
            return
        leg = call.operators.pop(call.bridged_to, None)
        call.bridged_to = None
        if leg is not None:
            leg.cancel()
            self._release(leg)

    def _connect(self, call: SipCall) -> None:
        """Bridge the remote leg and the operator the core chose, once both are up."""
        remote = call.remote
        leg = call.operators.get(call.bridged_to) if call.bridged_to is not None else None
        if remote is None:
            return
        remote.media.stop()
        if leg is not None and leg.up and remote.up and not call.held:
            self.media.bridge(remote.media, leg.media)

    # leg events ------------------------------------------------------------------------------

    def leg_answered(self, leg: Leg) -> None:
        call = self._owners.get(leg)
        reports = self.reports
        if call is None or reports is None or call.ended:
            leg.bye()
            return
        if leg.role == "forward":
            if isinstance(call.remote, InboundLeg):
                call.remote.media.stop()
                self.media.bridge(call.remote.media, leg.media)
            return
        if leg.role == "customer":
            call.report("customer_answered", lambda: reports.customer_answered(call.id))
            return
        operator_id = call.operator_of(leg)
        if operator_id is None:
            leg.bye()
        elif call.bridged_to == operator_id:
            self._connect(call)  # the banner answered first: the phone joins the call
        elif call.direction == "in" or not call.dialled:
            call.report(
                "operator_answered", lambda: reports.operator_answered(call.id, operator_id)
            )

    def leg_failed(self, leg: Leg, status: int) -> None:
        call = self._owners.pop(leg, None)
        reports = self.reports
        self._release(leg, forget=False)
        if call is None or reports is None or call.ended:
            return
        reason = failure_reason(status)
        if leg.role == "forward":
            self.end_call(call, 480)
        elif leg.role == "customer":
            call.report("customer_failed", lambda: reports.customer_failed(call.id, reason))
        else:
            operator_id = call.operator_of(leg)
            if operator_id is not None:
                del call.operators[operator_id]
                call.report(
                    "operator_rejected",
                    lambda: reports.operator_rejected(call.id, operator_id, reason),
                )

    def leg_hung_up(self, leg: Leg) -> None:
        call = self._owners.get(leg)
        reports = self.reports
        if call is None or reports is None or call.ended:
            return
        if leg is call.remote or leg.role == "forward":
            self.end_call(call, 480)
            if not call.forwarded:
                call.report("caller_hung_up", lambda: reports.caller_hung_up(call.id))
            return
        operator_id = call.operator_of(leg)
        if operator_id is None:
            return
        del call.operators[operator_id]
        self._release(leg)
        if call.bridged_to == operator_id or call.direction == "out":
            call.report("operator_hung_up", lambda: reports.operator_hung_up(call.id, operator_id))
        else:  # answered, then hung up before the core bridged it: as good as a refusal
            call.report(
                "operator_rejected",
                lambda: reports.operator_rejected(call.id, operator_id, "hung_up"),
            )

    def digit(self, call: SipCall, digit: str) -> None:
        reports = self.reports
        if reports is not None and not call.ended:
            call.report("digit", lambda: reports.digit(call.id, digit))

    # endings ---------------------------------------------------------------------------------

    async def _purge_registrations(self) -> None:
        while True:
            await asyncio.sleep(PURGE_SECONDS)
            try:
                await self.registrar.purge(self.clock())
            except Exception:
                log.exception("could not purge expired registrations")

    def _media_lost(self, call: SipCall) -> None:
        reports = self.reports
        if call.ended or reports is None:
            return
        with about_call(call.id):
            log.warning("call %s: no RTP for %ss, hanging up", call.id, self.options.media_timeout)
        self.end_call(call, 408)
        call.report("media_timeout", lambda: reports.media_timeout(call.id))

    def end_call(self, call: SipCall, status: int) -> None:
        """Tear every leg down (BYE, CANCEL or a final response) and free the media."""
        if call.ended:
            return
        call.ended = True
        for leg in call.legs():
            if isinstance(leg, InboundLeg):
                self._invites.pop(id(leg.transaction), None)
                leg.hang_up(status)
            elif isinstance(leg, OutboundLeg):
                leg.cancel()
            self._release(leg)
        call.operators.clear()
        self.calls.pop(call.id, None)
        self._ended[call.id] = None
        if len(self._ended) > ENDED_REMEMBERED:
            del self._ended[next(iter(self._ended))]

    def _release(self, leg: Leg, *, forget: bool = True) -> None:
        if forget:
            self._owners.pop(leg, None)
        self.spawn(self._close_media(leg.media))

    async def _close_media(self, media: MediaLeg) -> None:
        with contextlib.suppress(Exception):
            await self.media.close_leg(media)

    def _accepts(self, call_id: str) -> bool:
        return not self._closed and self.reports is not None and call_id not in self._ended

    def spawn(self, coroutine: object) -> None:
        assert asyncio.iscoroutine(coroutine)
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
