"""One platform call as the SIP driver holds it, its options, and how SIP statuses read.

A ``SipCall`` has a remote leg (the caller, or the customer of a click-to-call), operator legs
(phones ringing or connected) and an ordered queue of reports for the routing service,
delivered by one task at a time so that reports never overtake each other.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from voicemgmt.adapters.switch.sip.legs import InboundLeg, Leg, OutboundLeg
from voicemgmt.adapters.switch.sip.stream import StreamLimits
from voicemgmt.adapters.switch.sip.transaction import UDP, Address
from voicemgmt.observability.logs import call_context

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SipOptions:
    """The driver's configuration (built from ``Settings`` in ``bootstrap``)."""

    listen: Address = ("127.0.0.1", 5060)
    public_host: str | None = None  # what goes in Contact, Via and SDP; default: listen host
    realm: str = "voicemgmt"
    digest_key: bytes = b""
    trunk_networks: tuple[str, ...] = ()
    trunk_username: str | None = None
    trunk_ha1: str | None = None
    trunk_outbound: Address | None = None  # where click-to-calls and forwards go
    max_calls: int = 2000
    media_timeout: float = 60.0  # seconds without RTP from one side of an answered call; 0: off
    trunk_transport: str = UDP  # how click-to-calls and forwards reach the trunk
    trunk_media_encryption: str = "optional"  # SRTP with the trunk: required, optional, off
    tcp_port: int | None = None  # SIP over TCP, on the listen host
    tls_port: int | None = None  # SIP over TLS, with ``tls_server``
    tls_server: ssl.SSLContext | None = None  # our certificate
    tls_client: ssl.SSLContext | None = None  # how the peers we connect to are verified
    stream_limits: StreamLimits = field(default_factory=StreamLimits)


def failure_reason(status: int) -> str:
    """A SIP failure status as the routing core's reasons say it."""
    if status in (486, 600):
        return "busy"
    if status == 603:
        return "declined"
    if status in (408, 480, 487):
        return "no_answer"
    if status in (404, 484, 604):
        return "invalid_number"
    if status == 403:
        return "forbidden"
    return "failed"


def hangup_status(reason: str) -> int:
    """What an unanswered caller hears when the platform ends the call."""
    return {"unknown_number": 404, "busy": 486, "forbidden": 403}.get(reason, 480)


@dataclass(eq=False)
class SipCall:
    id: str
    direction: str  # "in": a caller on the trunk; "out": a click-to-call
    account_id: int | None = None
    caller: str = ""
    remote: InboundLeg | OutboundLeg | None = None
    operators: dict[int, OutboundLeg] = field(default_factory=dict)
    bridged_to: int | None = None  # the operator the routing core bridged
    held: bool = False
    dialled: bool = False  # a click-to-call whose customer was dialled
    forwarded: bool = False  # handed to an outside number: the platform's part is over
    prompt: int | None = None  # token of the prompt playing
    ended: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    reports: deque[tuple[str, Callable[[], Awaitable[None]]]] = field(default_factory=deque)
    reporter: asyncio.Task[None] | None = None

    def legs(self) -> list[Leg]:
        found: list[Leg] = list(self.operators.values())
        if self.remote is not None:
            found.insert(0, self.remote)
        return found

    def watched_media(self) -> list[Leg]:
        """The legs whose RTP must keep coming: the remote party once answered, and the
        bridged operator's phone once up; none while on hold."""
        if self.ended or self.held:
            return []
        found: list[Leg] = [self.remote] if self.remote is not None and self.remote.up else []
        bridged = self.operators.get(self.bridged_to) if self.bridged_to is not None else None
        if bridged is not None and bridged.up:
            found.append(bridged)
        return found

    def operator_of(self, leg: Leg) -> int | None:
        for operator_id, candidate in self.operators.items():
            if candidate is leg:
                return operator_id
        return None

    def report(self, name: str, deliver: Callable[[], Awaitable[None]]) -> None:
        """Queue a report; reports of one call are delivered in order, one at a time."""
        self.reports.append((name, deliver))
        if self.reporter is None:
            self.reporter = asyncio.get_running_loop().create_task(
                self._deliver(), context=call_context(self.id)
            )

    async def _deliver(self) -> None:
        try:
            while self.reports:
                name, deliver = self.reports.popleft()
                try:
                    await deliver()
                except Exception:
                    log.exception("the platform refused %s for call %s", name, self.id)
        finally:
            self.reporter = None
