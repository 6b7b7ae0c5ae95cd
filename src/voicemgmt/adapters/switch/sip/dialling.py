"""The calls the SIP driver places: an operator's phone rung, a customer or overflow number
dialled through the trunk.

Each outbound leg goes over the peer's transport (a registered phone: where and how it
registered; a static contact: its URI's transport; the trunk: ``VM_SIP_TRUNK_TRANSPORT``) and
offers media under the peer's encryption policy (``media_policy.our_offer``): a phone whose
policy cannot be met (SRTP required, not reached over TLS) is not rung, and says so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

from voicemgmt.adapters.switch.sip import sdp
from voicemgmt.adapters.switch.sip.calls import SipCall, SipOptions
from voicemgmt.adapters.switch.sip.legs import Leg, LegEvents, OutboundLeg, SipContext
from voicemgmt.adapters.switch.sip.media.base import MediaBackend
from voicemgmt.adapters.switch.sip.media_policy import Capabilities, MediaRefused, our_offer
from voicemgmt.adapters.switch.sip.registrar import Registrar
from voicemgmt.adapters.switch.sip.transaction import TLS, UDP
from voicemgmt.adapters.switch.sip.uri import NameAddr, SipUri
from voicemgmt.domain.sip import SipDevice
from voicemgmt.services.sip_devices import SipDirectory
from voicemgmt.services.switch import SwitchReports

log = logging.getLogger(__name__)
DEVICE_CACHE_SECONDS = 5.0


class Dialling:
    options: SipOptions
    media: MediaBackend
    registrar: Registrar
    directory: SipDirectory
    reports: SwitchReports | None
    clock: Callable[[], float]
    _devices: dict[tuple[int, int], tuple[float, SipDevice | None]]
    _owners: dict[Leg, SipCall]

    @property
    def host(self) -> str:
        raise NotImplementedError

    async def dial_refusal(self, account_id: int, number: str) -> str | None:
        raise NotImplementedError

    def end_call(self, call: SipCall, status: int) -> None:
        raise NotImplementedError

    def _leg_parties(self) -> tuple[SipContext, LegEvents]:
        """The driver, which is both (this part of it is never used alone)."""
        return cast(SipContext, self), cast(LegEvents, self)

    async def _device(self, account_id: int, operator_id: int) -> SipDevice | None:
        now = self.clock()
        cached = self._devices.get((account_id, operator_id))
        if cached is not None and cached[0] > now:
            return cached[1]
        device = await self.directory.device_of(account_id, operator_id)
        if len(self._devices) > 10_000:
            self._devices.clear()
        self._devices[(account_id, operator_id)] = (now + DEVICE_CACHE_SECONDS, device)
        return device

    async def _ring(self, call: SipCall, operator_id: int) -> None:
        if call.account_id is None or operator_id in call.operators:
            return
        device = await self._device(call.account_id, operator_id)
        if device is None:
            return  # the operator answers in the banner only
        binding = self.registrar.binding(device.username, self.clock())
        if binding is not None:
            target = binding.contact
            transport, destination = binding.destination
        elif device.contact is not None:
            target = SipUri.parse(device.contact)
            transport, destination = target.transport, target.address
        else:
            log.info("operator %s's phone is not registered", operator_id)
            return
        can = Capabilities(transport == TLS, self.media.sdes_offers, self.media.dtls)
        try:
            keys = our_offer(device.media_encryption, can)
        except MediaRefused as exc:
            log.warning("not ringing operator %s's phone: %s", operator_id, exc.reason)
            return
        media = await self.media.open_leg(call.id, f"op{operator_id}")
        remote = call.remote
        first = remote.remote_sdp.codec if remote is not None and remote.remote_sdp else sdp.PCMU
        codecs = (first, sdp.PCMA if first == sdp.PCMU else sdp.PCMU)
        caller = call.caller or "anonymous"
        context, owner = self._leg_parties()
        leg = OutboundLeg(
            context,
            owner,
            media,
            "operator",
            str(operator_id),
            target=target,
            destination=destination,
            from_=NameAddr(SipUri("sip", caller, self.host), caller),
            to=NameAddr(target),
            codecs=codecs,
            transport=transport,
            keys=keys,
            policy=device.media_encryption,
            can=can,
        )
        call.operators[operator_id] = leg
        self._owners[leg] = call
        leg.start()

    async def _dial(
        self, call: SipCall, number: str, caller_id: str, *, forward: bool = False
    ) -> None:
        """A customer through the trunk (click-to-call), or an overflow number (forward)."""
        reports = self.reports
        assert reports is not None
        assert call.account_id is not None
        trunk = self.options.trunk_outbound
        digits = number.removeprefix("+")
        # asked before the phone rang too; asked again: the rules may have changed since
        refusal = await self.dial_refusal(call.account_id, digits)
        if refusal is not None:
            log.warning("call %s: not dialling %s (%s)", call.id, digits, refusal)
            if forward:
                self.end_call(call, 480)
            else:
                call.report("customer_failed", lambda: reports.customer_failed(call.id, refusal))
            return
        assert trunk is not None
        policy, transport = self.options.trunk_media_encryption, self.options.trunk_transport
        can = Capabilities(transport == TLS, self.media.sdes_offers, self.media.dtls)
        try:
            keys = our_offer(policy, can)
        except MediaRefused as exc:  # the settings prevent it; a backend may not do SRTP
            log.warning("call %s: not dialling %s: %s", call.id, digits, exc.reason)
            if forward:
                self.end_call(call, 480)
            else:
                call.report("customer_failed", lambda: reports.customer_failed(call.id, "failed"))
            return
        media = await self.media.open_leg(call.id, "customer")
        host, port = trunk
        target = SipUri("sip", digits, host, port)
        if transport != UDP:
            target = target.with_params(transport=transport.lower())
        shown = caller_id.removeprefix("+") or "anonymous"
        context, owner = self._leg_parties()
        leg = OutboundLeg(
            context,
            owner,
            media,
            "forward" if forward else "customer",
            "forward" if forward else "remote",
            target=target,
            destination=trunk,
            from_=NameAddr(SipUri("sip", shown, self.host)),
            to=NameAddr(target),
            codecs=(sdp.PCMU, sdp.PCMA),
            transport=transport,
            keys=keys,
            policy=policy,
            can=can,
        )
        self._owners[leg] = call
        if forward:
            call.operators[-1] = leg
        else:
            call.remote = leg
        leg.start()
