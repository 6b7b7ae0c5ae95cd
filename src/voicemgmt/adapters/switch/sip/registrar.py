"""Who may talk to the platform: the trunk allow-list, phones' registrations.

(Who gets no answer at all, scanners and pairs that keep failing, is in ``throttle.py``.)
- ``TrunkPolicy``: INVITEs are taken from the allowed networks (CIDR), or from a peer that
  passes digest authentication as the configured trunk user.
- ``Registrar``: REGISTER with digest authentication against the device's stored HA1; the
  binding (contact, source address, expiry) lives in memory and, written before the 200 OK,
  in the ``SipRegistrationStore`` (the database): ``restore`` reads the unexpired ones back
  at start, so that a restart keeps phones reachable until their expiry; ``purge`` deletes
  the expired ones. Expiries are kept on the monotonic clock in memory, as UTC times in the
  store.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from voicemgmt.adapters.switch.sip.digest import Algorithm, DigestServer, Verdict
from voicemgmt.adapters.switch.sip.message import Request, Response, response_to
from voicemgmt.adapters.switch.sip.transaction import UDP, Address
from voicemgmt.adapters.switch.sip.uri import NameAddr, SipSyntaxError, SipUri, is_digits
from voicemgmt.domain.sip import SipDevice, SipRegistration
from voicemgmt.services.sip_devices import SipDirectory, SipRegistrationStore

MIN_EXPIRES, MAX_EXPIRES, DEFAULT_EXPIRES = 60, 3600, 3600
MAX_BINDINGS = 100_000


class TrunkPolicy:
    def __init__(
        self,
        networks: list[str],
        digest: DigestServer,
        username: str | None = None,
        ha1_md5: str | None = None,
    ) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]
        self.digest = digest
        self.username = username
        self.ha1_md5 = ha1_md5

    def allowed_source(self, source: Address) -> bool:
        try:
            address = ipaddress.ip_address(source[0])
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    @property
    def takes_digest(self) -> bool:
        return self.username is not None and self.ha1_md5 is not None

    def authenticated(self, request: Request, now: float) -> Verdict:
        value = request.headers.get("authorization")
        if value is None or not self.takes_digest:
            return Verdict.WRONG
        credentials = self.digest.credentials(value)
        if credentials is None or credentials.algorithm is not Algorithm.MD5:
            return Verdict.MALFORMED
        stored = self.ha1_md5 if credentials.username == self.username else None
        return self.digest.verify(credentials, request.method, stored, now)


@dataclass(frozen=True, slots=True)
class Binding:
    device: SipDevice
    contact: SipUri
    source: Address
    expires_at: float
    transport: str = UDP  # how the phone registered: requests to it go the same way

    @property
    def destination(self) -> tuple[str, Address]:
        """The transport and address to reach the phone: where it registered from (over TCP
        or TLS, the connection it registered on, RFC 5626); after a restart, when only the
        stored contact is known, a stream phone is reached at its contact."""
        return (self.transport, self.source)


class Registrar:
    def __init__(
        self,
        digest: DigestServer,
        directory: SipDirectory,
        store: SipRegistrationStore | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.digest = digest
        self.directory = directory
        self.store = store
        self.wall = wall
        self._bindings: dict[str, Binding] = {}

    async def restore(self, now: float) -> int:
        """Read back the registrations that outlived a restart; how many were restored."""
        if self.store is None:
            return 0
        wall = self.wall()
        await self.store.purge(wall)
        restored = 0
        for registration in await self.store.current(wall):
            device = await self.directory.device_by_username(registration.username)
            if device is None or device.operator_id != registration.operator_id:
                await self.store.delete(registration.username)  # the device changed since
                continue
            try:
                contact = SipUri.parse(registration.contact)
            except SipSyntaxError:
                await self.store.delete(registration.username)
                continue
            left = (registration.expires_at - wall).total_seconds()
            source = (registration.source_host, registration.source_port)
            if contact.transport != UDP:  # its connection died with the process
                source = contact.address
            binding = Binding(device, contact, source, now + left, contact.transport)
            self._bindings[device.username] = binding
            restored += 1
        return restored

    async def purge(self, now: float) -> None:
        """Forget the expired bindings, here and in the store."""
        for username, binding in list(self._bindings.items()):
            if binding.expires_at <= now:
                del self._bindings[username]
        if self.store is not None:
            await self.store.purge(self.wall())

    async def _unbind(self, username: str) -> None:
        self._bindings.pop(username, None)
        if self.store is not None:
            await self.store.delete(username)

    def registered_source(self, source: Address) -> bool:
        """Is a phone registered from this address (so it is not a stranger)?"""
        return any(binding.source[0] == source[0] for binding in self._bindings.values())

    def binding(self, username: str, now: float) -> Binding | None:
        found = self._bindings.get(username)
        if found is not None and found.expires_at <= now:
            del self._bindings[username]
            return None
        return found

    async def register(
        self, request: Request, source: Address, now: float, transport: str = UDP
    ) -> tuple[Response, bool]:
        """The response to a REGISTER, and whether it counts as a failure (for throttling)."""
        value = request.headers.get("authorization")
        if value is None:
            return self._challenge(request, now), False
        credentials = self.digest.credentials(value)
        if credentials is None:
            return response_to(request, 400, "Bad Authorization"), True
        device = await self.directory.device_by_username(credentials.username)
        stored = None
        if device is not None and device.realm == self.digest.realm:
            stored = (
                device.ha1_sha256 if credentials.algorithm is Algorithm.SHA256 else device.ha1_md5
            )
        verdict = self.digest.verify(credentials, "REGISTER", stored, now)
        if verdict in (Verdict.STALE, Verdict.REPLAYED):  # a replay changes nothing
            return self._challenge(request, now, stale=True), False
        if verdict is not Verdict.OK or device is None:
            return response_to(request, 403, "Forbidden"), True
        if request.to.uri.user != device.username:
            return response_to(request, 403, "Not Your Address"), True
        return await self._bind(request, source, device, now, transport), False

    def _challenge(self, request: Request, now: float, *, stale: bool = False) -> Response:
        return response_to(
            request, 401, headers=[("www-authenticate", self.digest.challenge(now, stale=stale))]
        )

    async def _bind(
        self, request: Request, source: Address, device: SipDevice, now: float, transport: str
    ) -> Response:
        contacts = request.headers.all("contact")
        expires_header = request.headers.get("expires")
        if not contacts:  # a query: tell the current binding
            current = self.binding(device.username, now)
            headers = []
            if current is not None:
                left = int(current.expires_at - now)
                headers.append(("contact", f"<{current.contact}>;expires={left}"))
            return response_to(request, 200, headers=headers)
        if contacts == ["*"]:
            await self._unbind(device.username)
            return response_to(request, 200)
        try:
            contact = NameAddr.parse(contacts[0])
        except SipSyntaxError:
            return response_to(request, 400, "Bad Contact")
        raw = contact.params.get("expires") or expires_header or str(DEFAULT_EXPIRES)
        if not is_digits(raw):
            return response_to(request, 400, "Bad Expires")
        expires = int(raw)
        if expires == 0:
            await self._unbind(device.username)
            return response_to(request, 200)
        if expires < MIN_EXPIRES:
            return response_to(request, 423, headers=[("min-expires", str(MIN_EXPIRES))])
        expires = min(expires, MAX_EXPIRES)
        if len(self._bindings) >= MAX_BINDINGS and device.username not in self._bindings:
            return response_to(request, 503)
        if self.store is not None:  # durable before the phone is told
            registration = SipRegistration(
                device.operator_id,
                device.account_id,
                device.username,
                str(contact.uri),
                source[0],
                source[1],
                self.wall() + timedelta(seconds=expires),
            )
            await self.store.save(registration)
        binding = Binding(device, contact.uri, source, now + expires, transport)
        self._bindings[device.username] = binding
        return response_to(
            request, 200, headers=[("contact", f"<{contact.uri}>;expires={expires}")]
        )
