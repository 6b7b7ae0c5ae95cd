"""Who is calling the account API: HTTP Basic credentials checked fast, safely and throttled.

Why a verification cache, and why it stays safe
-----------------------------------------------
Argon2 is deliberately slow (tens of milliseconds and 64 MiB per check); an integrator's CRM
calls ``POST /vm/token`` at every operator login with the same API credentials, so running
argon2 on every request would cap the token API at a few dozen requests per second per core.

After one successful argon2 verification we remember, in this process's memory only, an
HMAC-SHA256 of ``login NUL password`` under a random key drawn at start-up, next to the stored
argon2 hash it was checked against, for ``credential_cache_seconds``. A later request with the
same pair is accepted when its HMAC matches (``hmac.compare_digest``, constant time) *and* the
account's stored hash is still the same one, so a password change takes effect at once.

- Nothing new reaches disk or the database; the stored credential stays argon2 only.
- Failed attempts are never cached: a wrong password always pays full argon2 and counts
  towards the throttle, so the cache gives an attacker no faster oracle.
- The HMAC key never leaves the process, so the cache entries cannot be checked offline
  even by someone who reads them; entries expire and the cache is bounded in size.

Argon2 itself is kept in check: concurrent requests with the same login and password share
one verification (when the cache is empty at start-up or an entry expires under load, one
check runs, not fifty), and at most ``max_concurrent_argon2`` checks run at once, so a flood
of wrong passwords queues instead of taking 64 MiB per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from voicemgmt.domain.directory import Account
from voicemgmt.domain.errors import AuthenticationFailed, TooManyAttempts
from voicemgmt.services.directory import DirectoryChange
from voicemgmt.services.ports import Clock, PasswordHasher, UnitOfWorkFactory

MAX_LOGIN_LENGTH = 64
MAX_PASSWORD_LENGTH = 256
# An account's row is read again after this long; a change made through this process (the
# admin API) is seen at once, one made by another process (the CLI) within this delay.
ACCOUNT_CACHE_SECONDS = 5.0
MAX_CACHED_ACCOUNTS = 10_000


@dataclass(slots=True)
class _Verified:
    mac: bytes
    stored_hash: str
    expires_at: datetime


class VerifiedCredentialCache:
    """Bounded, expiring memory of login/password pairs that argon2 already accepted."""

    def __init__(self, ttl: timedelta, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[str, _Verified] = OrderedDict()

    def fingerprint(self, login: str, password: str) -> bytes:
        """A keyed digest of the pair: equal for equal pairs, useless outside this process."""
        return self._mac(login, password)

    def _mac(self, login: str, password: str) -> bytes:
        message = login.encode("utf-8", "surrogatepass") + b"\x00"
        message += password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def accepts(self, login: str, password: str, stored_hash: str, now: datetime) -> bool:
        entry = self._entries.get(login)
        if entry is None or entry.expires_at <= now or entry.stored_hash != stored_hash:
            return False
        return hmac.compare_digest(entry.mac, self._mac(login, password))

    def remember(self, login: str, password: str, stored_hash: str, now: datetime) -> None:
        if self._ttl <= timedelta(0):
            return
        self._entries[login] = _Verified(self._mac(login, password), stored_hash, now + self._ttl)
        self._entries.move_to_end(login)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class LoginThrottle:
    """Failed logins counted in moving windows; a login attempt over a limit is refused
    (``TooManyAttempts``, 429 with ``Retry-After``) without checking the password.

    - **per (address, login)**, ``per_client_login`` (default 5 a minute): one address stops
      guessing one login. The right password is refused too until the window frees a slot,
      i.e. for at most the window (a minute), and a success clears that pair's count.
    - **per login, from any address**, ``per_login`` (10 a minute): one login guessed from
      many addresses.
    - **per address, any login**, ``per_client`` (30 a minute): one address trying many
      logins.

    The two wide limits never stop a pair that succeeded recently (``known_seconds``, a day):
    a CRM server shared by several tenants keeps logging each of them in while one of them (or
    someone else on that address) fails, and a login guessed from elsewhere stays usable from
    the addresses it is used from. Only failures count; memory is bounded and per process.
    """

    def __init__(
        self,
        per_client_login: str,
        per_client: str,
        per_login: str = "10/minute",
        *,
        known_seconds: float = 24 * 3600,
        max_known: int = 100_000,
    ) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_pair: RateLimitItem = parse(per_client_login)
        self._per_login: RateLimitItem = parse(per_login)
        self._per_client: RateLimitItem = parse(per_client)
        self._known_seconds = known_seconds
        self._max_known = max_known
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()  # → until (monotonic)

    def _check(self, item: RateLimitItem, message: str, *keys: str) -> None:
        if not self._limiter.test(item, *keys):
            reset_at = self._limiter.get_window_stats(item, *keys).reset_time
            retry = max(1, int(reset_at - time.time()) + 1)
            raise TooManyAttempts(message, retry_after=retry)

    def _is_known(self, client: str, login: str) -> bool:
        until = self._known.get((client, login))
        return until is not None and until > time.monotonic()

    def check(self, client: str, login: str) -> None:
        """Refuse if this attempt is over a limit; the caller then checks no password."""
        self._check(
            self._per_pair,
            "too many failed logins for this login from this client; try again later",
            "pair",
            client,
            login,
        )
        if self._is_known(client, login):
            return
        self._check(
            self._per_login,
            "too many failed logins for this login; try again later",
            "login",
            login,
        )
        self._check(
            self._per_client,
            "too many failed logins from this client; try again later",
            "client",
            client,
        )

    def record_failure(self, client: str, login: str) -> None:
        self._limiter.hit(self._per_pair, "pair", client, login)
        self._limiter.hit(self._per_login, "login", login)
        self._limiter.hit(self._per_client, "client", client)

    def record_success(self, client: str, login: str) -> None:
        """The pair logged in: its own failures are forgiven, the wide limits spare it."""
        self._limiter.clear(self._per_pair, "pair", client, login)
        key = (client, login)
        until = self._known.get(key)
        now = time.monotonic()
        # refreshed at most once a minute: this runs on every request of a busy CRM
        if until is not None and until - now > self._known_seconds - 60:
            return
        self._known[key] = now + self._known_seconds
        self._known.move_to_end(key)
        while len(self._known) > self._max_known:
            self._known.popitem(last=False)


class PasswordChecks:
    """Argon2 verifications kept in check: at most ``max_concurrent`` at once (a flood of
    wrong passwords queues instead of taking 64 MiB each), and a decoy hash for names that do
    not exist, so that they cost the same time as a wrong password."""

    def __init__(self, hasher: PasswordHasher, max_concurrent: int = 2) -> None:
        self._hasher = hasher
        self._slots = asyncio.Semaphore(max_concurrent)
        self._decoy_hash: str | None = None

    async def verify(self, stored_hash: str, password: str) -> bool:
        async with self._slots:
            return await self._hasher.verify(stored_hash, password)

    async def pay_for_unknown(self, password: str) -> None:
        """Spend a verification on nothing, as a known name with a wrong password would."""
        if self._decoy_hash is None:
            self._decoy_hash = await self._hasher.hash(secrets.token_urlsafe(16))
        await self.verify(self._decoy_hash, password[:MAX_PASSWORD_LENGTH])


class ApiAuthenticator:
    """Turns Basic credentials into the account they open, or refuses."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        clock: Clock,
        cache: VerifiedCredentialCache,
        throttle: LoginThrottle,
        max_concurrent_argon2: int = 2,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._checks = PasswordChecks(hasher, max_concurrent_argon2)
        self._clock = clock
        self._cache = cache
        self._throttle = throttle
        self._in_flight: dict[tuple[str, str, bytes], asyncio.Future[bool]] = {}
        self._accounts: dict[str, tuple[Account, float]] = {}  # login → (row, until)

    async def authenticate(self, login: str, password: str, *, client: str) -> Account:
        self._throttle.check(client, login)
        now = self._clock.now()
        account = None
        if len(login) <= MAX_LOGIN_LENGTH and len(password) <= MAX_PASSWORD_LENGTH:
            account = await self._account(login)
        if account is not None and self._cache.accepts(login, password, account.password_hash, now):
            self._throttle.record_success(client, login)
            return account
        if account is not None and await self._verify_once(login, password, account.password_hash):
            self._cache.remember(login, password, account.password_hash, now)
            self._throttle.record_success(client, login)
            return account
        if account is None:  # as slow as a wrong password: which logins exist stays unknown
            await self._checks.pay_for_unknown(password)
        self._throttle.record_failure(client, login)
        raise AuthenticationFailed("wrong API login or password")

    async def _account(self, login: str) -> Account | None:
        """The account of ``login``, read at most every few seconds (unknown logins always)."""
        cached = self._accounts.get(login)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        async with self._uow() as uow:
            account = await uow.directory.account_by_login(login)
        if account is None:
            self._accounts.pop(login, None)
            return None
        if len(self._accounts) >= MAX_CACHED_ACCOUNTS:
            self._accounts.clear()
        self._accounts[login] = (account, time.monotonic() + ACCOUNT_CACHE_SECONDS)
        return account

    async def directory_changed(self, change: DirectoryChange) -> None:
        """An account changed in this process (a new password, say): read it again."""
        if change.kind == "account" and change.login is not None:
            self._accounts.pop(change.login, None)

    async def _verify_once(self, login: str, password: str, stored_hash: str) -> bool:
        """One argon2 check per distinct (login, password, hash) at a time, shared by waiters."""
        key = (login, stored_hash, self._cache.fingerprint(login, password))
        pending = self._in_flight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._verify(stored_hash, password))
            self._in_flight[key] = pending
            pending.add_done_callback(lambda _done: self._in_flight.pop(key, None))
        return await asyncio.shield(pending)

    @property
    def password_checks(self) -> PasswordChecks:
        """Shared with other password logins, so that all of them count towards one limit."""
        return self._checks

    async def _verify(self, stored_hash: str, password: str) -> bool:
        return await self._checks.verify(stored_hash, password)
