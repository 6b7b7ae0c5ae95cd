"""HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 2617): both sides.

Server side: ``DigestServer.challenge`` makes a ``WWW-Authenticate`` value whose nonce is
self-validating (a timestamp and an HMAC of it under the server's key), so that no state is
kept per challenge; ``DigestServer.verify`` checks an ``Authorization`` value against the
stored HA1 (``H(username:realm:password)``, MD5 or SHA-256), never a clear password, with
constant-time comparisons. Client side: ``authorization`` answers a challenge.

Replays: once a nonce has been used, it is remembered with the highest nonce-count (``nc``)
accepted with it (RFC 7616 §3.4). A request must bring a higher ``nc`` than any before it on
that nonce (without ``qop``, which has no ``nc``, a nonce serves once): a captured request sent
again is ``REPLAYED``, answered like a stale nonce (a fresh challenge, ``stale=true``), and
changes nothing. Used nonces are forgotten when they expire; past ``MAX_TRACKED`` of them, the
oldest are dropped and every nonce issued before the dropped ones counts as expired, so that
forgetting never lets a replay through.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

NONCE_LIFETIME = 300.0
MAX_TRACKED = 100_000  # used nonces remembered at once
MAX_FIELD = 512
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')


class Algorithm(StrEnum):
    MD5 = "MD5"
    SHA256 = "SHA-256"


def _hash(algorithm: Algorithm, text: str) -> str:
    data = text.encode("utf-8")
    if algorithm is Algorithm.SHA256:
        return hashlib.sha256(data).hexdigest()
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def ha1(algorithm: Algorithm, username: str, realm: str, password: str) -> str:
    """What is stored for a SIP device: ``H(username:realm:password)``."""
    return _hash(algorithm, f"{username}:{realm}:{password}")


def parse_challenge(value: str) -> dict[str, str]:
    """``Digest a="b", c=d`` → ``{"a": "b", "c": "d"}``; ``ValueError`` if it is not one."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest" or len(rest) > 4 * MAX_FIELD:
        raise ValueError("not a Digest value")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None or match.end() == position:
            raise ValueError("malformed Digest parameters")
        name, raw = match.group(1).lower(), match.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if len(raw) > MAX_FIELD or name in params:
            raise ValueError("oversized or repeated Digest parameter")
        params[name] = raw
        position = match.end()
    return params


