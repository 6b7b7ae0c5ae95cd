"""Who is who in an account: the directory the rest of the product routes and authenticates by.

Entities are immutable snapshots; services load them through the storage port, decide, and
write changes back. Identifiers are the guide's: ``id_agent`` for operators, ``id_admin`` for
supervisors, ``id_group`` for groups; numbers are E.164 digits without '+'.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from voicemgmt.domain.errors import InvalidInput
from voicemgmt.domain.phone import normalize_e164


class UserType(StrEnum):
    """The two kinds of people who log in; the guide's ``user_type`` values."""

    AGENT = "agent"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class UserRef:
    """One person of one account: what a token is scoped to."""

    account_id: int
    user_type: UserType
    user_id: int


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    login: str
    name: str
    password_hash: str
    crm_url: str | None = None
    allowed_origins: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Membership:
    """An operator's place in a group; priority 1 is the first tier, 2 the next, and so on."""

    group_id: int
    priority: int = 1


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    account_id: int
    name: str
    email: str
    password_hash: str | None = None
    memberships: tuple[Membership, ...] = ()

    @property
    def ref(self) -> UserRef:
        return UserRef(self.account_id, UserType.AGENT, self.id)


@dataclass(frozen=True, slots=True)
class Supervisor:
    id: int
    account_id: int
    name: str
    email: str
    password_hash: str | None = None

    @property
    def ref(self) -> UserRef:
        return UserRef(self.account_id, UserType.ADMIN, self.id)


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    account_id: int
    name: str
    settings: dict[str, Any] = field(default_factory=dict)


class NumberState(StrEnum):
    """Whether a number takes calls: a suspended number is refused at the switch."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class Number:
    """A phone number of the account, routed to a group."""

    e164: str
    account_id: int
    group_id: int
    label: str = ""
    ivr: dict[str, Any] | None = None  # an IVR script (domain/ivr) callers go through first
    state: NumberState = NumberState.ACTIVE
    record: bool = False  # the recording flag; kept for the recordings feature, not acted on

    @property
    def takes_calls(self) -> bool:
        return self.state is NumberState.ACTIVE


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding blanks."""
    return email.strip().lower()


_LOGIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
MAX_NAME = 200
MAX_EMAIL = 320
MIN_PASSWORD = 8
MAX_PASSWORD = 256
MAX_PRIORITY = 100
MAX_SETTINGS_KEYS = 64
MAX_SETTINGS_DEPTH = 8
MAX_SETTINGS_BYTES = 16 * 1024


def has_control_characters(text: str) -> bool:
    """C0 and C1 controls, DEL and lone surrogates: never part of a name shown to people."""
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def check_name(name: object, what: str = "name") -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise InvalidInput(f"{what} must be 1 to {MAX_NAME} characters", field=what)
    if has_control_characters(name):
        raise InvalidInput(f"{what} must not contain control characters", field=what)
    return name.strip()


def check_email(email: object) -> str:
    if not isinstance(email, str):
        raise InvalidInput("email must be a string", field="email")
    value = email.strip()
    local, _, domain = value.partition("@")
    if (
        len(value) > MAX_EMAIL
        or not local
        or "." not in domain
        or any(c.isspace() or c in "<>\"'" for c in value)
        or has_control_characters(value)
    ):
        raise InvalidInput("email must be an address like ana@example.com", field="email")
    return value


def check_password(password: object, what: str = "password") -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"{what} must be {MIN_PASSWORD} to {MAX_PASSWORD} characters", field=what
        )
    return password


def check_login(login: object) -> str:
    if not isinstance(login, str) or not 3 <= len(login) <= 64 or not set(login) <= _LOGIN_CHARS:
        raise InvalidInput(
            "login must be 3 to 64 characters among letters, digits, '.', '_' and '-'",
            field="login",
        )
    return login


def check_settings(settings: object, what: str = "settings") -> dict[str, Any]:
    """A JSON object of bounded width, depth and size, storable and readable back as is."""
    if not isinstance(settings, dict) or len(settings) > MAX_SETTINGS_KEYS:
        raise InvalidInput(
            f"{what} must be a JSON object of at most {MAX_SETTINGS_KEYS} keys", field=what
        )
    pending: list[tuple[object, int]] = [(settings, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_SETTINGS_DEPTH:
            raise InvalidInput(f"{what} nest deeper than {MAX_SETTINGS_DEPTH} levels", field=what)
        if isinstance(value, dict):
            pending.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            pending.extend((v, depth + 1) for v in value)
    try:
        size = len(json.dumps(settings, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidInput(
            f"{what} must be plain JSON text, numbers and lists", field=what
        ) from exc
    if size > MAX_SETTINGS_BYTES:
        raise InvalidInput(f"{what} must be at most {MAX_SETTINGS_BYTES} bytes of JSON", field=what)
    return dict(settings)


SCREEN_POP_MODES = ("presentation", "answer", "off")


def screen_pop_mode(account: Account) -> str:
    """When the banner opens the CRM's customer file (SPEC §3): as the call is presented
    (the default), once the operator answers, or never."""
    mode = account.settings.get("screen_pop", SCREEN_POP_MODES[0])
    return mode if mode in SCREEN_POP_MODES else SCREEN_POP_MODES[0]


def check_account_settings(settings: object) -> dict[str, Any]:
    """An account's settings: bounded JSON, and the keys the product reads checked."""
    checked = check_settings(settings)
    if checked.get("caller_id") is not None:
        # The number click-to-call presents to the customers it calls.
        if not isinstance(checked["caller_id"], str):
            raise InvalidInput(
                "settings.caller_id must be E.164 digits", field="settings.caller_id"
            )
        checked["caller_id"] = normalize_e164(checked["caller_id"])
    mode = checked.get("screen_pop", SCREEN_POP_MODES[0])
    if mode not in SCREEN_POP_MODES:
        raise InvalidInput(
            f"settings.screen_pop must be one of {', '.join(SCREEN_POP_MODES)}",
            field="settings.screen_pop",
        )
    return checked


def check_memberships(raw: object) -> tuple[Membership, ...]:
    """Group memberships as given by an admin: each group once, priority 1 to 100.

    Returned in the order they are stored and read back: by priority, then group.
    """
    if not isinstance(raw, list | tuple):
        raise InvalidInput("groups must be a list", field="groups")
    seen: set[int] = set()
    result: list[Membership] = []
    for item in raw:
        if not isinstance(item, Membership):
            raise InvalidInput("groups must list memberships", field="groups")
        if not 1 <= item.priority <= MAX_PRIORITY:
            raise InvalidInput(f"priority must be between 1 and {MAX_PRIORITY}", field="groups")
        if item.group_id in seen:
            raise InvalidInput(f"group {item.group_id} is listed twice", field="groups")
        seen.add(item.group_id)
        result.append(item)
    return tuple(sorted(result, key=lambda m: (m.priority, m.group_id)))
