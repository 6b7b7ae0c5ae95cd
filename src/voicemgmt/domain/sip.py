"""Operators' SIP phones and the account's rules for dialling out (toll fraud).

A ``SipDevice`` is an operator's phone: it REGISTERs with ``username`` and a password that
is never stored, only its digest HA1 for the platform's realm (MD5 and SHA-256), or it is
reached at a static ``contact`` URI. ``DialOutRules`` (the account's ``dial_out`` setting)
say which numbers operators may call through the trunk: only under the allowed prefixes,
and never premium-rate or international numbers unless the account allows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType

from voicemgmt.domain.errors import InvalidInput

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,63}")
_CONTACT = re.compile(
    r"sips?:([A-Za-z0-9._+-]{1,64}@)?[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?(;transport=(udp|tcp|tls))?"
)
_PREFIX = re.compile(r"[0-9]{1,15}")
MAX_PREFIXES = 100
PREMIUM_TYPES = frozenset(
    {PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.UAN}
)


@dataclass(frozen=True, slots=True)
class SipDevice:
    operator_id: int
    account_id: int
    username: str
    realm: str
    ha1_md5: str | None = None
    ha1_sha256: str | None = None
    contact: str | None = None  # a static contact: the phone does not register
    media_encryption: str = "optional"  # SRTP with the phone: required, optional, off


@dataclass(frozen=True, slots=True)
class SipRegistration:
    """Where a registered phone is reached until ``expires_at`` (kept across restarts)."""

    operator_id: int
    account_id: int
    username: str
    contact: str  # the Contact URI the phone registered
    source_host: str  # where its REGISTER came from: requests to it go there
    source_port: int
    expires_at: datetime


MEDIA_ENCRYPTION = ("required", "optional", "off")


def check_media_encryption(value: object) -> str:
    """A phone's or trunk's SRTP policy (README "SIP over TLS and SRTP")."""
    if not isinstance(value, str) or value not in MEDIA_ENCRYPTION:
        raise InvalidInput(
            "media_encryption must be required, optional or off", field="media_encryption"
        )
    return value


def check_sip_username(username: object) -> str:
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise InvalidInput(
            "sip username must be 3 to 64 letters, digits, '.', '_' or '-'", field="username"
        )
    return username


def check_static_contact(contact: object) -> str:
    """``sip:user@host:port`` with a literal host: where an unregistered phone is rung; over
    TCP or TLS with ``;transport=tcp|tls`` (or ``sips:``: TLS)."""
    if not isinstance(contact, str) or not _CONTACT.fullmatch(contact):
        raise InvalidInput(
            "contact must be a SIP URI like sip:ana@192.0.2.10:5060 (or sips:…, ;transport=tls)",
            field="contact",
        )
    address = contact.partition(";")[0].partition(":")[2]
    port = address.rpartition(":")[2]
    if ":" in address and not 0 < int(port) < 65536:
        raise InvalidInput("contact port must be 1 to 65535", field="contact")
    return contact


@dataclass(frozen=True, slots=True)
class DialOutRules:
    """What operators may dial; by default national, non-premium numbers only."""

    home_country: int = 33
    allowed_prefixes: tuple[str, ...] = ()  # E.164 digit prefixes; empty: any number of home
    allow_international: bool = False
    allow_premium: bool = False
    enabled: bool = True  # False: nothing may be dialled (an unknown account)

    @classmethod
    def from_settings(cls, raw: object) -> DialOutRules:
        """The account's ``dial_out`` setting; ``InvalidInput`` if it is not well formed."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict) or not set(raw) <= {
            "home_country",
            "allowed_prefixes",
            "allow_international",
            "allow_premium",
        }:
            raise InvalidInput(
                "dial_out takes home_country, allowed_prefixes, allow_international, allow_premium",
                field="dial_out",
            )
        home = raw.get("home_country", 33)
        if not isinstance(home, int) or isinstance(home, bool) or not 1 <= home <= 999:
            raise InvalidInput("home_country is a country calling code (1-999)", field="dial_out")
        prefixes = raw.get("allowed_prefixes", [])
        if (
            not isinstance(prefixes, list)
            or len(prefixes) > MAX_PREFIXES
            or not all(isinstance(p, str) and _PREFIX.fullmatch(p) for p in prefixes)
        ):
            raise InvalidInput(
                f"allowed_prefixes is a list of at most {MAX_PREFIXES} digit strings",
                field="dial_out",
            )
        flags: dict[str, bool] = {}
        for name in ("allow_international", "allow_premium"):
            value: Any = raw.get(name, False)
            if not isinstance(value, bool):
                raise InvalidInput(f"{name} is true or false", field="dial_out")
            flags[name] = value
        return cls(home, tuple(prefixes), **flags)

    def refusal(self, number: str) -> str | None:
        """Why ``number`` (E.164 digits) may not be dialled, or None if it may."""
        if not self.enabled:
            return "dial_out_disabled"
        digits = number.removeprefix("+")
        if not digits.isdigit() or not 3 <= len(digits) <= 15:
            return "invalid_number"
        try:
            parsed = phonenumbers.parse("+" + digits)
        except phonenumbers.NumberParseException:
            return "invalid_number"
        if not phonenumbers.is_possible_number(parsed):
            return "invalid_number"
        if parsed.country_code != self.home_country and not self.allow_international:
            return "international_not_allowed"
        if not self.allow_premium and phonenumbers.number_type(parsed) in PREMIUM_TYPES:
            return "premium_not_allowed"
        if self.allowed_prefixes and not any(digits.startswith(p) for p in self.allowed_prefixes):
            return "prefix_not_allowed"
        return None
