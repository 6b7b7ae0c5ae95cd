"""Benchmark: webhook deliveries per second, and the server CPU that webhooks add per call.

Run::

    .venv/bin/python bench/webhooks.py [--events 20000] [--calls 2000]
                                       [--rate 100] [--seconds 10] [--operators 100]
                                       [--skip-cpu] [--database postgresql+asyncpg://…]

1. **Deliveries/s.** A fast receiver (a minimal HTTP/1.1 server answering ``204``, in its own
   process) and, in this process, the platform's container with the webhook dispatcher
   started (SQLite by default, or ``--database``). One subscription (every kind) is created,
   then ``--events`` events of ``--calls`` different calls are published on the account's
   stream; the figure is events delivered (``2xx`` stored in the outbox) per second, from
   the first publication to the last delivery: recording into the outbox, claiming, signing
   (HMAC-SHA256), the POST, and storing the outcome all count. Goal: at least 1,000/s.
2. **CPU per call.** ``bench/acd_end_to_end.py``'s load (a server in its own process, operators
   answering simulated calls through the API) at ``--rate`` calls/s for ``--seconds``, run
   twice on fresh data: without webhooks, then with one subscription (every kind) to the fast
   receiver (``--kinds`` to name fewer). The figure is the server's CPU seconds per ended
   call in each run, and the difference in percent. Goal: at most 10 %. The CPU spent
   draining the outbox after the stage, if it fell behind, is added to the second run.

A benchmark never gates: missing a goal still exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

import acd_end_to_end as e2e
from _support import free_port, process_seconds, running_server
from voicemgmt.adapters.sql.tables import webhook_deliveries
from voicemgmt.bootstrap import build
from voicemgmt.config import Settings

GOAL_DELIVERIES = 1000.0
GOAL_CPU_PERCENT = 10.0

RECEIVER = r"""
import asyncio, sys

ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def start_receiver() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        raise RuntimeError("the receiver did not start")
    return process, f"http://127.0.0.1:{port}/hook"


# --- 1. deliveries per second ------------------------------------------------------------------


async def deliveries_per_second(
    data_dir: Path, database_url: str, url: str, events: int, calls: int
) -> tuple[float, int, float]:
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        log_level="warning",
        argon2_time_cost=1,
        argon2_memory_kib=8 * 1024,
        argon2_parallelism=1,
        webhooks_allow_http=True,
        database_pool_size=20,
        webhook_concurrency=int(os.environ.get("BENCH_CONCURRENCY", "100")),
    )
    container = build(settings)
    await container.start(serving=True)
    try:
        account = await container.directory.create_account(
            login="bench", name="Bench", password="bench-password"
        )
        await container.webhooks.allow_private_targets(account.id, True)
        await container.webhooks.create(account.id, url=url)
        cpu_before = time.process_time()
        started = time.perf_counter()
        batch = 100
        for first in range(0, events, batch):
            items = [
                ("call.ivr_variable", {"id_call": f"c{n % calls}", "name": "n", "value": str(n)})
                for n in range(first, min(events, first + batch))
            ]
            await container.bus.publish_many(account.id, items, datetime.now(UTC))
            await asyncio.sleep(0)
        delivered = 0
        deadline = time.perf_counter() + 600
        count = (
            select(func.count())
            .select_from(webhook_deliveries)
            .where(webhook_deliveries.c.state == "delivered")
        )
        while delivered < events and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
            async with container.engine.connect() as connection:
                delivered = int(await connection.scalar(count) or 0)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        return delivered / elapsed, delivered, cpu / max(delivered, 1) * 1e6
    finally:
        await container.close()


# --- 2. CPU per call ---------------------------------------------------------------------------


async def subscribe(data_dir: Path, url: str, kinds: list[str]) -> None:
    settings = e2e.seed_settings(data_dir).model_copy(update={"webhooks_allow_http": True})
    container = build(settings)
    try:
        await container.start()
        account = await container.directory.account_by_login(e2e.LOGIN)
        await container.webhooks.allow_private_targets(account.id, True)
        await container.webhooks.create(account.id, url=url, events=kinds)
    finally:
        await container.close()


