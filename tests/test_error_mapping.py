"""Every domain error has an HTTP status: none can fall through to a 500."""

from __future__ import annotations

import pytest

from voicemgmt.domain import errors
from voicemgmt.web.errors import status_of


def all_errors() -> list[type[errors.VoiceManagementError]]:
    found: list[type[errors.VoiceManagementError]] = []
    pending: list[type[errors.VoiceManagementError]] = [errors.VoiceManagementError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls is not errors.VoiceManagementError]


@pytest.mark.parametrize("cls", all_errors(), ids=lambda c: c.__name__)
def test_every_error_maps_to_a_4xx_or_a_503_and_has_its_own_code(
    cls: type[errors.VoiceManagementError],
) -> None:
    error = cls("message", retry_after=1) if cls is errors.TooManyAttempts else cls("message")
    if issubclass(cls, errors.Unavailable):  # a shared part out of reach: try again later
        assert status_of(error) == 503
    else:
        assert 400 <= status_of(error) < 500
    assert cls.error_id
    assert cls.__name__ in errors.__doc__  # the tree in the module docstring stays complete


def test_error_codes_are_unique() -> None:
    codes = [cls.error_id for cls in all_errors()]
    assert len(codes) == len(set(codes))
