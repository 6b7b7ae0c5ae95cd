"""Who gets no answer: scanners, and (address, user) pairs that keep failing authentication.

A failure is a refused digest (wrong password, unknown user), a REGISTER for someone else's
address, or an INVITE from outside the trunk. Each is counted against the pair (source
address, user): the user is the ``username`` of the request's ``Authorization``, else the To
user of a REGISTER, else nobody (``""``: strangers' INVITEs, OPTIONS and the like).

- ``MAX_FAILURES`` failures of one pair within ``WINDOW`` seconds: that pair gets no answer for
  ``BAN`` seconds. Only that pair: another user behind the same address (a shared office NAT,
  a CRM server) and the same user elsewhere are answered as before.
- ``ADDRESS_FAILURES`` failures from one address within ``WINDOW``, whoever they were for (a
  scanner trying many usernames): the whole address gets no answer for ``BAN`` seconds,
  unless a user authenticated from it in the last ``TRUSTED`` seconds (then only its failing
  pairs are ignored, so that its other users are never locked out).
- The trunk's addresses (``exempt``) are never throttled; user agents of known scanners
  (``SCANNERS``) are never answered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from voicemgmt.adapters.switch.sip.digest import parse_challenge
from voicemgmt.adapters.switch.sip.message import Request
from voicemgmt.adapters.switch.sip.transaction import Address
from voicemgmt.adapters.switch.sip.uri import SipSyntaxError

SCANNERS = ("friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sundayddr", "iwar")
MAX_FAILURES = 10
ADDRESS_FAILURES = 100
WINDOW = 60.0
BAN = 300.0
TRUSTED = 3600.0  # a successful authentication vouches for its address this long
MAX_TRACKED = 10_000  # pairs (and addresses) followed at once; the oldest are forgotten

Pair = tuple[str, str]


def user_of(request: Request) -> str:
    """Whom a request speaks for: its digest username, a REGISTER's To user, or ``""``."""
    value = request.headers.get("authorization")
    if value is not None:
        try:
            return parse_challenge(value).get("username", "")[:128]
        except ValueError:
            return ""
    if request.method == "REGISTER":
        try:
            return (request.to.uri.user or "")[:128]
        except (SipSyntaxError, ValueError):
            return ""
    return ""


class _Counter:
    """Failures per key within a window; past the limit, the key is banned for a while."""

    def __init__(self, limit: int, window: float, ban: float) -> None:
        self.limit, self.window, self.ban = limit, window, ban
        self._failures: dict[object, deque[float]] = {}
        self._banned: dict[object, float] = {}

    def banned(self, key: object, now: float) -> bool:
        until = self._banned.get(key)
        if until is None:
            return False
        if until <= now:
            del self._banned[key]
            return False
        return True

    def failed(self, key: object, now: float) -> None:
        times = self._failures.pop(key, None) or deque()
        self._failures[key] = times  # moved to the end: the most recently active
        times.append(now)
        while times and times[0] < now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            self._banned[key] = now + self.ban
            del self._failures[key]
        for table in (self._failures, self._banned):
            while len(table) > MAX_TRACKED:
                del table[next(iter(table))]


class SipThrottle:
    def __init__(
        self,
        exempt: Callable[[Address], bool],
        *,
        max_failures: int = MAX_FAILURES,
        address_failures: int = ADDRESS_FAILURES,
        window: float = WINDOW,
        ban: float = BAN,
    ) -> None:
        self.exempt = exempt
        self._pairs = _Counter(max_failures, window, ban)
        self._addresses = _Counter(address_failures, window, ban)
        self._trusted: dict[str, float] = {}  # address → until when it is vouched for

    def blocked(self, request: Request, source: Address, now: float) -> bool:
        """Should this request go unanswered (a scanner, or a pair that kept failing)?"""
        agent = (request.headers.get("user-agent") or "").lower()
        if any(name in agent for name in SCANNERS):
            return True
        if self.exempt(source):
            return False
        host = source[0]
        if self._pairs.banned((host, user_of(request)), now):
            return True
        return self._addresses.banned(host, now) and not self._vouched(host, now)

    def failed(self, request: Request, source: Address, now: float) -> None:
        if self.exempt(source):
            return  # never lock the trunk out
        host = source[0]
        self._pairs.failed((host, user_of(request)), now)
        self._addresses.failed(host, now)

    def succeeded(self, source: Address, now: float) -> None:
        """A user authenticated from ``source``: its other users stay answered."""
        host = source[0]
        self._trusted.pop(host, None)
        self._trusted[host] = now + TRUSTED
        while len(self._trusted) > MAX_TRACKED:
            del self._trusted[next(iter(self._trusted))]

    def _vouched(self, host: str, now: float) -> bool:
        until = self._trusted.get(host)
        return until is not None and until > now
