"""Digest authentication: HA1 only on the server, nonces that expire, both algorithms."""

from __future__ import annotations

import pytest

from voicemgmt.adapters.switch.sip.digest import (
    Algorithm,
    Credentials,
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


def _answer(server: DigestServer, challenge: str, nc: int, cnonce: str = "c1") -> Credentials:
    value = authorization(
        challenge,
        method="REGISTER",
        uri="sip:x",
        username="ana",
        password="pw",
        nc=nc,
        cnonce=cnonce,
    )
    credentials = server.credentials(value)
    assert credentials is not None
    return credentials


def test_a_nonce_serves_again_only_with_a_higher_nonce_count() -> None:
    server = DigestServer("voicemgmt", KEY)
    stored = ha1(Algorithm.MD5, "ana", "voicemgmt", "pw")
    challenge = server.challenge(0.0)
    first = _answer(server, challenge, nc=1)
    assert server.verify(first, "REGISTER", stored, 1.0) is Verdict.OK
    assert server.verify(first, "REGISTER", stored, 2.0) is Verdict.REPLAYED  # the same bytes
    assert server.verify(_answer(server, challenge, 3), "REGISTER", stored, 3.0) is Verdict.OK
    # a lower count, even with a new cnonce, is a replay too
    assert server.verify(_answer(server, challenge, 2, "c2"), "REGISTER", stored, 4.0) is (
        Verdict.REPLAYED
    )
    # a wrong password never consumes a count: the right one with that count still passes
    wrong = server.credentials(
        authorization(
            challenge, method="REGISTER", uri="sip:x", username="ana", password="no", nc=4
        )
    )
    assert wrong is not None
    assert server.verify(wrong, "REGISTER", stored, 5.0) is Verdict.WRONG
    assert server.verify(_answer(server, challenge, 4), "REGISTER", stored, 6.0) is Verdict.OK


def test_without_qop_a_nonce_serves_once() -> None:
    server = DigestServer("voicemgmt", KEY)
    stored = ha1(Algorithm.MD5, "ana", "voicemgmt", "pw")
    challenge = server.challenge(0.0).replace(', qop="auth"', "")
    credentials = _answer(server, challenge, nc=1)
    assert "qop" not in credentials.params
    assert server.verify(credentials, "REGISTER", stored, 1.0) is Verdict.OK
    assert server.verify(credentials, "REGISTER", stored, 2.0) is Verdict.REPLAYED


def test_a_malformed_nonce_count_is_refused() -> None:
    server = DigestServer("voicemgmt", KEY)
    credentials = _answer(server, server.challenge(0.0), nc=1)
    params = dict(credentials.params, nc="zz")
    bad = Credentials(credentials.username, credentials.realm, credentials.algorithm, params)
    assert server.verify(bad, "REGISTER", "0" * 32, 1.0) is Verdict.MALFORMED


def test_forgotten_nonces_turn_stale_instead_of_replayable() -> None:
    server = DigestServer("voicemgmt", KEY, max_tracked=2)
    stored = ha1(Algorithm.MD5, "ana", "voicemgmt", "pw")
    early = _answer(server, server.challenge(1.0), nc=1)
    assert server.verify(early, "REGISTER", stored, 2.0) is Verdict.OK
    for at in (3.0, 4.0):  # two more nonces push the first one out of the table
        assert server.verify(_answer(server, server.challenge(at), 1), "REGISTER", stored, at) is (
            Verdict.OK
        )
    assert server.verify(early, "REGISTER", stored, 5.0) is Verdict.STALE


def test_used_nonces_are_forgotten_once_expired() -> None:
    server = DigestServer("voicemgmt", KEY, lifetime=60)
    stored = ha1(Algorithm.MD5, "ana", "voicemgmt", "pw")
    for at in range(10):
        credentials = _answer(server, server.challenge(float(at)), nc=1)
        assert server.verify(credentials, "REGISTER", stored, float(at)) is Verdict.OK
    late = _answer(server, server.challenge(200.0), nc=1)
    assert server.verify(late, "REGISTER", stored, 200.0) is Verdict.OK
    assert len(server._used) == 1