async def pending_webhooks(server: Any) -> int:
    """Deliveries still pending in the outbox (read through the API)."""
    pool = e2e.HttpPool(server.port, 1)
    await pool.open()
    try:
        headers = e2e.basic(e2e.LOGIN, e2e.PASSWORD)
        _status, body = await pool.request("GET", "/api/v1/webhooks", headers)
        total = 0
        for hook in json.loads(body)["items"]:
            path = f"/api/v1/webhooks/{hook['id_webhook']}/deliveries?state=pending&limit=1000"
            _status, body = await pool.request("GET", path, headers)
            total += len(json.loads(body)["items"])
        return total
    finally:
        await pool.close()


def cpu_per_call(args: argparse.Namespace, url: str | None) -> tuple[float, int, int]:
    """Server CPU seconds per ended call at ``args.rate``; with ``url``, one subscription."""
    with tempfile.TemporaryDirectory(prefix="vm-bench-webhooks-") as tmp:
        data_dir = Path(tmp)
        asyncio.run(e2e.seed(e2e.seed_settings(data_dir), args.operators, 10, 10))
        env: dict[str, str] = {}
        if url is not None:
            asyncio.run(subscribe(data_dir, url, args.kinds.split(",")))
            env["VM_WEBHOOKS_ALLOW_HTTP"] = "true"
        with running_server(data_dir, env=env) as server:
            stages, _figures, _driver = asyncio.run(
                e2e.measure(server, [args.rate], args.seconds, 16, 0.2)
            )
            (stage,) = stages
            cpu = stage.server_cpu * stage.cpu_wall
            backlog = 0
            if url is not None:
                before = process_seconds(server.pid)
                backlog = asyncio.run(pending_webhooks(server))
                while asyncio.run(pending_webhooks(server)):
                    time.sleep(0.2)
                cpu += process_seconds(server.pid) - before if backlog else 0.0
        return cpu / max(stage.ended, 1), stage.ended, backlog


# --- entry point -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=2_000, help="distinct calls among them")
    parser.add_argument("--rate", type=float, default=100.0, help="calls/s for the CPU part")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--operators", type=int, default=100)
    parser.add_argument("--database", default="", help="SQLAlchemy URL (default SQLite)")
    parser.add_argument("--skip-cpu", action="store_true", help="only deliveries/s")
    parser.add_argument(
        "--kinds", default="*", help="the CPU part's subscription: event kinds, comma-separated"
    )
    args = parser.parse_args(argv)
    for name in [k for k in os.environ if k.startswith("VM_")]:
        del os.environ[name]
    print(f"webhooks bench on {os.cpu_count()} CPUs (shared with the receiver and the client)")
    receiver, url = start_receiver()
    try:
        with tempfile.TemporaryDirectory(prefix="vm-bench-webhooks-") as tmp:
            rate, delivered, micros = asyncio.run(
                deliveries_per_second(Path(tmp), args.database, url, args.events, args.calls)
            )
        verdict = "meets" if rate >= GOAL_DELIVERIES else "misses"
        print(
            f"deliveries: {delivered} events of {args.calls} calls delivered, signed, to a local "
            f"receiver at {rate:,.0f}/s ({micros:,.0f} µs of CPU each in the platform's "
            f"process); {verdict} the goal of {GOAL_DELIVERIES:,.0f}/s"
        )
        if args.skip_cpu:
            return 0
        without, calls_a, _ = cpu_per_call(args, None)
        with_hook, calls_b, backlog = cpu_per_call(args, url)
        extra = (with_hook - without) / without * 100 if without else float("nan")
        verdict = "meets" if extra <= GOAL_CPU_PERCENT else "misses"
        print(
            f"server CPU per call at {args.rate:g} calls/s: {without * 1000:.2f} ms without "
            f"webhooks ({calls_a} calls), {with_hook * 1000:.2f} ms with one subscription to "
            f"{args.kinds} "
            f"({calls_b} calls; outbox backlog at the stage's end: {backlog}); "
            f"{extra:+.1f} %, {verdict} the goal of at most {GOAL_CPU_PERCENT:g} %"
        )
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