def _response(
    algorithm: Algorithm,
    ha1_value: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str,
    cnonce: str,
) -> str:
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop:
        return _hash(algorithm, f"{ha1_value}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _hash(algorithm, f"{ha1_value}:{nonce}:{ha2}")


class Verdict(StrEnum):
    OK = "ok"
    STALE = "stale"  # right password, expired nonce: challenge again with stale=true
    WRONG = "wrong"  # wrong credentials, or a nonce we never issued
    REPLAYED = "replayed"  # right password, but this nonce and nc were used already
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What an ``Authorization`` header claims, once parsed."""

    username: str
    realm: str
    algorithm: Algorithm
    params: dict[str, str]


class DigestServer:
    def __init__(
        self,
        realm: str,
        key: bytes,
        lifetime: float = NONCE_LIFETIME,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        self.realm = realm
        self._key = key
        self.lifetime = lifetime
        self.max_tracked = max_tracked
        # used nonce → (when it was issued, highest nc accepted); in the order first used
        self._used: dict[str, tuple[float, int]] = {}
        self._issued_floor = 0.0  # nonces issued before this count as expired

    def nonce(self, now: float) -> str:
        stamp = f"{int(now * 1000):x}"
        salt = secrets.token_hex(4)
        return f"{stamp}.{salt}.{self._sign(stamp, salt)}"

    def _sign(self, stamp: str, salt: str) -> str:
        message = f"{stamp}.{salt}.{self.realm}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def challenge(
        self, now: float, *, stale: bool = False, algorithm: Algorithm = Algorithm.MD5
    ) -> str:
        value = (
            f'Digest realm="{self.realm}", nonce="{self.nonce(now)}", '
            f'algorithm={algorithm.value}, qop="auth"'
        )
        return value + (", stale=true" if stale else "")

    def credentials(self, authorization: str) -> Credentials | None:
        """The claimed identity of an ``Authorization`` value; None if it is unreadable."""
        try:
            params = parse_challenge(authorization)
            algorithm = Algorithm(
                params.get("algorithm", "MD5").upper().replace("SHA256", "SHA-256")
            )
        except ValueError:
            return None
        for name in ("username", "realm", "nonce", "uri", "response"):
            if not params.get(name):
                return None
        return Credentials(params["username"], params["realm"], algorithm, params)

    def verify(
        self, credentials: Credentials, method: str, stored_ha1: str | None, now: float
    ) -> Verdict:
        """Check a response against the stored HA1 (None: unknown user, checked all the same)."""
        params = credentials.params
        qop = params.get("qop")
        if qop not in (None, "auth") or (qop and not (params.get("nc") and params.get("cnonce"))):
            return Verdict.MALFORMED
        nc_text = params.get("nc", "")
        if qop and not re.fullmatch(r"[0-9a-fA-F]{8}", nc_text):
            return Verdict.MALFORMED
        if credentials.realm != self.realm:
            return Verdict.WRONG
        fresh = self._nonce_state(params["nonce"], now)
        # Compute even for an unknown user or a foreign nonce: no timing difference.
        expected = _response(
            credentials.algorithm,
            stored_ha1 or "0" * 64,
            method,
            params["uri"],
            params["nonce"],
            qop,
            params.get("nc", ""),
            params.get("cnonce", ""),
        )
        matches = hmac.compare_digest(expected.encode(), params["response"].lower().encode())
        if not matches or stored_ha1 is None or fresh is None:
            return Verdict.WRONG
        if not fresh:
            return Verdict.STALE
        return self._use(params["nonce"], int(nc_text, 16) if qop else 1, now)

    def _use(self, nonce: str, nc: int, now: float) -> Verdict:
        """Record a verified use of ``nonce`` with ``nc``; REPLAYED if it is not a new one."""
        self._forget_expired(now)
        seen = self._used.get(nonce)
        if seen is not None and nc <= seen[1]:
            return Verdict.REPLAYED
        self._used[nonce] = (_issued(nonce), nc)
        while len(self._used) > self.max_tracked:
            oldest = next(iter(self._used))
            self._issued_floor = max(self._issued_floor, self._used.pop(oldest)[0] + 0.001)
        return Verdict.OK

    def _forget_expired(self, now: float) -> None:
        for nonce, (issued, _nc) in list(itertools.islice(self._used.items(), 64)):
            if now - issued <= self.lifetime:
                break
            del self._used[nonce]

    def _nonce_state(self, nonce: str, now: float) -> bool | None:
        """True: ours and fresh; False: ours and expired; None: not ours."""
        parts = nonce.split(".")
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{1,16}", parts[0]):
            return None
        stamp, salt, signature = parts
        if not hmac.compare_digest(self._sign(stamp, salt).encode(), signature.encode()):
            return None
        issued = int(stamp, 16) / 1000
        return issued <= now + 1 and now - issued <= self.lifetime and issued >= self._issued_floor


def _issued(nonce: str) -> float:
    """When one of our (already verified) nonces was issued."""
    return int(nonce.split(".", 1)[0], 16) / 1000


def authorization(
    challenge: str,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The ``Authorization`` value answering a ``WWW-Authenticate`` challenge (client side)."""
    params = parse_challenge(challenge)
    algorithm = Algorithm(params.get("algorithm", "MD5").upper())
    realm, nonce = params["realm"], params["nonce"]
    qop_offered = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in qop_offered else None
    cnonce = cnonce or secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    value = _response(
        algorithm,
        ha1(algorithm, username, realm, password),
        method,
        uri,
        nonce,
        qop,
        nc_text,
        cnonce,
    )
    out = (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{value}", algorithm={algorithm.value}'
    )
    if qop:
        out += f', qop={qop}, nc={nc_text}, cnonce="{cnonce}"'
    if "opaque" in params:
        out += f', opaque="{params["opaque"]}"'
    return out
