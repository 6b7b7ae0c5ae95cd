"""Reading back what the domain saved as JSON: every value checked, nothing trusted.

A routing core's state (``routing/state.py``) and an IVR session (``ivr/session.py``) are
saved as JSON-ready values and may come back from a database another version wrote, or
damaged. Each reader below takes the value and the place it was found (``where``, such as
``calls[3].ring_started``) and returns it typed, or raises ``InvalidSavedState`` naming the
place: a reader of saved state checks it all before it changes anything.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, TypeVar

from voicemgmt.domain.errors import InvalidSavedState

MAX_TIME = float(2**40)  # seconds (about 35,000 years): a time or a duration beyond is damage
MAX_COUNT = 2**53  # counters and ids: what a JSON number holds exactly everywhere

_E = TypeVar("_E", bound=StrEnum)


def invalid(where: str, problem: str) -> InvalidSavedState:
    return InvalidSavedState(f"saved state: {where} {problem}", field=where)


def record(raw: object, where: str, names: frozenset[str]) -> dict[str, Any]:
    """``raw`` as a JSON object with exactly the fields ``names``."""
    if not isinstance(raw, dict):
        raise invalid(where, "must be a JSON object")
    missing = sorted(names - raw.keys())
    if missing:
        raise invalid(f"{where}.{missing[0]}", "is missing")
    unknown = sorted(str(name)[:64] for name in raw.keys() - names)
    if unknown:
        raise invalid(f"{where}.{unknown[0]}", "is not a field of this format")
    return raw


def version(raw: dict[str, Any], where: str, expected: int) -> None:
    """The ``format`` field: this version reads ``expected`` only."""
    found = raw.get("format") if isinstance(raw, dict) else None
    if type(found) is not int or found != expected:
        raise invalid(f"{where}.format", f"is {str(found)[:32]!r}, this version reads {expected}")


def time(raw: object, where: str) -> float:
    """A time or a duration in seconds: a finite number from 0 to ``MAX_TIME``."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise invalid(where, "must be a number of seconds")
    if not (math.isfinite(raw) and 0 <= raw <= MAX_TIME):
        raise invalid(where, f"must be from 0 to {MAX_TIME:g} seconds")
    return float(raw)


def optional_time(raw: object, where: str) -> float | None:
    return None if raw is None else time(raw, where)


def count(raw: object, where: str, low: int = 0, high: int = MAX_COUNT) -> int:
    """A whole number from ``low`` to ``high`` (a boolean is not one)."""
    if type(raw) is not int or not low <= raw <= high:
        raise invalid(where, f"must be a whole number from {low} to {high}")
    return raw


def optional_count(raw: object, where: str) -> int | None:
    return None if raw is None else count(raw, where)


def text(raw: object, where: str) -> str:
    if not isinstance(raw, str):
        raise invalid(where, "must be a string")
    return raw


def optional_text(raw: object, where: str) -> str | None:
    return None if raw is None else text(raw, where)


def text_map(raw: object, where: str) -> dict[str, str]:
    """A JSON object of strings."""
    if not isinstance(raw, dict):
        raise invalid(where, "must be a JSON object of strings")
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise invalid(f"{where}.{str(name)[:64]}", "must be a string")
    return dict(raw)


def items(raw: object, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise invalid(where, "must be a JSON array")
    return raw


def counts(raw: object, where: str) -> list[int]:
    """A JSON array of ids (whole numbers from 0)."""
    return [count(value, f"{where}[{i}]") for i, value in enumerate(items(raw, where))]


def choice(raw: object, where: str, kind: type[_E]) -> _E:
    """A member of the string enumeration ``kind``, by its value."""
    if not isinstance(raw, str):
        raise invalid(where, "must be a string")
    try:
        return kind(raw)
    except ValueError as exc:
        raise invalid(where, f"is not a known value ({str(raw)[:32]!r})") from exc
