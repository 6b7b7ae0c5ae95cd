"""Numbers written in URLs and headers: plain ASCII decimal digits, nothing else.

Python's ``int()`` and ``float()``, and pydantic's lax parsing of query and path parameters,
accept more than a person or a program means to send: ``1_0`` (10), `` 12 `` (12), ``+12``,
``12.0`` as a whole number, and ``int()`` even other scripts' digits (``int("١٢")`` is 12).
What the public API takes is an optional ``-`` then the digits ``0-9`` (and, for a number of
seconds, one ``.`` between digits); anything else is refused as that parameter's error.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# 20 digits hold every 64-bit value: longer is out of any range we take (and int() of more
# than 4300 digits raises).
_SHORT_INTEGER = re.compile(r"-?[0-9]{1,20}")


def plain_int(text: str | bytes) -> int | None:
    """The integer ``text`` writes in at most 20 plain decimal digits, or None if it is
    anything else."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return int(text) if _SHORT_INTEGER.fullmatch(text) else None


def _integer_text(value: Any) -> Any:
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        raise ValueError("must be a whole number written with the digits 0-9")
    return value


def _decimal_text(value: Any) -> Any:
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise ValueError("must be a number written with the digits 0-9 and at most one '.'")
    return value


PlainInt = Annotated[int, BeforeValidator(_integer_text)]
"""A query or path integer: ``Annotated[PlainInt, Query(ge=…)]``."""
PlainFloat = Annotated[float, BeforeValidator(_decimal_text)]
"""A query number such as seconds, e.g. ``20`` or ``2.5``."""
