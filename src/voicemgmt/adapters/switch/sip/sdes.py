"""SDES (RFC 4568): SRTP keys in the SDP's ``a=crypto`` lines, read and written without I/O.

``a=crypto:<tag> <suite> inline:<base64 key||salt>[|lifetime][|MKI:length] [params]``. We
take the suites every SRTP stack has, ``AES_CM_128_HMAC_SHA1_80`` (preferred) and ``_32``,
with one key, no MKI and no session parameters; any other line is *unusable* and skipped,
never an error for the whole description: a peer may offer several, one of which we take.
A key of the wrong length, bad base64, an unknown suite or a tag out of range is unusable.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")  # preferred first
KEY_LENGTH = 30  # 16 bytes of master key and 14 of master salt (RFC 4568 §6.2)
MAX_TAG = 999_999_999
_LIFETIME = re.compile(r"(2\^)?[0-9]{1,20}")


@dataclass(frozen=True, slots=True)
class Crypto:
    tag: int
    suite: str
    key: bytes  # master key and salt, KEY_LENGTH bytes

    def render(self) -> str:
        """The attribute's value (after ``a=crypto:``)."""
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


def parse_crypto(value: str) -> Crypto | None:
    """One ``a=crypto`` value; None if we cannot use it (see the module's rules)."""
    fields = value.split()
    if len(fields) != 3:  # session parameters (UNENCRYPTED_SRTP, KDR…) are not taken
        return None
    tag, suite, key_params = fields
    if not (tag.isascii() and tag.isdigit() and len(tag) <= 9) or suite not in SUITES:
        return None
    if ";" in key_params or not key_params.startswith("inline:"):
        return None  # several keys, or another key method
    key_info, *rest = key_params[len("inline:") :].split("|")
    if len(rest) > 1 or (rest and not _LIFETIME.fullmatch(rest[0])):
        return None  # an MKI, or something that is not a lifetime
    try:
        key = base64.b64decode(key_info, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(key) != KEY_LENGTH:
        return None
    return Crypto(int(tag), suite, key)


def choose(offered: tuple[Crypto, ...]) -> Crypto | None:
    """The offered line we answer: the first of our preferred suite, else of the other."""
    for suite in SUITES:
        for crypto in offered:
            if crypto.suite == suite:
                return crypto
    return None


def new_key() -> bytes:
    return secrets.token_bytes(KEY_LENGTH)


def our_crypto(theirs: Crypto | None = None) -> Crypto:
    """Our line: in an answer, the tag and suite of the offer's chosen line with a fresh key
    (§5.1.2); in an offer, tag 1 and the preferred suite."""
    if theirs is not None:
        return Crypto(theirs.tag, theirs.suite, new_key())
    return Crypto(1, SUITES[0], new_key())
