"""Test support for the coordination ports: the same body on the in-process and Redis stores.

Redis is the real server at 127.0.0.1:6379 (``VM_TEST_REDIS_URL``), each test under its own
key prefix, deleted afterwards; it is skipped when absent, except under CI=true where that is a
failure. A private ``redis-server`` (``RedisServer``) serves the tests that stop Redis.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from tests.support import IN_CI, free_port
from voicemgmt.adapters.coordination.memory import (
    MemoryHub,
    MemoryLeaseStore,
    MemoryMessenger,
    MemoryRegistry,
)
from voicemgmt.adapters.coordination.redis import RedisLeaseStore, RedisRegistry
from voicemgmt.adapters.coordination.redis_messenger import RedisMessenger
from voicemgmt.services.coordination import LeaseStore, Messenger, NodeRegistry

REDIS_URL = os.environ.get("VM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_reachable(url: str = REDIS_URL) -> None:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1).close()
    except OSError as exc:
        message = f"Redis is not reachable at {url}: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: Redis tests must run)")
        pytest.skip(message)


async def delete_keys(url: str, pattern: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=pattern)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class Stores:
    """Makes registries, lease stores and messengers of one kind that share one store (one
    Redis prefix, or one set of in-memory objects), as the nodes of one cluster would."""

    def __init__(self, kind: str, url: str = REDIS_URL) -> None:
        self.kind = kind
        self.url = url
        self.prefix = f"vmtest:{uuid.uuid4().hex[:12]}:"
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._memory: tuple[MemoryRegistry, MemoryLeaseStore, MemoryHub] | None = None

    def _shared(self) -> tuple[MemoryRegistry, MemoryLeaseStore, MemoryHub]:
        if self._memory is None:
            self._memory = (MemoryRegistry(), MemoryLeaseStore(), MemoryHub())
        return self._memory

    def registry(self) -> NodeRegistry:
        if self.kind == "memory":
            return self._shared()[0]
        registry = RedisRegistry(self.url, key_prefix=self.prefix)
        self._closers.append(registry.aclose)
        return registry

    def leases(self) -> LeaseStore:
        if self.kind == "memory":
            return self._shared()[1]
        leases = RedisLeaseStore(self.url, key_prefix=self.prefix)
        self._closers.append(leases.aclose)
        return leases

    async def messenger(self, node: str) -> Messenger:
        messenger: Messenger
        if self.kind == "memory":
            messenger = MemoryMessenger(self._shared()[2], node)
        else:
            messenger = RedisMessenger(self.url, node, key_prefix=self.prefix, block_seconds=0.5)
        self._closers.append(messenger.aclose)
        await messenger.start()
        return messenger

    def run(self, body: Callable[[Stores], Awaitable[None]], *, limit: float = 20) -> None:
        """``body`` on a fresh event loop; then everything closed and no task left behind."""

        async def main() -> None:
            try:
                async with asyncio.timeout(limit):
                    await body(self)
            finally:
                for close in reversed(self._closers):
                    await close()
                self._closers.clear()
            assert asyncio.all_tasks() == {asyncio.current_task()}

        asyncio.run(main())

    def clean(self) -> None:
        if self.kind == "redis":
            asyncio.run(delete_keys(self.url, self.prefix + "*"))


def stores_of(kind: str) -> Iterator[Stores]:
    """For a fixture: stores of that kind, their Redis keys deleted afterwards."""
    if kind == "redis":
        redis_reachable()
    made = Stores(kind)
    yield made
    made.clean()


class RedisServer:
    """A private ``redis-server`` on a free loopback port, without persistence, that a test
    may stop and start again (its data gone, as after a restart without persistence)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if IN_CI:
                pytest.fail("redis-server is not installed (scripts/install-test-system-deps.sh)")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="vm-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def kill(self) -> None:
        """Stop it at once, as a crash would (SIGKILL), and wait for it to be gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def private_redis() -> Iterator[RedisServer]:
    """For a fixture: a started private server, stopped and removed afterwards."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
