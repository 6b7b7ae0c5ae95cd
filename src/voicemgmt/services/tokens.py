"""The SSO token use cases of guide §1: mint (``POST /vm/token``), revoke, resolve.

The request bodies are the guide's, parsed here strictly so that every mistake an integrator
can make gets its own precise message and nothing is stored.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from voicemgmt.domain.directory import Account, UserRef, UserType
from voicemgmt.domain.errors import (
    InvalidInput,
    NoSuchOperator,
    NoSuchSupervisor,
    NoSuchToken,
    TokenOwnerMismatch,
)
from voicemgmt.domain.tokens import (
    SEED_BYTES,
    SessionToken,
    derive_token,
    looks_like_token,
    token_digest,
)
from voicemgmt.services.directory import DirectoryChange
from voicemgmt.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

MAX_ID = 2**31 - 1
_FIELDS = ("id_agent", "id_admin", "email", "user_type", "ip", "keep")


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """Who a token is asked for, in one of the guide's forms."""

    user_type: UserType
    user_id: int | None = None
    email: str | None = None
    ip: str | None = None
    keep: bool = False


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    user: UserRef
    expires_at: datetime
    kept: bool


@dataclass(frozen=True, slots=True)
class TokenOwner:
    user: UserRef
    expires_at: datetime
    ip: str | None


def _identifier(body: dict[str, Any], name: str) -> int:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a positive integer", field=name)
    if not 1 <= value <= MAX_ID:
        raise InvalidInput(f"{name} must be a positive integer", field=name)
    return value


def _ip(body: dict[str, Any]) -> str | None:
    value = body.get("ip")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("ip must be an IPv4 or IPv6 address as a string", field="ip")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise InvalidInput("ip must be an IPv4 or IPv6 address as a string", field="ip") from exc


def _keep(body: dict[str, Any]) -> bool:
    value = body.get("keep", 0)
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    raise InvalidInput(
        "keep must be 1 (or true) to reuse the live token, 0 otherwise", field="keep"
    )


def parse_token_request(body: object) -> TokenRequest:
    """Read a ``POST /vm/token`` body (guide §1.1 and §1.3)."""
    if not isinstance(body, dict):
        raise InvalidInput('the body must be a JSON object, e.g. {"id_agent": 12}')
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r}; expected some of: {', '.join(_FIELDS)}",
            field=unknown[0],
        )
    given = [name for name in ("id_agent", "id_admin", "email") if name in body]
    if len(given) != 1:
        raise InvalidInput(
            "give exactly one of id_agent, id_admin or email (with user_type)"
            + (f"; got {' and '.join(given)}" if given else ""),
        )
    user_type_raw = body.get("user_type")
    if user_type_raw is not None and user_type_raw not in ("agent", "admin"):
        raise InvalidInput("user_type must be 'agent' or 'admin'", field="user_type")
    ip, keep = _ip(body), _keep(body)

    if given == ["email"]:
        email = body["email"]
        if not isinstance(email, str) or "@" not in email or len(email) > 320:
            raise InvalidInput("email must be an email address as a string", field="email")
        if user_type_raw is None:
            raise InvalidInput(
                "user_type is required with email: 'agent' or 'admin'", field="user_type"
            )
        return TokenRequest(UserType(user_type_raw), email=email.strip(), ip=ip, keep=keep)

    name = given[0]
    user_type = UserType.AGENT if name == "id_agent" else UserType.ADMIN
    if user_type_raw is not None and user_type_raw != user_type.value:
        raise InvalidInput(f"{name} names an {user_type.value}, not an {user_type_raw}")
    return TokenRequest(user_type, user_id=_identifier(body, name), ip=ip, keep=keep)


