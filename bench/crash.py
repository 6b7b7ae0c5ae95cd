"""Benchmark: calls acknowledged vs records after a kill -9 under load (issue 14, item 1).

Run::

    .venv/bin/python bench/crash.py [--calls 200] [--rate 20] [--operators 20] [--talk 5]
                                    [--database postgresql+asyncpg://…]

What it does:

1. seeds one account (``--operators`` operators in two groups without wrap-up, one number)
   in a temporary data directory (SQLite) or in ``--database``;
2. starts ``voicemgmt serve`` (``VM_NODE=crash-bench``); through the public API only, the
   operators go online and a supervisor's event stream makes each offered operator answer at
   once and hang up ``--talk`` seconds later;
3. places simulated calls (``POST /api/v1/sim/calls``) at ``--rate`` per second, evenly spaced,
   and kills the server with SIGKILL as soon as ``--calls`` of them were acknowledged (201),
   with more requests in flight: by then some calls are talking, some ringing, some waiting;
4. starts the server again on the same database and the same ``VM_NODE``, times how long it
   takes to answer ``/healthz``, and reads every record through ``GET /api/v1/call-records``.

It prints: calls acknowledged, calls in flight at the kill (sent, no answer), records after the
restart, acknowledged calls without a record (goal: 0), records of calls never acknowledged
(in flight: allowed), the records closed by the restart (``node_died``) by outcome, and the
time to restart. Exits 1 if an acknowledged call has no record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from _support import Server, running_server
from acd_end_to_end import LOGIN, PASSWORD, seed, seed_settings
from voicemgmt.config import Settings

NODE = "crash-bench"


class Load:
    """Operators answering through a supervisor's stream; callers at a steady rate."""

    def __init__(self, server: Server, talk: float) -> None:
        self.base = server.base_url
        self.talk = talk
        self.http = httpx.AsyncClient(base_url=self.base, timeout=10)
        self.account = httpx.BasicAuth(LOGIN, PASSWORD)
        self.operators: dict[int, str] = {}  # id_op → token
        self.acknowledged: list[str] = []
        self.in_flight = 0
        self.answered = 0
        self.tasks: set[asyncio.Task[Any]] = set()

    async def prepare(self) -> str:
        listing = await self.http.get("/api/v1/operators?limit=1000", auth=self.account)
        for operator in listing.json()["items"]:
            got = await self.http.post(
                "/vm/token", auth=self.account, json={"id_agent": operator["id_agent"]}
            )
            self.operators[operator["id_agent"]] = got.json()["token"]
        admins = await self.http.get("/api/v1/supervisors", auth=self.account)
        got = await self.http.post(
            "/vm/token", auth=self.account, json={"id_admin": admins.json()["items"][0]["id_admin"]}
        )
        for token in self.operators.values():
            await self.http.put(
                "/api/v1/me/status", json={"status": "online"}, headers=_bearer(token)
            )
        number = (await self.http.get("/api/v1/numbers", auth=self.account)).json()["items"][0]
        self.spawn(self.listen(got.json()["token"]))
        return str(number["e164"])

    def spawn(self, job: Any) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def listen(self, token: str) -> None:
        url = f"ws://{self.base.removeprefix('http://')}/vm/events?token_session={token}"
        try:
            async with connect(url, proxy=None, max_size=2**22) as ws:
                async for raw in ws:
                    if '"call.offered"' in str(raw):
                        data = json.loads(raw)["data"]
                        self.spawn(self.take(data["id_call"], data["id_op"]))
        except Exception:  # the server was killed
            return

    async def take(self, call_id: str, operator_id: int) -> None:
        headers = _bearer(self.operators[operator_id])
        try:
            answer = await self.http.post(f"/api/v1/me/calls/{call_id}/answer", headers=headers)
            if answer.status_code != 200:
                return
            self.answered += 1
            await asyncio.sleep(self.talk)
            await self.http.post(f"/api/v1/me/calls/{call_id}/hangup", headers=headers)
        except httpx.HTTPError:
            return

    async def call(self, number: str) -> None:
        self.in_flight += 1
        try:
            answer = await self.http.post(
                "/api/v1/sim/calls",
                auth=self.account,
                json={"from": "33612345678", "to": number},
            )
        except httpx.HTTPError:
            return  # killed under this request: in flight
        if answer.status_code == 201:
            self.in_flight -= 1
            self.acknowledged.append(answer.json()["id_call"])

    async def run(self, number: str, calls: int, rate: float) -> None:
        start = time.monotonic()
        placed = 0
        while len(self.acknowledged) < calls:
            self.spawn(self.call(number))
            placed += 1
            await asyncio.sleep(max(0.0, start + placed / rate - time.monotonic()))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def records_of(base: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        offset = 0
        while True:
            page = await http.get(
                f"/api/v1/call-records?limit=1000&offset={offset}", auth=(LOGIN, PASSWORD)
            )
            items = page.json()["items"]
            found += items
            if len(items) < 1000:
                return found
            offset += len(items)


async def loaded_then_killed(server: Server, args: argparse.Namespace) -> Load:
    load = Load(server, args.talk)
    number = await load.prepare()
    await load.run(number, args.calls, args.rate)
    os.kill(server.pid, signal.SIGKILL)
    server.process.wait()
    for task in list(load.tasks):
        task.cancel()
    await asyncio.gather(*load.tasks, return_exceptions=True)
    await load.http.aclose()
    return load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--operators", type=int, default=20)
    parser.add_argument("--talk", type=float, default=5.0)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        settings = seed_settings(data_dir)
        env = {"VM_NODE": NODE, "VM_SECRET_KEY": "crash-bench-secret-key-of-32-characters!"}
        if args.database:
            settings = Settings(**{**settings.model_dump(), "database_url": args.database})
            env["VM_DATABASE_URL"] = args.database
        asyncio.run(seed(settings, args.operators, 2, 1))
        with running_server(data_dir, env) as server:
            load = asyncio.run(loaded_then_killed(server, args))
        (data_dir / "server.log").rename(data_dir / "killed.log")
        started = time.monotonic()
        with running_server(data_dir, env) as server:
            restart = time.monotonic() - started
            records = asyncio.run(records_of(server.base_url))
    by_id = {r["id_call"]: r for r in records}
    acknowledged = set(load.acknowledged)
    missing = acknowledged - set(by_id)
    unacknowledged = set(by_id) - acknowledged
    died = [r for r in records if r["disconnect_reason"] == "node_died"]
    print(
        f"python {sys.version.split()[0]}, database {'PostgreSQL' if args.database else 'SQLite'}"
    )
    print(f"calls acknowledged (201) before the kill  {len(acknowledged)}")
    print(f"calls in flight at the kill                {load.in_flight}")
    print(f"answered by operators before the kill      {load.answered}")
    print(f"records after the restart                  {len(records)}")
    print(f"acknowledged calls without a record        {len(missing)}   (goal: 0)")
    print(f"records of calls in flight (no 201 seen)   {len(unacknowledged)}")
    print(f"duplicate records                          {len(records) - len(by_id)}")
    outcomes = Counter(r["outcome"] for r in died)
    print(
        f"closed at restart (node_died)              {len(died)} {dict(sorted(outcomes.items()))}"
    )
    print(f"restart to /healthz (process start incl.)  {restart:.2f} s")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
