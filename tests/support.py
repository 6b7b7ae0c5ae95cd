"""Test support: settings, a real uvicorn server on loopback, seeded accounts, PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import uvicorn

from tests.openapi_conformance import OpenApiConformance
from voicemgmt.bootstrap import Container, build
from voicemgmt.config import Settings
from voicemgmt.domain.directory import Membership
from voicemgmt.web.app import create_app
from voicemgmt.web.serving import uvicorn_config

T = TypeVar("T")

POSTGRES_ADMIN_URL = os.environ.get(
    "VM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def make_settings(data_dir: Path, database_url: str = "", **overrides: Any) -> Settings:
    """Real argon2, at a low cost so that a test suite creating many users stays quick."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8 * 1024,
        "argon2_parallelism": 1,
        "secret_key": "test-secret-key-of-at-least-32-characters",
        "log_level": "warning",
        # PostgreSQL allows 100 connections in all; several suites may share it.
        "database_pool_size": 10,
    }
    values.update(overrides)
    return Settings(**values)


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(main())``, in a thread of its own when this one already runs a loop
    (the sync Playwright API keeps one running in the test's thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_awaited(main))
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(asyncio.run(_awaited(main)))
        except BaseException as exc:  # handed back to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


async def _awaited(main: Callable[[], Awaitable[T]]) -> T:
    return await main()


def run_on(settings: Settings, job: Callable[[Container], Awaitable[T]]) -> T:
    """Run ``job`` against a fresh container on the same database, then close it (without
    telephony, like the CLI: it may run beside a SIP server with the same settings)."""

    async def main() -> T:
        container = build(settings, telephony=False)
        try:
            await container.start()
            return await job(container)
        finally:
            await container.close()

    return run_async(main)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """The real application under uvicorn, in a thread, on a free loopback port (or ``port``:
    a restarted server where its clients expect it)."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.settings = settings
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.container = build(settings)
        self.app = create_app(self.container)
        self._conformance: OpenApiConformance | None = None
        # the options ``voicemgmt serve`` runs with (proxies, head limits), on loopback
        config = uvicorn_config(
            self.app,
            settings,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            await self._server.serve()

        asyncio.run(serve())

    def call_soon(
        self, job: Callable[[Container], Coroutine[Any, Any, T]], timeout: float = 10
    ) -> T:
        """Run ``job`` on the running server's own event loop and container (for tests that
        must act as a part of the platform, e.g. publish an event of a future data source)."""
        assert self._loop is not None, "the server is not running"
        future = asyncio.run_coroutine_threadsafe(job(self.container), self._loop)
        return future.result(timeout)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    @property
    def conformance(self) -> OpenApiConformance:
        """What ``/openapi.json`` says, and which operations and statuses were answered."""
        if self._conformance is None:
            self._conformance = OpenApiConformance(self.app.openapi())
        return self._conformance

    def client(self, *, source: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client; ``source`` picks another loopback address as a different client.

        Every answer it gets is checked against ``/openapi.json`` (``OpenApiConformance``).
        """
        transport = httpx.HTTPTransport(local_address=source) if source else None
        hooks = {"response": [self.conformance.check]}
        return httpx.Client(
            base_url=self.base_url, transport=transport, timeout=10, event_hooks=hooks, **kwargs
        )


def token_for(server: LiveServer, account: SeededAccount, **who: Any) -> str:
    """An SSO token of ``account`` (guide §1.1), e.g. ``token_for(s, acme, id_agent=1)``."""
    with server.client() as client:
        answer = client.post("/vm/token", auth=account.auth, json=who)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def live_server(settings: Settings, port: int | None = None) -> Iterator[LiveServer]:
    server = LiveServer(settings, port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class SeededAccount:
    """An account with two operators, a supervisor, a group and a number, all known."""

    id: int
    login: str
    password: str
    id_agent: int
    agent_email: str
    agent_password: str
    other_id_agent: int
    id_admin: int
    admin_email: str
    id_group: int
    number: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.login, self.password)


async def seed_account(container: Container, login: str, number: str) -> SeededAccount:
    directory = container.directory
    password = f"{login}-api-password"
    account = await directory.create_account(login=login, name=f"{login} Ltd", password=password)
    group = await directory.create_group(account.id, name="Support")
    agent = await directory.create_operator(
        account.id,
        name="Ana",
        email=f"ana@{login}.example",
        password="ana-password",
        memberships=[Membership(group.id, 1)],
    )
    other = await directory.create_operator(
        account.id, name="Bob", email=f"bob@{login}.example", memberships=[Membership(group.id, 2)]
    )
    admin = await directory.create_supervisor(
        account.id, name="Sam", email=f"sam@{login}.example", password="sam-password"
    )
    await directory.create_number(account.id, e164=number, group_id=group.id, label="Hotline")
    return SeededAccount(
        id=account.id,
        login=login,
        password=password,
        id_agent=agent.id,
        agent_email=agent.email,
        agent_password="ana-password",
        other_id_agent=other.id,
        id_admin=admin.id,
        admin_email=admin.email,
        id_group=group.id,
        number=number,
    )


def seed_two_accounts(settings: Settings) -> tuple[SeededAccount, SeededAccount]:
    async def job(container: Container) -> tuple[SeededAccount, SeededAccount]:
        return (
            await seed_account(container, "acme", "33170200200"),
            await seed_account(container, "globex", "33170200201"),
        )

    return run_on(settings, job)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards.

    Skips when the server is absent on a developer's machine; under CI=true that is a failure.
    """
    name = f"vm_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        run_async(lambda: admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        run_async(lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
