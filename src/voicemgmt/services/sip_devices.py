"""Operators' SIP phones, and what the SIP driver reads from the directory.

``SipDeviceService`` sets an operator's phone from a username and a password (stored only as
digest HA1 for the platform's realm, MD5 and SHA-256) and/or a static contact, and answers
the SIP driver's questions (``SipDirectory``): which device has this username, which device
rings for this operator, what this account's operators may dial. ``SipRegistrationStore`` is
where the driver keeps phones' registrations across restarts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from voicemgmt.domain.directory import check_password
from voicemgmt.domain.errors import InvalidInput, NoSuchOperator
from voicemgmt.domain.sip import (
    DialOutRules,
    SipDevice,
    SipRegistration,
    check_media_encryption,
    check_sip_username,
    check_static_contact,
)
from voicemgmt.services.ports import Clock, UnitOfWorkFactory
from voicemgmt.services.sip_digest import ha1_pair


class SipDeviceStore(Protocol):
    async def device(self, account_id: int, operator_id: int) -> SipDevice | None: ...
    async def by_username(self, username: str) -> SipDevice | None: ...
    async def save(self, device: SipDevice, now: datetime) -> None: ...
    async def delete(self, account_id: int, operator_id: int) -> bool: ...


class SipRegistrationStore(Protocol):
    """Phones' registrations, kept so that a restart keeps them reachable until they expire."""

    async def save(self, registration: SipRegistration) -> None:
        """Store (or replace) the registration of ``registration.username``."""

    async def delete(self, username: str) -> None: ...

    async def current(self, now: datetime) -> list[SipRegistration]:
        """The registrations not expired at ``now``."""

    async def purge(self, now: datetime) -> int:
        """Delete the registrations expired at ``now``; how many there were."""


class SipDirectory(Protocol):
    """What the SIP driver needs to know about accounts and operators."""

    async def device_by_username(self, username: str) -> SipDevice | None: ...
    async def device_of(self, account_id: int, operator_id: int) -> SipDevice | None: ...
    async def dial_out_rules(self, account_id: int) -> DialOutRules: ...


class SipDeviceService:
    def __init__(
        self, store: SipDeviceStore, uow: UnitOfWorkFactory, clock: Clock, realm: str
    ) -> None:
        self._store = store
        self._uow = uow
        self._clock = clock
        self.realm = realm

    async def set_device(
        self,
        account_id: int,
        operator_id: int,
        *,
        username: str,
        password: str | None = None,
        contact: str | None = None,
        media_encryption: str | None = None,
    ) -> SipDevice:
        """Give the operator a phone that registers (password) and/or a static contact;
        ``media_encryption`` None keeps the phone's current policy (``optional`` for a new
        one)."""
        check_sip_username(username)
        if media_encryption is not None:
            check_media_encryption(media_encryption)
        if contact is not None:
            check_static_contact(contact)
        md5 = sha256 = None
        current = await self._store.device(account_id, operator_id)
        if password is not None:
            check_password(password)
            md5, sha256 = ha1_pair(username, self.realm, password)
        elif current is not None and current.username == username:
            md5, sha256 = current.ha1_md5, current.ha1_sha256  # keep the password
        if md5 is None and contact is None:
            raise InvalidInput("give a password (the phone registers) or a static contact")
        if media_encryption is None:
            media_encryption = current.media_encryption if current is not None else "optional"
        async with self._uow() as uow:
            if await uow.directory.operator(account_id, operator_id) is None:
                raise NoSuchOperator(f"no operator {operator_id}")
        device = SipDevice(
            operator_id, account_id, username, self.realm, md5, sha256, contact, media_encryption
        )
        await self._store.save(device, self._clock.now())
        return device

    async def device(self, account_id: int, operator_id: int) -> SipDevice:
        found = await self._store.device(account_id, operator_id)
        if found is None:
            raise NoSuchOperator(f"operator {operator_id} has no SIP device")
        return found

    async def delete_device(self, account_id: int, operator_id: int) -> None:
        if not await self._store.delete(account_id, operator_id):
            raise NoSuchOperator(f"operator {operator_id} has no SIP device")

    # SipDirectory --------------------------------------------------------------------------

    async def device_by_username(self, username: str) -> SipDevice | None:
        return await self._store.by_username(username)

    async def device_of(self, account_id: int, operator_id: int) -> SipDevice | None:
        return await self._store.device(account_id, operator_id)

    async def dial_out_rules(self, account_id: int) -> DialOutRules:
        async with self._uow() as uow:
            account = await uow.directory.account(account_id)
        if account is None:
            return DialOutRules(enabled=False)
        try:
            return DialOutRules.from_settings(account.settings.get("dial_out"))
        except InvalidInput:
            return DialOutRules()  # unreadable rules: the strictest defaults
