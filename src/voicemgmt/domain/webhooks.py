"""Webhooks without I/O: subscriptions, target rules (SSRF), signatures, the retry schedule.

A subscription sends each matching event of its account's stream to one URL, as a signed
``POST``. These rules are pure so that the service, the API, the CLI and the tests agree:

- a target URL is ``https://`` (``http://`` only where the platform allows it, i.e. in
  development), has no credentials and no fragment, and resolves only to public addresses
  unless the account may target private ones (:func:`check_url`, :func:`is_public_address`);
- the signature header is ``t=<unix seconds>,v1=<hex>`` with one ``v1`` per valid secret, each
  ``HMAC-SHA256(secret, f"{t}.{body}")`` (:func:`signature_header`);
- a failed delivery is tried again after a random wait between 0 and
  ``min(cap, base * 2**(attempts - 1))`` ("full jitter"), until it expires (:class:`RetryPolicy`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from voicemgmt.domain.errors import InvalidInput, InvalidWebhookUrl, WebhookTargetRefused

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
MAX_URL_LENGTH = 2000
MAX_DESCRIPTION = 200
ALL_KINDS = "*"
WEBHOOK_DISABLED = "webhook.disabled"

# Every kind of the account's stream a webhook can carry (docs/events.md; a test keeps the two
# in step); a subscription names some of them, or "*". Internal kinds (session.revoked) never go.
EVENT_KINDS: tuple[str, ...] = (
    "call.arrived",
    "call.ivr_variable",
    "call.queued",
    "call.offered",
    "call.offer_withdrawn",
    "call.answered",
    "call.outbound",
    "call.held",
    "call.resumed",
    "call.transferred",
    "call.overflowed",
    "call.ended",
    "operator.status",
    WEBHOOK_DISABLED,
)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    account_id: int
    url: str
    description: str
    event_kinds: tuple[str, ...] | None  # None: every kind
    active: bool
    disabled_reason: str | None  # "admin" (someone disabled it), "failing" (automatic)
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime

    def wants(self, kind: str) -> bool:
        if self.event_kinds is None:
            return kind in EVENT_KINDS
        return kind in self.event_kinds

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The current secret, then the previous one while it is still valid."""
        expires = self.previous_secret_expires_at
        if self.previous_secret is not None and expires is not None and now < expires:
            return (self.secret, self.previous_secret)
        return (self.secret,)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased to this node for one attempt."""

    row: int
    delivery_id: str
    subscription_id: int
    account_id: int
    kind: str
    body: str
    attempts: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's result, and what follows: delivered, given up, or retried at ``retry_at``."""

    claimed: Claimed
    at: datetime
    ok: bool
    latency_ms: int
    response_code: int | None
    error: str | None
    retry_at: datetime | None  # None with ok=False: given up


@dataclass(frozen=True, slots=True)
class DeliveryView:
    delivery_id: str
    subscription_id: int
    seq: int
    kind: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None
    body: str


@dataclass(frozen=True, slots=True)
class AttemptView:
    at: datetime
    ok: bool
    latency_ms: int
    response_code: int | None
    error: str | None


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_event_kinds(kinds: object) -> tuple[str, ...] | None:
    """``["*"]`` (or nothing) means every kind; otherwise known kinds, each once."""
    if kinds is None:
        return None
    if not isinstance(kinds, list | tuple) or not all(isinstance(k, str) for k in kinds):
        raise InvalidInput("events must be a list of event kinds", field="events")
    if not kinds:
        raise InvalidInput('events must name at least one kind, or "*" for all', field="events")
    if ALL_KINDS in kinds:
        if len(kinds) > 1:
            raise InvalidInput('"*" means every kind: give it alone', field="events")
        return None
    unknown = [k for k in kinds if k not in EVENT_KINDS]
    if unknown:
        raise InvalidInput(
            f"unknown event kind {unknown[0]!r}",
            field="events",
            known=list(EVENT_KINDS),
        )
    return tuple(dict.fromkeys(kinds))


def check_description(text: object) -> str:
    if not isinstance(text, str) or len(text) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"description must be text of at most {MAX_DESCRIPTION} characters",
            field="description",
        )
    return text


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL points: its scheme, host (an IP literal or a name) and port."""

    scheme: str
    host: str
    port: int
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None  # when host is a literal


def check_url(url: object, *, allow_http: bool) -> Target:
    """A syntactically acceptable webhook URL, or ``InvalidWebhookUrl`` saying why not."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidWebhookUrl("url must be an absolute https:// URL", field="url")
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidWebhookUrl(
            f"url must be at most {MAX_URL_LENGTH} characters, without spaces", field="url"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"url is not a valid URL: {exc}", field="url") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise InvalidWebhookUrl("url must be an absolute https:// URL", field="url")
    if scheme == "http" and not allow_http:
        raise InvalidWebhookUrl(
            "url must use https:// (http:// is allowed only in development: "
            "VM_WEBHOOKS_ALLOW_HTTP)",
            field="url",
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl(
            "url must not carry credentials; verify the signature instead", field="url"
        )
    if parts.fragment:
        raise InvalidWebhookUrl("url must not have a #fragment", field="url")
    host = parts.hostname.lower()
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
        if not all(label and len(label) < 64 for label in host.rstrip(".").split(".")):
            raise InvalidWebhookUrl(f"url host {host!r} is not a valid name", field="url") from None
    return Target(scheme, host, port or (443 if scheme == "https" else 80), address)


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared, reserved,
    multicast or unspecified (IPv4-mapped IPv6 addresses are judged as the IPv4 inside)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def refuse_non_public(
    host: str, addresses: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]
) -> None:
    for address in addresses:
        if not is_public_address(address):
            raise WebhookTargetRefused(
                f"url host {host} is (or resolves to) {address}, a loopback, private, "
                "link-local or reserved address; webhooks go to public addresses only",
                field="url",
                address=str(address),
            )


def signature_header(secrets_: Sequence[str], timestamp: int, body: bytes) -> str:
    """``t=<timestamp>,v1=<hex>[,v1=<hex>]``: one ``v1`` per secret, current one first."""
    signed = str(timestamp).encode() + b"." + body
    parts = [f"t={timestamp}"]
    parts.extend("v1=" + hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets_)
    return ",".join(parts)


def order_key(kind: str, data: Mapping[str, Any]) -> str | None:
    """What a delivery must stay in order with: its call, else its operator, else nothing."""
    call = data.get("id_call")
    if call is None and kind == "call.ended" and isinstance(data.get("record"), Mapping):
        call = data["record"].get("id_call")
    if isinstance(call, str) and call:
        return f"call:{call}"[:64]
    operator = data.get("id_op")
    if kind == "operator.status" and type(operator) is int:
        return f"operator:{operator}"
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, for ``retry_for`` after the event."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(hours=1)
    retry_for: timedelta = timedelta(hours=24)
    disable_after: timedelta = timedelta(days=3)

    def delay(self, failed_attempts: int, draw: float) -> timedelta:
        """The wait after the ``failed_attempts``-th failure; ``draw`` is uniform in [0, 1)."""
        ceiling: timedelta = min(self.cap, self.base * (2 ** min(failed_attempts - 1, 40)))
        return ceiling * draw
