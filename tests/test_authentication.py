"""Basic-auth verification: the argon2 cache and the throttle, driven directly."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import make_settings, run_on
from voicemgmt.bootstrap import Container
from voicemgmt.domain.errors import AuthenticationFailed, TooManyAttempts
from voicemgmt.services.authentication import LoginThrottle, VerifiedCredentialCache

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_cache_accepts_only_the_verified_pair_against_the_same_hash() -> None:
    cache = VerifiedCredentialCache(timedelta(minutes=5))
    cache.remember("acme", "right", "$argon2id$hash1", NOW)
    assert cache.accepts("acme", "right", "$argon2id$hash1", NOW)
    assert not cache.accepts("acme", "wrong", "$argon2id$hash1", NOW)
    assert not cache.accepts("acme", "right", "$argon2id$hash2", NOW)  # password changed
    assert not cache.accepts("other", "right", "$argon2id$hash1", NOW)
    assert not cache.accepts("acme", "right", "$argon2id$hash1", NOW + timedelta(minutes=5))


def test_the_cache_is_bounded() -> None:
    cache = VerifiedCredentialCache(timedelta(minutes=5), max_entries=3)
    for i in range(5):
        cache.remember(f"login{i}", "pw", "h", NOW)
    assert not cache.accepts("login0", "pw", "h", NOW)
    assert cache.accepts("login4", "pw", "h", NOW)


def test_a_zero_ttl_disables_the_cache() -> None:
    cache = VerifiedCredentialCache(timedelta(0))
    cache.remember("acme", "pw", "h", NOW)
    assert not cache.accepts("acme", "pw", "h", NOW)


def test_the_throttle_counts_failures_per_client_and_login() -> None:
    throttle = LoginThrottle("3/minute", "5/minute")
    for _ in range(3):
        throttle.check("10.0.0.1", "acme")
        throttle.record_failure("10.0.0.1", "acme")
    with pytest.raises(TooManyAttempts) as caught:
        throttle.check("10.0.0.1", "acme")
    assert 1 <= caught.value.retry_after <= 61
    throttle.check("10.0.0.2", "acme")  # another client
    throttle.check("10.0.0.1", "globex")  # the same client, another login
    for _ in range(2):
        throttle.record_failure("10.0.0.1", "globex")
    with pytest.raises(TooManyAttempts):
        throttle.check("10.0.0.1", "initech")  # 5 failures from this client in all


def test_the_wide_limits_spare_pairs_that_logged_in() -> None:
    throttle = LoginThrottle("3/minute", "5/minute", "4/minute")
    throttle.record_success("10.0.0.1", "acme")  # the CRM's address uses acme
    for i in range(5):  # another tenant's failures from the same address
        throttle.record_failure("10.0.0.1", f"tenant{i}")
    with pytest.raises(TooManyAttempts):
        throttle.check("10.0.0.1", "globex")  # never logged in from here: 5 failures
    throttle.check("10.0.0.1", "acme")  # known here: spared
    for i in range(4):  # acme guessed from four other addresses
        throttle.record_failure(f"10.0.1.{i}", "acme")
    with pytest.raises(TooManyAttempts) as caught:
        throttle.check("10.0.2.1", "acme")
    assert caught.value.message == "too many failed logins for this login; try again later"
    throttle.check("10.0.0.1", "acme")  # still spared where acme is used


def test_the_pair_limit_spares_no_one_and_a_success_resets_it() -> None:
    throttle = LoginThrottle("3/minute", "30/minute", "30/minute")
    throttle.record_success("10.0.0.1", "acme")
    for _ in range(3):
        throttle.record_failure("10.0.0.1", "acme")
    with pytest.raises(TooManyAttempts):
        throttle.check("10.0.0.1", "acme")  # known, but this pair keeps failing
    throttle.record_success("10.0.0.1", "acme")  # (what a check let through and succeeded)
    throttle.check("10.0.0.1", "acme")


def test_known_pairs_expire_and_are_bounded() -> None:
    throttle = LoginThrottle("30/minute", "2/minute", "30/minute", known_seconds=0.05)
    throttle.record_success("10.0.0.1", "acme")
    for _ in range(2):
        throttle.record_failure("10.0.0.1", "other")
    throttle.check("10.0.0.1", "acme")
    time.sleep(0.06)
    with pytest.raises(TooManyAttempts):
        throttle.check("10.0.0.1", "acme")  # a day later (here: 50 ms), no longer known
    bounded = LoginThrottle("30/minute", "2/minute", "30/minute", max_known=2)
    for login in ("a", "b", "c"):
        bounded.record_success("10.0.0.1", login)
    for _ in range(2):
        bounded.record_failure("10.0.0.1", "x")
    bounded.check("10.0.0.1", "c")
    with pytest.raises(TooManyAttempts):
        bounded.check("10.0.0.1", "a")  # the oldest was forgotten


def test_a_password_change_takes_effect_at_once(tmp_path: Path) -> None:
    async def job(c: Container) -> None:
        account = await c.directory.create_account(login="acme", name="A", password="first-pw")
        assert (await c.authenticator.authenticate("acme", "first-pw", client="t")).id == account.id
        await c.directory.update_account(account.id, password="second-pw")
        with pytest.raises(AuthenticationFailed):
            await c.authenticator.authenticate("acme", "first-pw", client="t")
        await c.authenticator.authenticate("acme", "second-pw", client="t")

    run_on(make_settings(tmp_path), job)


def test_an_unknown_login_costs_an_argon2_verification_too(tmp_path: Path) -> None:
    """No shortcut that would tell an attacker which logins exist."""

    async def job(c: Container) -> None:
        await c.directory.create_account(login="acme", name="A", password="first-pw")
        counted: list[str] = []
        hasher = c.authenticator._hasher
        original = hasher.verify

        async def counting(stored: str, password: str) -> bool:
            counted.append(stored)
            return await original(stored, password)

        hasher.verify = counting  # type: ignore[method-assign,assignment]
        for login in ("acme", "nobody"):
            with pytest.raises(AuthenticationFailed):
                await c.authenticator.authenticate(login, "wrong-pw", client=login)
        assert len(counted) == 2
        assert all(stored.startswith("$argon2id$") for stored in counted)

    run_on(make_settings(tmp_path), job)


def test_cached_verification_is_used_after_the_first_success(tmp_path: Path) -> None:
    async def job(c: Container) -> int:
        await c.directory.create_account(login="acme", name="A", password="first-pw")
        calls = 0
        hasher = c.authenticator._hasher
        original = hasher.verify

        async def counting(stored: str, password: str) -> bool:
            nonlocal calls
            calls += 1
            return await original(stored, password)

        hasher.verify = counting  # type: ignore[method-assign,assignment]
        for _ in range(21):
            await c.authenticator.authenticate("acme", "first-pw", client="t")
        return calls

    assert run_on(make_settings(tmp_path), job) == 1


def test_simultaneous_logins_with_an_empty_cache_share_one_argon2_check(tmp_path: Path) -> None:
    """At start-up, or when an entry expires under load, one check runs, not fifty."""

    async def job(c: Container) -> tuple[int, int]:
        await c.directory.create_account(login="acme", name="A", password="first-pw")
        calls = 0
        hasher = c.authenticator._hasher
        original = hasher.verify

        async def counting(stored: str, password: str) -> bool:
            nonlocal calls
            calls += 1
            return await original(stored, password)

        hasher.verify = counting  # type: ignore[method-assign,assignment]
        accounts = await asyncio.gather(
            *(c.authenticator.authenticate("acme", "first-pw", client=f"c{i}") for i in range(50))
        )
        return calls, len({a.id for a in accounts})

    assert run_on(make_settings(tmp_path), job) == (1, 1)


def test_at_most_two_argon2_checks_run_at_once(tmp_path: Path) -> None:
    """A burst of wrong passwords queues instead of taking 64 MiB per request."""

    async def job(c: Container) -> int:
        await c.directory.create_account(login="acme", name="A", password="first-pw")
        running = peak = 0
        hasher = c.authenticator._hasher
        original = hasher.verify

        async def watching(stored: str, password: str) -> bool:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                await asyncio.sleep(0.01)
                return await original(stored, password)
            finally:
                running -= 1

        hasher.verify = watching  # type: ignore[method-assign,assignment]

        async def attempt(i: int) -> None:
            login = "acme" if i % 2 else "nobody"
            with pytest.raises(AuthenticationFailed):
                await c.authenticator.authenticate(login, f"wrong-{i}", client=f"c{i}")

        await asyncio.gather(*(attempt(i) for i in range(12)))
        return peak

    assert run_on(make_settings(tmp_path), job) == 2
