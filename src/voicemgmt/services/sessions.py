"""People's sessions: password login, logout from a page, and the guide's token deletion.

- ``log_in`` is the banner's login form and ``cnx.js``'s ``crm.login_credential``: an email
  and a password open a session token, as ``POST /vm/token`` would mint one. Emails are unique
  within an account, not across accounts, so the password decides between accounts; unknown
  emails cost the same argon2 check as wrong passwords, and failures are throttled per client.
- ``log_out`` (a page's logout button, with its own token) and ``revoke`` (the CRM's
  ``DELETE /vm/token/<token>``, guide §1.2) end a token, then announce it on the account's
  stream as ``session.revoked`` with the token's fingerprint, never the token: every page and
  ``cnx.js`` bound to it logs out at once. An operator left without any live session goes
  offline, so that calls are not offered to someone who has left.
"""

from __future__ import annotations

import logging

from voicemgmt.domain.directory import Account, UserRef, UserType
from voicemgmt.domain.errors import AuthenticationFailed
from voicemgmt.domain.routing.model import Presence
from voicemgmt.domain.tokens import token_fingerprint
from voicemgmt.services.authentication import (
    MAX_PASSWORD_LENGTH,
    LoginThrottle,
    PasswordChecks,
)
from voicemgmt.services.events import EventBus
from voicemgmt.services.ports import Clock, UnitOfWorkFactory
from voicemgmt.services.routing import RoutingService
from voicemgmt.services.tokens import IssuedToken, TokenService

log = logging.getLogger(__name__)

SESSION_REVOKED = "session.revoked"
MAX_EMAIL_LENGTH = 320
# The same email in more accounts than this is not a person but a pattern; refuse to guess.
MAX_CANDIDATES = 5


class SessionService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        tokens: TokenService,
        checks: PasswordChecks,
        throttle: LoginThrottle,
        bus: EventBus,
        routing: RoutingService,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._tokens = tokens
        self._checks = checks
        self._throttle = throttle
        self._bus = bus
        self._routing = routing
        self._clock = clock

    async def log_in(
        self, email: str, password: str, user_type: UserType, *, client: str, ip: str | None
    ) -> IssuedToken:
        """The session of the one person this email and password open, or refusal."""
        key = f"{user_type.value}:{email.strip().lower()[:MAX_EMAIL_LENGTH]}"
        self._throttle.check(client, key)
        candidates: list[tuple[UserRef, str]] = []
        if len(email) <= MAX_EMAIL_LENGTH and len(password) <= MAX_PASSWORD_LENGTH:
            async with self._uow() as uow:
                candidates = await uow.directory.people_with_password(
                    user_type, email, limit=MAX_CANDIDATES
                )
        matched = [
            user for user, stored in candidates if await self._checks.verify(stored, password)
        ]
        if not candidates:
            await self._checks.pay_for_unknown(password)
        if len(matched) == 1:
            self._throttle.record_success(client, key)
            return await self._tokens.issue_to(matched[0], ip=ip)
        self._throttle.record_failure(client, key)
        if matched:
            raise AuthenticationFailed(
                "this email and password open several accounts; ask your administrator for a "
                "password of your own in each"
            )
        raise AuthenticationFailed("wrong email or password")

    async def log_out(self, token: str) -> UserRef:
        user = await self._tokens.revoke_own(token)
        await self._announce(token, user, reason="logout")
        return user

    async def revoke(
        self, account: Account, token: str, hint: tuple[int | None, int | None]
    ) -> UserRef:
        user = await self._tokens.revoke(account, token, hint)
        await self._announce(token, user, reason="logout")
        return user

    async def _announce(self, token: str, user: UserRef, *, reason: str) -> None:
        ids = {"id_agent" if user.user_type is UserType.AGENT else "id_admin": user.user_id}
        await self._bus.publish(
            user.account_id,
            SESSION_REVOKED,
            {"token": token_fingerprint(token), "user_type": user.user_type.value, **ids},
            self._clock.now(),
        )
        if user.user_type is UserType.AGENT and not await self._tokens.has_live_token(user):
            try:
                await self._routing.set_presence(
                    user.account_id, user.user_id, Presence.OFFLINE, reason
                )
            except Exception:  # the token is gone whatever happens to the status
                log.exception("could not set operator %s offline at logout", user.user_id)
