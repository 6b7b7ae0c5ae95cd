"""Digest authentication: HA1 only on the server, nonces that expire, both algorithms."""

from __future__ import annotations

import pytest

from voicemgmt.adapters.switch.sip.digest import (
    Algorithm,
    DigestServer,
    Verdict,
    authorization,
    ha1,
    parse_challenge,
)

KEY = b"k" * 32


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_the_right_password_is_accepted_and_a_wrong_one_refused(algorithm: Algorithm) -> None:
    server = DigestServer("voicemgmt", KEY)
    challenge = server.challenge(100.0, algorithm=algorithm)
    stored = ha1(algorithm, "ana", "voicemgmt", "secret-1")
    for password, verdict in (("secret-1", Verdict.OK), ("secret-2", Verdict.WRONG)):
        value = authorization(
            challenge, method="REGISTER", uri="sip:127.0.0.1", username="ana", password=password
        )
        credentials = server.credentials(value)
        assert credentials is not None
        assert credentials.algorithm is algorithm
        assert server.verify(credentials, "REGISTER", stored, 101.0) is verdict


def test_an_expired_nonce_with_the_right_password_is_stale() -> None:
    server = DigestServer("voicemgmt", KEY, lifetime=60)
    value = authorization(
        server.challenge(0.0), method="INVITE", uri="sip:x", username="ana", password="pw"
    )
    credentials = server.credentials(value)
    assert credentials is not None
    stored = ha1(Algorithm.MD5, "ana", "voicemgmt", "pw")
    assert server.verify(credentials, "INVITE", stored, 61.0) is Verdict.STALE


def test_a_nonce_from_another_key_a_replayed_method_or_an_unknown_user_is_wrong() -> None:
    ours, theirs = DigestServer("voicemgmt", KEY), DigestServer("voicemgmt", b"z" * 32)
    stored = ha1(Algorithm.MD5, "ana", "voicemgmt", "pw")
    forged = ours.credentials(
        authorization(
            theirs.challenge(0), method="REGISTER", uri="sip:x", username="ana", password="pw"
        )
    )
    assert forged is not None
    assert ours.verify(forged, "REGISTER", stored, 1.0) is Verdict.WRONG
    good = ours.credentials(
        authorization(
            ours.challenge(0), method="REGISTER", uri="sip:x", username="ana", password="pw"
        )
    )
    assert good is not None
    assert ours.verify(good, "INVITE", stored, 1.0) is Verdict.WRONG
    assert ours.verify(good, "REGISTER", None, 1.0) is Verdict.WRONG


@pytest.mark.parametrize(
    "value",
    [
        "Basic YW5hOnB3",
        'Digest username="ana"',
        'Digest username="ana", realm="voicemgmt", nonce="n", uri="sip:x", response="r", '
        "qop=auth-int",
        "Digest " + 'a="' + "x" * 5000 + '"',
        'Digest username="a", username="b", realm="r", nonce="n", uri="u", response="r"',
        "Digest ,,,===",
    ],
)
def test_unreadable_credentials_are_refused_without_raising(value: str) -> None:
    server = DigestServer("voicemgmt", KEY)
    credentials = server.credentials(value)
    if credentials is not None:
        assert server.verify(credentials, "REGISTER", "0" * 32, 0.0) is not Verdict.OK


def test_quoted_parameters_are_unescaped() -> None:
    assert parse_challenge('Digest realm="a \\"b\\"", nonce=xyz')["realm"] == 'a "b"'