def parse_owner_hint(body: object) -> tuple[int | None, int | None]:
    """Read the optional ``DELETE /vm/token/<token>`` body: ``{"ip", "id_agent" | "id_admin"}``."""
    if body is None:
        return None, None
    if not isinstance(body, dict):
        raise InvalidInput('the body must be a JSON object, e.g. {"id_agent": 12}')
    unknown = sorted(set(body) - {"ip", "id_agent", "id_admin"})
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r}; expected some of: ip, id_agent, id_admin",
            field=unknown[0],
        )
    _ip(body)
    agent = _identifier(body, "id_agent") if "id_agent" in body else None
    admin = _identifier(body, "id_admin") if "id_admin" in body else None
    return agent, admin


# Tokens seen recently are resolved from memory. A token revoked or a person deleted through
# this process is forgotten at once; another node of a cluster forgets it within this long
# (its pages' event streams close at once all the same: they hear session.revoked).
RESOLVE_CACHE_SECONDS = 30.0
MAX_CACHED_TOKENS = 100_000


class TokenService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        secret_key: bytes,
        ttl: timedelta,
        slide_granularity: timedelta,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._secret = secret_key
        self._ttl = ttl
        self._granularity = slide_granularity
        self._seen: dict[bytes, tuple[SessionToken, float]] = {}  # digest → (row, until)

    async def issue(self, account: Account, request: TokenRequest) -> IssuedToken:
        async with self._uow() as uow:
            user = await self._find_user(uow, account, request)
            return await self._issue(uow, user, ip=request.ip, keep=request.keep)

    async def issue_to(self, user: UserRef, *, ip: str | None = None) -> IssuedToken:
        """A new token for someone already identified (a password login)."""
        async with self._uow() as uow:
            return await self._issue(uow, user, ip=ip, keep=False)

    async def _issue(
        self, uow: UnitOfWork, user: UserRef, *, ip: str | None, keep: bool
    ) -> IssuedToken:
        now = self._clock.now()
        if keep:
            live = await uow.tokens.latest_live(user, now)
            if live is not None:
                token = derive_token(self._secret, live.seed)
                # Tokens minted under an earlier secret key cannot be re-derived; mint anew.
                if secrets.compare_digest(token_digest(token), live.digest):
                    expires_at = now + self._ttl
                    await uow.tokens.set_expiry(live.id, expires_at)
                    await uow.commit()
                    return IssuedToken(token, user, expires_at, kept=True)
        seed = secrets.token_bytes(SEED_BYTES)
        token = derive_token(self._secret, seed)
        stored = await uow.tokens.add(
            user,
            digest=token_digest(token),
            seed=seed,
            ip=ip,
            now=now,
            expires_at=now + self._ttl,
        )
        await uow.commit()
        return IssuedToken(token, user, stored.expires_at, kept=False)

    async def _find_user(self, uow: UnitOfWork, account: Account, request: TokenRequest) -> UserRef:
        found = await uow.directory.person_id(
            account.id, request.user_type, user_id=request.user_id, email=request.email
        )
        if found is None:
            if request.user_type is UserType.AGENT:
                raise NoSuchOperator("no such operator in this account")
            raise NoSuchSupervisor("no such supervisor in this account")
        return UserRef(account.id, request.user_type, found)

    async def _live(self, uow: UnitOfWork, token: str, now: datetime) -> SessionToken:
        stored = (
            await uow.tokens.by_digest(token_digest(token)) if looks_like_token(token) else None
        )
        if stored is None or not stored.is_live(now):
            raise NoSuchToken("no such token, or it has expired or been deleted")
        return stored

    async def revoke(
        self, account: Account, token: str, hint: tuple[int | None, int | None] = (None, None)
    ) -> UserRef:
        """Invalidate ``token`` of ``account``; another account's token is 'no such token'."""
        now = self._clock.now()
        async with self._uow() as uow:
            stored = await self._live(uow, token, now)
            if stored.user.account_id != account.id:
                raise NoSuchToken("no such token, or it has expired or been deleted")
            _check_owner(stored.user, hint)
            await uow.tokens.revoke(stored.id)
            await uow.commit()
        self._forget(token)
        return stored.user

    async def revoke_own(self, token: str) -> UserRef:
        """Invalidate ``token`` at its holder's request (a page's logout button)."""
        now = self._clock.now()
        async with self._uow() as uow:
            stored = await self._live(uow, token, now)
            await uow.tokens.revoke(stored.id)
            await uow.commit()
        self._forget(token)
        return stored.user

    async def has_live_token(self, user: UserRef) -> bool:
        async with self._uow() as uow:
            return await uow.tokens.latest_live(user, self._clock.now()) is not None

    async def purge_expired(self) -> int:
        """Forget tokens that expired more than a day ago (kept that long for support)."""
        async with self._uow() as uow:
            purged = await uow.tokens.purge_expired(self._clock.now() - timedelta(days=1))
            await uow.commit()
        return purged

    async def describe(self, account: Account, token: str) -> TokenOwner:
        """What the account's integrator may know of one of its tokens (no sliding)."""
        async with self._uow() as uow:
            stored = await self._live(uow, token, self._clock.now())
        if stored.user.account_id != account.id:
            raise NoSuchToken("no such token, or it has expired or been deleted")
        return TokenOwner(stored.user, stored.expires_at, stored.ip)

    async def resolve(self, token: str) -> TokenOwner:
        """Who holds ``token``; each use slides its expiry (written at most once a minute)."""
        now = self._clock.now()
        if looks_like_token(token):
            digest = token_digest(token)
            seen = self._seen.get(digest)
            if seen is not None and seen[1] > time.monotonic():
                stored = seen[0]
                if stored.is_live(now) and not stored.needs_slide(
                    now, self._ttl, self._granularity
                ):
                    return TokenOwner(stored.user, stored.expires_at, stored.ip)
        async with self._uow() as uow:
            stored = await self._live(uow, token, now)
            if stored.needs_slide(now, self._ttl, self._granularity):
                stored = stored.slid(now, self._ttl)
                await uow.tokens.set_expiry(stored.id, stored.expires_at)
                await uow.commit()
        self._remember(stored)
        return TokenOwner(stored.user, stored.expires_at, stored.ip)

    def _remember(self, stored: SessionToken) -> None:
        if len(self._seen) >= MAX_CACHED_TOKENS:
            self._seen.clear()  # rare, and only costs lookups
        self._seen[stored.digest] = (stored, time.monotonic() + RESOLVE_CACHE_SECONDS)

    def _forget(self, token: str) -> None:
        self._seen.pop(token_digest(token), None)

    def _forget_where(self, matches: Callable[[UserRef], bool]) -> None:
        for digest, (stored, _until) in list(self._seen.items()):
            if matches(stored.user):
                del self._seen[digest]

    async def directory_changed(self, change: DirectoryChange) -> None:
        """People deleted (their tokens revoked with them) are forgotten at once."""
        if not change.deleted:
            return
        if change.kind == "account":
            self._forget_where(lambda user: user.account_id == change.account_id)
        elif change.kind in ("operator", "supervisor"):
            kind = UserType.AGENT if change.kind == "operator" else UserType.ADMIN
            self._forget_where(
                lambda user: (
                    user.account_id == change.account_id
                    and user.user_type is kind
                    and user.user_id == change.id
                )
            )


def _check_owner(user: UserRef, hint: tuple[int | None, int | None]) -> None:
    """The guide's DELETE body names the token's owner; it must not name someone else.

    Guide §1.4 (supervisor logout) shows ``id_agent`` in the body, copied from §1.2: an
    integrator following it literally sends the supervisor's id under ``id_agent``, which is
    accepted for a supervisor's token.
    """
    agent, admin = hint
    if admin is not None and (user.user_type is not UserType.ADMIN or user.user_id != admin):
        raise TokenOwnerMismatch("this token does not belong to that id_admin")
    if agent is not None and user.user_id != agent:
        raise TokenOwnerMismatch("this token does not belong to that id_agent")
