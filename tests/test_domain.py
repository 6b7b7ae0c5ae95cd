"""The pure rules: phone numbers, origins, token derivation and the token request forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicemgmt.domain.directory import (
    Membership,
    UserRef,
    UserType,
    check_memberships,
    check_name,
    check_settings,
)
from voicemgmt.domain.errors import InvalidInput, InvalidPhoneNumber
from voicemgmt.domain.origins import normalize_crm_url, normalize_origin
from voicemgmt.domain.phone import normalize_e164
from voicemgmt.domain.tokens import SessionToken, derive_token, looks_like_token, token_digest
from voicemgmt.services.tokens import TokenRequest, parse_owner_hint, parse_token_request


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("33170200200", "33170200200"),
        ("+33170200200", "33170200200"),
        ("+33 1 70 20 02 00", "33170200200"),
        ("+1 (415) 555-2671", "14155552671"),
        ("44.20.7946.0958", "442079460958"),
    ],
)
def test_phone_numbers_become_e164_digits(raw: str, digits: str) -> None:
    assert normalize_e164(raw) == digits


@pytest.mark.parametrize(
    "raw", ["", "+", "12", "abc", "33170200200x", "0170200200", "+" + "9" * 16, "++33170200200"]
)
def test_invalid_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalize_e164(raw)


@given(st.text(max_size=40))
def test_any_text_is_either_a_number_or_a_clear_refusal(raw: str) -> None:
    try:
        digits = normalize_e164(raw)
    except InvalidPhoneNumber:
        return
    assert digits.isdigit()
    assert len(digits) <= 15


@pytest.mark.parametrize(
    ("raw", "origin"),
    [
        ("https://CRM.Example.com", "https://crm.example.com"),
        ("https://crm.example.com/", "https://crm.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_origins_are_normalised(raw: str, origin: str) -> None:
    assert normalize_origin(raw) == origin


@pytest.mark.parametrize(
    "raw",
    [
        "javascript:alert(1)",
        "https://crm.example.com/path",
        "https://*.example.com",
        "https://user@crm.example.com",
        "ftp://crm.example.com",
        "crm.example.com",
        "https://crm.example.com?x=1",
        "https://crm.example.com:99999",
        "https://a.com 'unsafe-inline'",
        "",
    ],
)
def test_hostile_origins_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_origin(raw)


@pytest.mark.parametrize(
    "raw", ["javascript:alert(1)", "/relative", "https://", "https://a.com/<script>", "x" * 3000]
)
def test_bad_crm_urls_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_crm_url(raw)


def test_a_token_is_derived_from_its_seed_and_the_secret_key() -> None:
    seed = bytes(range(32))
    token = derive_token(b"k" * 32, seed)
    assert token == derive_token(b"k" * 32, seed)
    assert token != derive_token(b"j" * 32, seed)
    assert looks_like_token(token)
    assert len(token_digest(token)) == 32


@pytest.mark.parametrize(
    "candidate", ["", "vm_", "vm_" + "a" * 42, "xx_" + "a" * 43, "vm_" + "é" * 43]
)
def test_malformed_tokens_are_recognised_without_a_lookup(candidate: str) -> None:
    assert not looks_like_token(candidate)


def test_sliding_expiry_writes_at_most_once_per_granularity() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ttl, step = timedelta(hours=1), timedelta(minutes=1)
    token = SessionToken(
        1, UserRef(1, UserType.AGENT, 1), b"", b"", None, now, expires_at=now + ttl
    )
    assert not token.needs_slide(now + timedelta(seconds=30), ttl, step)
    assert token.needs_slide(now + timedelta(seconds=61), ttl, step)
    assert token.slid(now + timedelta(minutes=5), ttl).expires_at == now + ttl + timedelta(
        minutes=5
    )
    assert not token.is_live(now + ttl)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"id_agent": 12}, TokenRequest(UserType.AGENT, user_id=12)),
        ({"ip": "10.0.0.1", "id_agent": 12}, TokenRequest(UserType.AGENT, 12, ip="10.0.0.1")),
        (
            {"email": " a@b.example ", "user_type": "agent"},
            TokenRequest(UserType.AGENT, email="a@b.example"),
        ),
        (
            {"email": "a@b.example", "user_type": "admin"},
            TokenRequest(UserType.ADMIN, email="a@b.example"),
        ),
        ({"id_admin": 3, "keep": 1}, TokenRequest(UserType.ADMIN, user_id=3, keep=True)),
        ({"id_agent": 3, "keep": True}, TokenRequest(UserType.AGENT, user_id=3, keep=True)),
        ({"id_agent": 3, "keep": 0}, TokenRequest(UserType.AGENT, user_id=3)),
        ({"id_agent": 3, "user_type": "agent"}, TokenRequest(UserType.AGENT, user_id=3)),
        (
            {"ip": "::ffff:10.0.0.1", "id_agent": 1},
            TokenRequest(UserType.AGENT, 1, ip="::ffff:a00:1"),
        ),
    ],
)
def test_every_form_of_the_guide_is_understood(body: object, expected: TokenRequest) -> None:
    assert parse_token_request(body) == expected


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=8,
    )
)
def test_any_json_is_understood_or_refused_clearly(body: object) -> None:
    try:
        parse_token_request(body)
    except InvalidInput as exc:
        message = exc.message
    else:
        message = "understood"
    assert message


def test_the_delete_body_is_optional_and_names_the_owner() -> None:
    assert parse_owner_hint(None) == (None, None)
    assert parse_owner_hint({"ip": "10.0.0.1", "id_agent": 4}) == (4, None)
    assert parse_owner_hint({"id_admin": 2}) == (None, 2)
    with pytest.raises(InvalidInput):
        parse_owner_hint({"id_agent": "4"})


def test_memberships_are_checked_and_ordered() -> None:
    assert check_memberships([Membership(5, 2), Membership(3, 1)]) == (
        Membership(3, 1),
        Membership(5, 2),
    )
    with pytest.raises(InvalidInput):
        check_memberships([Membership(3, 1), Membership(3, 2)])
    with pytest.raises(InvalidInput):
        check_memberships([Membership(3, 0)])


@pytest.mark.parametrize(
    ("raw", "origin"),
    [
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("https://crm.example.com:443", "https://crm.example.com"),
        ("http://crm.example.com:80", "http://crm.example.com"),
        ("https://crm.example.com:80", "https://crm.example.com:80"),
    ],
)
def test_origins_are_written_as_browsers_report_them(raw: str, origin: str) -> None:
    assert normalize_origin(raw) == origin


@pytest.mark.parametrize(
    "raw",
    [
        "https://a.c\tom",
        "https://a%2e.com",
        "https://-a.com",
        "https://a_b.com",
        "https://a\u0085.com",
    ],
)
def test_origins_with_odd_characters_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_origin(raw)


@pytest.mark.parametrize("name", ["A\x7fB", "A\u009bB", "A\x00B", "A\ud800B", "A\nB"])
def test_names_with_control_characters_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_name(name)


def test_settings_are_bounded_in_depth_and_size() -> None:
    nested: object = 1
    for _ in range(9):
        nested = [nested]
    with pytest.raises(InvalidInput):
        check_settings({"x": nested})
    with pytest.raises(InvalidInput):
        check_settings({"x": "y" * 20_000})
    with pytest.raises(InvalidInput):
        check_settings({"x": float("nan")})
    with pytest.raises(InvalidInput):
        check_settings({"x": "\ud800"})
    assert check_settings({"ring": 20, "tiers": [[1, 2], [3]]}) == {
        "ring": 20,
        "tiers": [[1, 2], [3]],
    }
