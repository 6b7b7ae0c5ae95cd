"""The storage port on both backends: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from tests.support import make_settings, run_on
from voicemgmt.adapters.sql.engine import migrate
from voicemgmt.adapters.sql.tables import metadata
from voicemgmt.bootstrap import Container
from voicemgmt.domain.directory import Membership, UserRef, UserType
from voicemgmt.domain.errors import (
    Conflict,
    DuplicateEmail,
    DuplicateGroupName,
    DuplicateLogin,
    GroupInUse,
    InvalidInput,
    NoSuchGroup,
    NoSuchOperator,
    NumberAlreadyRouted,
)
from voicemgmt.domain.tokens import token_digest

T = TypeVar("T")


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Callable[[Callable[[Container], Awaitable[T]]], T]:
    settings = make_settings(tmp_path, database_url)

    def runner(job: Callable[[Container], Awaitable[T]]) -> T:
        return run_on(settings, job)

    return runner


Runner = Callable[[Callable[[Container], Awaitable[Any]]], Any]


def test_migrations_build_exactly_the_declared_schema(run: Runner) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async def job(container: Container) -> list[Any]:
        await migrate(container.engine)  # a second run changes nothing
        async with container.engine.connect() as connection:
            return await connection.run_sync(differences)

    assert run(job) == []


def test_the_directory_round_trips(run: Runner) -> None:
    async def job(c: Container) -> None:
        d = c.directory
        account = await d.create_account(login="acme", name="Acmé Ltd", password="pw-123456")
        sales = await d.create_group(account.id, name="Sales", settings={"ring": 20, "é": [1]})
        care = await d.create_group(account.id, name="Care")
        ana = await d.create_operator(
            account.id,
            name="Ana Ñúñez",
            email="Ana@Acme.Example",
            password="pw-123456",
            memberships=[Membership(care.id, 2), Membership(sales.id, 1)],
        )
        sam = await d.create_supervisor(account.id, name="Sam", email="sam@acme.example")
        number = await d.create_number(
            account.id, e164="+33 1 70 20 02 00", group_id=sales.id, label="Ventes"
        )
        assert await d.operator(account.id, ana.id) == ana
        assert [m.group_id for m in ana.memberships] == [sales.id, care.id]
        assert (await d.operators(account.id))[0].memberships == (
            Membership(sales.id, 1),
            Membership(care.id, 2),
        )
        assert await d.supervisor(account.id, sam.id) == sam
        assert (await d.group(account.id, sales.id)).settings == {"ring": 20, "é": [1]}
        assert number.e164 == "33170200200"
        assert await d.number(account.id, "33170200200") == number
        assert (await d.account(account.id)).name == "Acmé Ltd"

    run(job)


def test_updates_and_deletes(run: Runner) -> None:
    async def job(c: Container) -> None:
        d = c.directory
        account = await d.create_account(login="acme", name="Acme", password="pw-123456")
        group = await d.create_group(account.id, name="Sales")
        ana = await d.create_operator(account.id, name="Ana", email="ana@acme.example")
        ana = await d.update_operator(
            account.id, ana.id, name="Ana B", memberships=[Membership(group.id, 3)]
        )
        assert (await d.operator(account.id, ana.id)).memberships == (Membership(group.id, 3),)
        updated = await d.update_account(
            account.id,
            crm_url="https://crm.acme.example/open?src=vm",
            allowed_origins=["https://CRM.acme.example", "https://crm.acme.example:8443"],
        )
        assert updated.allowed_origins == (
            "https://crm.acme.example",
            "https://crm.acme.example:8443",
        )
        assert (await d.account(account.id)).crm_url == "https://crm.acme.example/open?src=vm"
        await d.delete_group(account.id, group.id)
        assert (await d.operator(account.id, ana.id)).memberships == ()
        await d.delete_operator(account.id, ana.id)
        with pytest.raises(NoSuchOperator):
            await d.operator(account.id, ana.id)

    run(job)


def test_identifiers_are_never_reused(run: Runner) -> None:
    async def job(c: Container) -> None:
        d = c.directory
        account = await d.create_account(login="acme", name="Acme", password="pw-123456")
        first = await d.create_operator(account.id, name="A", email="a@acme.example")
        await d.delete_operator(account.id, first.id)
        second = await d.create_operator(account.id, name="B", email="b@acme.example")
        assert second.id > first.id

    run(job)


def test_uniqueness_rules(run: Runner) -> None:
    async def job(c: Container) -> None:
        d = c.directory
        acme = await d.create_account(login="acme", name="Acme", password="pw-123456")
        globex = await d.create_account(login="globex", name="Globex", password="pw-123456")
        with pytest.raises(DuplicateLogin):
            await d.create_account(login="acme", name="Other", password="pw-123456")
        await d.create_operator(acme.id, name="A", email="ana@x.example")
        with pytest.raises(DuplicateEmail):
            await d.create_operator(acme.id, name="A2", email=" ANA@x.example ")
        # The same person may work for two accounts.
        await d.create_operator(globex.id, name="A", email="ana@x.example")
        group = await d.create_group(acme.id, name="Sales")
        with pytest.raises(DuplicateGroupName):
            await d.create_group(acme.id, name="sales")
        await d.create_number(acme.id, e164="33170200200", group_id=group.id)
        other = await d.create_group(globex.id, name="Sales")
        with pytest.raises(NumberAlreadyRouted):
            await d.create_number(globex.id, e164="+33170200200", group_id=other.id)
        with pytest.raises(InvalidInput):
            await d.create_number(globex.id, e164="33170200201", group_id=group.id)
        with pytest.raises(GroupInUse):
            await d.delete_group(acme.id, group.id)
        with pytest.raises(NoSuchGroup):
            await d.delete_group(globex.id, group.id)

    run(job)


def test_a_concurrent_duplicate_is_refused_by_the_database(run: Runner) -> None:
    """Two requests racing past the service's check: the unique constraint decides."""

    async def job(c: Container) -> list[Any]:
        account = await c.directory.create_account(login="acme", name="A", password="pw-123456")

        async def create() -> Any:
            return await c.directory.create_operator(
                account.id, name="Ana", email="ana@acme.example"
            )

        return await asyncio.gather(*(create() for _ in range(5)), return_exceptions=True)

    results = run(job)
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(created) == 1
    assert refused
    assert all(isinstance(r, Conflict) for r in refused)


