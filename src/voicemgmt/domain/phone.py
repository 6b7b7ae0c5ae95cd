"""Phone numbers as the guide writes them: E.164 digits without '+', e.g. ``33170200200``."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from voicemgmt.domain.errors import InvalidPhoneNumber

_SEPARATORS = re.compile(r"[\s.\-()/]")
_DIGITS = re.compile(r"\+?[0-9]{1,15}")


def normalize_e164(raw: str) -> str:
    """Return the E.164 digits of ``raw`` ('+33 1 70 20 02 00' → '33170200200').

    Accepts digits with or without a leading '+', and the usual separators. Raises
    ``InvalidPhoneNumber`` for anything that is not a valid, dialable international number.
    """
    if not isinstance(raw, str):
        raise InvalidPhoneNumber("a phone number must be a string of digits")
    compact = _SEPARATORS.sub("", raw.strip())
    if not _DIGITS.fullmatch(compact):
        raise InvalidPhoneNumber(
            "a phone number must be E.164 digits, e.g. 33170200200", value=raw[:32]
        )
    digits = compact.removeprefix("+")
    message = "not a valid international number: E.164 digits with the country code"
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(message, value=raw[:32]) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(message, value=raw[:32])
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]


@lru_cache(maxsize=4096)
def display_number(value: str) -> str:
    """How people read a number: '33612345678' → '+33 6 12 34 56 78'.

    A caller id that is not a valid number (withheld, a name, garbage from a carrier) is
    returned as it came: it is shown as text, never interpreted.
    """
    if not value or not value.isdigit() or len(value) > 15:
        return value
    try:
        parsed = phonenumbers.parse("+" + value, None)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(parsed):
        return value
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
