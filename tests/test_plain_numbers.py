"""Numbers written in URLs and headers are plain ASCII digits (``web/plain_numbers.py``).

``int()`` reads ``1_0`` as 10, `` 12 `` as 12 and Arabic-Indic ``١٢`` as 12; the public API
must not. The endpoints' own tests check each parameter; these check the reading itself.
"""

from __future__ import annotations

import pytest

from voicemgmt.web.plain_numbers import plain_int


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("7", 7), ("0042", 42), ("-3", -3), (b"1024", 1024), ("9" * 20, int("9" * 20))],
)
def test_plain_digits_are_read(text: str | bytes, value: int) -> None:
    assert plain_int(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1_0",
        " 12",
        "12 ",
        "12\n",
        "+12",
        "12.0",
        "1e3",
        "0x1f",
        "\u0661\u0662",  # Arabic-Indic 12
        "\uff11\uff12",  # fullwidth 12
        "\u00b2",  # superscript two
        "9" * 21,  # beyond any 64-bit number
        "9" * 5000,  # int() itself refuses more than 4300 digits
        b"1_0",
        b"\xd9\xa1",  # UTF-8 of an Arabic-Indic 1
    ],
    ids=repr,
)
def test_anything_else_is_not_a_number(text: str | bytes) -> None:
    assert plain_int(text) is None