def test_tokens_store(run: Runner) -> None:
    async def job(c: Container) -> None:
        account = await c.directory.create_account(login="acme", name="A", password="pw-123456")
        user = UserRef(account.id, UserType.AGENT, 7)
        now = datetime.now(UTC).replace(microsecond=0)
        async with c.unit_of_work() as uow:
            old = await uow.tokens.add(
                user,
                digest=token_digest("a"),
                seed=b"s" * 32,
                ip="2001:db8::1",
                now=now,
                expires_at=now + timedelta(hours=1),
            )
            new = await uow.tokens.add(
                user,
                digest=token_digest("b"),
                seed=b"t" * 32,
                ip=None,
                now=now,
                expires_at=now + timedelta(hours=2),
            )
            await uow.commit()
        async with c.unit_of_work() as uow:
            found = await uow.tokens.by_digest(token_digest("a"))
            assert found == old
            assert found is not None
            assert found.expires_at.tzinfo is not None
            assert await uow.tokens.latest_live(user, now) == new
            await uow.tokens.revoke(new.id)
            latest = await uow.tokens.latest_live(user, now)
            assert latest is not None
            assert latest.id == old.id
            assert await uow.tokens.latest_live(user, now + timedelta(hours=3)) is None
            assert await uow.tokens.revoke_user(account.id, UserType.AGENT, 7) == 1
            assert await uow.tokens.purge_expired(now + timedelta(hours=3)) == 2
            # Not committed: leaving the unit of work rolls everything back.
        async with c.unit_of_work() as uow:
            still = await uow.tokens.by_digest(token_digest("b"))
            assert still is not None
            assert not still.revoked

    run(job)


def test_deleting_a_person_revokes_their_tokens(run: Runner) -> None:
    async def job(c: Container) -> None:
        from voicemgmt.services.tokens import TokenRequest

        d = c.directory
        account = await d.create_account(login="acme", name="A", password="pw-123456")
        ana = await d.create_operator(account.id, name="Ana", email="ana@acme.example")
        sam = await d.create_supervisor(account.id, name="Sam", email="sam@acme.example")
        agent_token = await c.tokens.issue(account, TokenRequest(UserType.AGENT, user_id=ana.id))
        admin_token = await c.tokens.issue(account, TokenRequest(UserType.ADMIN, user_id=sam.id))
        await d.delete_operator(account.id, ana.id)
        await d.delete_supervisor(account.id, sam.id)
        from voicemgmt.domain.errors import NoSuchToken

        for issued in (agent_token, admin_token):
            with pytest.raises(NoSuchToken):
                await c.tokens.resolve(issued.token)

    run(job)


def test_expired_tokens_are_purged_after_a_day(run: Runner) -> None:
    async def job(c: Container) -> tuple[int, int]:
        account = await c.directory.create_account(login="acme", name="A", password="pw-123456")
        user = UserRef(account.id, UserType.AGENT, 1)
        now = datetime.now(UTC)
        async with c.unit_of_work() as uow:
            for digest, expired_for in ((b"a", 2), (b"b", 0.5), (b"c", -1)):
                await uow.tokens.add(
                    user,
                    digest=token_digest(digest.decode()),
                    seed=b"s" * 32,
                    ip=None,
                    now=now - timedelta(days=3),
                    expires_at=now - timedelta(days=expired_for),
                )
            await uow.commit()
        purged = await c.tokens.purge_expired()
        async with c.unit_of_work() as uow:
            left = [await uow.tokens.by_digest(token_digest(d)) for d in ("a", "b", "c")]
        return purged, sum(t is not None for t in left)

    assert run(job) == (1, 2)


def test_deleting_an_account_removes_everything_in_it(run: Runner) -> None:
    async def job(c: Container) -> list[int]:
        from voicemgmt.adapters.sql.repository import count_rows

        d = c.directory
        account = await d.create_account(login="acme", name="A", password="pw-123456")
        group = await d.create_group(account.id, name="Sales")
        await d.create_operator(
            account.id, name="Ana", email="ana@acme.example", memberships=[Membership(group.id)]
        )
        await d.create_supervisor(account.id, name="Sam", email="sam@acme.example")
        await d.create_number(account.id, e164="33170200200", group_id=group.id)
        await d.delete_account(account.id)
        tables = ("accounts", "groups", "operators", "memberships", "supervisors", "numbers")
        return [await count_rows(c.engine, table) for table in tables]

    assert run(job) == [0, 0, 0, 0, 0, 0]
