"""SSO session tokens (guide §1): opaque, unguessable, stored only as a digest.

A token is never written anywhere. Each token row holds a random 256-bit *seed*; the token
string is ``HMAC-SHA256(secret_key, seed)`` and the row is found again by ``SHA-256(token)``.
So a copy of the database alone yields neither tokens nor a way to compute them, while the
server, which holds the secret key, can hand the same string back for ``"keep": 1`` (guide
§1.1). A fast digest is right for lookup here: the token carries 256 bits of entropy, so there
is nothing to brute-force, unlike a password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from voicemgmt.domain.directory import UserRef

TOKEN_PREFIX = "vm_"  # noqa: S105 (a public prefix, not a secret)
SEED_BYTES = 32
_DERIVATION_LABEL = b"voicemgmt/sso-token/v1\x00"
# A token string is the prefix and 43 characters of unpadded url-safe base64.
TOKEN_LENGTH = len(TOKEN_PREFIX) + 43


def derive_token(secret_key: bytes, seed: bytes) -> str:
    mac = hmac.new(secret_key, _DERIVATION_LABEL + seed, hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def token_fingerprint(token: str) -> str:
    """Names a token in a public event without revealing it (a digest of its digest)."""
    return hashlib.sha256(token_digest(token)).hexdigest()[:32]


def looks_like_token(candidate: str) -> bool:
    """Cheap shape check before any lookup (bounds what a hostile path segment can cost)."""
    return (
        len(candidate) == TOKEN_LENGTH
        and candidate.startswith(TOKEN_PREFIX)
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in candidate[3:])
    )


@dataclass(frozen=True, slots=True)
class SessionToken:
    """What the store keeps of a token: never the token itself."""

    id: int
    user: UserRef
    digest: bytes
    seed: bytes
    ip: str | None
    created_at: datetime
    expires_at: datetime
    revoked: bool = False

    def is_live(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at

    def slid(self, now: datetime, ttl: timedelta) -> SessionToken:
        return replace(self, expires_at=now + ttl)

    def needs_slide(self, now: datetime, ttl: timedelta, granularity: timedelta) -> bool:
        """Sliding expiry without a write on every use: only once per ``granularity``."""
        return self.expires_at - now < ttl - granularity
