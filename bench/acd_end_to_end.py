"""Benchmark (b): the ACD end to end, through the HTTP API and the event stream.

Run::

    .venv/bin/python bench/acd_end_to_end.py [--rates 100,200,400,800] [--seconds 10]
                                             [--operators 1000] [--groups 100] [--numbers 100]
                                             [--talk 0.5] [--connections 64] [--banners 0]

What it does, in order:

1. seeds, in a temporary data directory (SQLite), one account with ``--operators`` operators in
   ``--groups`` groups (each operator at tier 1 in its own group and tier 2 in the next one;
   groups without wrap-up, so that an operator can take the next call at once), a supervisor
   and ``--numbers`` numbers spread over the groups; directly through the directory service,
   before the server starts, with a low argon2 cost (operators get no password at all);
2. starts ``voicemgmt serve`` as a separate process on a free loopback port, with the
   simulated switch's prompts and customer delays at 0;
3. from this process, through the public API only: gets every operator a token
   (``POST /vm/token``), sets them online (``PUT /api/v1/me/status``) and opens ONE supervisor
   event stream (``/vm/events``); each ``call.offered`` seen there makes its operator answer
   at once (``POST /api/v1/me/calls/{id}/answer``) and hang up ``--talk`` seconds later;
4. places simulated calls (``POST /api/v1/sim/calls``) at each rate of ``--rates`` for
   ``--seconds``, evenly spaced, after a short warm-up; after each stage it waits for that
   stage's calls to end before the next one;
   With ``--banners N``, the first N operators also keep their own event stream open, as
   their banners would (each reads its frames and resumes with ``after`` if closed);
5. prints, per stage: calls placed, carried calls/s (calls ended ``answered`` / the time from
   the stage's first placement to its last end, less the talk time), the offer latency
   (placement sent → its ``call.offered`` frame received) p50/p99, failures, and the CPU each
   side used.

The HTTP client is a minimal HTTP/1.1 keep-alive client on asyncio streams, not httpx: client
and server share the machine (2 cores on the reference box) and httpx would spend about 1 ms
of CPU per request, more than the server does; this client spends a few tens of µs. The
frames of the event stream are parsed only when they are offers or ends.

A benchmark never gates: missing the goal still exits 0. Only errors (the server did not
start, the event stream could not be opened) give a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from _support import (
    HOST,
    Server,
    ServerFailed,
    machine_busy_seconds,
    process_seconds,
    running_server,
)
from voicemgmt.bootstrap import build
from voicemgmt.config import Settings
from voicemgmt.domain.directory import Membership

LOGIN, PASSWORD = "bench", "bench-api-password"
GOAL_RATE = 500.0
GOAL_P99_MS = 20.0
WARMUP_RATE, WARMUP_SECONDS = 50, 2.0
DRAIN_SECONDS = 30.0
REQUEST_TIMEOUT = 30.0
KEEP_ALIVE_SAFE = 3.0  # seconds: an idle connection older than this is replaced before use
FAILURE_EXAMPLES = 3


# --- seeding, before the server starts -------------------------------------------------------


def seed_settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        argon2_time_cost=1,
        argon2_memory_kib=8 * 1024,
        argon2_parallelism=1,
        log_level="warning",
    )


def number_of(index: int) -> str:
    return f"33170200{index:03d}" if index < 1000 else f"3317021{index:04d}"


async def seed(settings: Settings, operators: int, groups: int, numbers: int) -> None:
    container = build(settings)
    try:
        await container.start()
        directory = container.directory
        account = await directory.create_account(login=LOGIN, name="Bench", password=PASSWORD)
        group_ids = [
            (
                await directory.create_group(
                    account.id, name=f"Group {g + 1}", settings={"wrap_up": 0}
                )
            ).id
            for g in range(groups)
        ]
        for n in range(operators):
            home = n % groups
            memberships = [Membership(group_ids[home], 1)]
            if groups > 1:
                memberships.append(Membership(group_ids[(home + 1) % groups], 2))
            await directory.create_operator(
                account.id,
                name=f"Operator {n + 1}",
                email=f"op{n + 1}@bench.example",
                memberships=memberships,
            )
        await directory.create_supervisor(account.id, name="Sam", email="sam@bench.example")
        for n in range(numbers):
            await directory.create_number(
                account.id, e164=number_of(n), group_id=group_ids[n % groups]
            )
    finally:
        await container.close()


# --- CPU, from /proc ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    at: float
    client: float
    server: float
    machine: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSample:
        return cls(
            time.perf_counter(),
            time.process_time(),
            process_seconds(server_pid),
            machine_busy_seconds(),
        )


# --- a minimal HTTP/1.1 keep-alive client ------------------------------------------------------


class HttpError(Exception):
    pass


class HttpPool:
    """``size`` keep-alive connections; a request takes a free one (waiting if none is)."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.size = size
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self.writers: set[asyncio.StreamWriter] = set()
        self.used: dict[asyncio.StreamWriter, float] = {}  # when each last answered

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(HOST, self.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.writers.add(writer)
        self.used[writer] = time.monotonic()
        return reader, writer

    async def open(self) -> None:
        for _ in range(self.size):
            self.idle.put_nowait(await self._connect())

    async def close(self) -> None:
        writers = list(self.writers)
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def request(
        self,
        method: str,
        path: str,
        headers: bytes,
        body: bytes = b"",
        sent: list[float] | None = None,
    ) -> tuple[int, bytes]:
        """(status, body); ``sent`` receives the time the request was written."""
        head = (
            f"{method} {path} HTTP/1.1\r\nhost: {HOST}\r\ncontent-length: {len(body)}\r\n".encode()
            + headers
            + b"\r\n"
        )
        reader, writer = connection = await self.idle.get()
        if reader.at_eof() or time.monotonic() - self.used.get(writer, 0.0) > KEEP_ALIVE_SAFE:
            # The server closes a connection idle for its keep-alive timeout (uvicorn: 5 s).
            self.writers.discard(writer)
            self.used.pop(writer, None)
            writer.close()
            reader, writer = connection = await self._connect()
        try:
            if sent is not None:
                sent.append(time.perf_counter())
            writer.write(head + body)
            async with asyncio.timeout(REQUEST_TIMEOUT):
                response_head = await reader.readuntil(b"\r\n\r\n")
                status = int(response_head[9:12])
                lowered = response_head.lower()
                start = lowered.find(b"\r\ncontent-length:")
                if start < 0:
                    raise HttpError(f"no content-length in {response_head[:200]!r}")
                end = lowered.index(b"\r\n", start + 2)
                content = await reader.readexactly(int(lowered[start + 17 : end]))
            if b"\r\nconnection: close" in lowered:
                raise HttpError("the server closed the connection")
        except BaseException as exc:
            self.writers.discard(writer)
            writer.close()
            if not isinstance(exc, asyncio.CancelledError):  # a fresh connection in its place
                self.idle.put_nowait(await self._connect())
            raise
        self.used[writer] = time.monotonic()
        self.idle.put_nowait(connection)
        return status, content


def seq_of(frame: str) -> int | None:
    """The ``seq`` of an event-stream frame without decoding it all; None if it has none."""
    start = frame.find('"seq":')
    if start < 0:
        return None
    end = frame.find(",", start)
    try:
        return int(frame[start + 6 : end if end >= 0 else None].strip("} "))
    except ValueError:
        return None


def basic(login: str, password: str) -> bytes:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return f"authorization: Basic {token}\r\ncontent-type: application/json\r\n".encode()


def bearer(token: str) -> bytes:
    return f"authorization: Bearer {token}\r\ncontent-type: application/json\r\n".encode()


# --- the load ----------------------------------------------------------------------------------


def percentile_ms(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1] * 1000


@dataclass
class Stage:
    name: str
    rate: float
    seconds: float
    placed: int = 0
    latencies: list[float] = field(default_factory=list)  # placement sent → offer seen
    lags: list[float] = field(default_factory=list)  # due → placement sent (client backlog)
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    talk: float = 0.0
    first_sent: float = math.inf
    last_end: float = 0.0
    all_placed: bool = False
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    placing_seconds: float = 0.0
    cpu_wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    other_cpu: float = 0.0

    @property
    def ended(self) -> int:
        return sum(self.outcomes.values())

    @property
    def unfinished(self) -> int:
        return self.placed - self.ended

    @property
    def carried(self) -> float:
        """Calls ended answered per second: the talk time every call adds is taken out."""
        span = self.last_end - self.first_sent - self.talk
        return self.outcomes["answered"] / span if span > 0 else 0.0

    def end(self, outcome: str, at: float) -> None:
        self.outcomes[outcome] += 1
        self.last_end = max(self.last_end, at)
        self.check_drained()

    def check_drained(self) -> None:
        if self.all_placed and self.unfinished <= 0:
            self.drained.set()

    def fail(self, kind: str, example: str) -> None:
        self.failures[kind] += 1
        if len(self.examples) < FAILURE_EXAMPLES:
            self.examples.append(f"{kind}: {example[:200]}")


@dataclass
class _Call:
    stage: Stage
    sent: float
    offered: bool = False


class Driver:
    """Operators and callers through the API; one supervisor stream tells who rings."""

    def __init__(self, server: Server, connections: int, talk: float, banners: int = 0) -> None:
        self.server = server
        self.banners = banners
        self.banner_frames = 0
        self.banner_reconnects = 0
        self.banner_problems: Counter[str] = Counter()
        self.banner_tasks: list[asyncio.Task[None]] = []
        self.banners_ready = 0
        self.operator_tokens: dict[int, str] = {}
        self.http = HttpPool(server.port, connections)
        self.talk = talk
        self.account = basic(LOGIN, PASSWORD)
        self.operators: dict[int, bytes] = {}
        self.calls: dict[str, _Call] = {}
        self.early_offers: dict[str, float] = {}  # offers seen before the placement answered
        self.early_ends: dict[str, tuple[str, float]] = {}
        self.jobs: set[asyncio.Task[Any]] = set()
        self.current: Stage | None = None
        self.stream_reconnects = 0
        self.stream_problems: list[str] = []
        self.last_seq: int | None = None
        self.ready = asyncio.Event()
        self.listener: asyncio.Task[None] | None = None
        self.supervisor_token = ""

    # set-up

    async def call_api(self, method: str, path: str, headers: bytes, body: Any = None) -> Any:
        payload = b"" if body is None else json.dumps(body).encode()
        status, content = await self.http.request(method, path, headers, payload)
        if status not in (200, 201):
            raise ServerFailed(f"{method} {path}: HTTP {status} {content[:200]!r}")
        return json.loads(content)

    async def listing(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = await self.call_api(
                "GET", f"{path}?limit=1000&offset={len(items)}", self.account
            )
            items.extend(page["items"])
            if len(page["items"]) < 1000:
                return items

    async def prepare(self) -> None:
        await self.http.open()
        self.numbers = [n["e164"] for n in await self.listing("/api/v1/numbers")]
        operator_ids = [o["id_agent"] for o in await self.listing("/api/v1/operators")]
        admins = await self.listing("/api/v1/supervisors")
        answer = await self.call_api(
            "POST", "/vm/token", self.account, {"id_admin": admins[0]["id_admin"]}
        )
        self.supervisor_token = answer["token"]

        async def token_for(id_agent: int) -> None:
            got = await self.call_api("POST", "/vm/token", self.account, {"id_agent": id_agent})
            self.operators[id_agent] = bearer(got["token"])
            self.operator_tokens[id_agent] = got["token"]

        await asyncio.gather(*(token_for(o) for o in operator_ids))
        self.listener = asyncio.create_task(self.listen())
        async with asyncio.timeout(REQUEST_TIMEOUT):
            await self.ready.wait()
        banner_ready = asyncio.Event()
        for id_agent in list(self.operator_tokens)[: self.banners]:
            self.banner_tasks.append(
                asyncio.create_task(self.banner(self.operator_tokens[id_agent], banner_ready))
            )
        if self.banners:
            async with asyncio.timeout(REQUEST_TIMEOUT * 4):
                await banner_ready.wait()
        await asyncio.gather(
            *(
                self.call_api("PUT", "/api/v1/me/status", headers, {"status": "online"})
                for headers in self.operators.values()
            )
        )

    # the event stream

    async def listen(self) -> None:
        while True:
            url = f"ws://{HOST}:{self.server.port}/vm/events?token_session={self.supervisor_token}"
            if self.last_seq is not None:
                url += f"&after={self.last_seq}"
            try:
                async with connect(
                    url, compression=None, max_queue=None, max_size=2**22, proxy=None
                ) as ws:
                    await self._read(ws)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                self.stream_problems.append(f"closed with code {code}")
                if code == 4410:
                    self.last_seq = None  # events lost: offers in the gap go unanswered
            except OSError as exc:
                self.stream_problems.append(f"{type(exc).__name__}: {exc}")
                if not self.ready.is_set():
                    raise
            self.stream_reconnects += 1
            await asyncio.sleep(0.05)

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            if isinstance(raw, bytes):
                raw = raw.decode()
            if '"call.offered"' in raw:
                frame = json.loads(raw)
                self.last_seq = frame["seq"]
                self.offered(frame["data"]["id_call"], frame["data"]["id_op"])
            elif '"call.ended"' in raw:
                frame = json.loads(raw)
                self.last_seq = frame["seq"]
                record = frame["data"]["record"]
                self.ended(record["id_call"], record["outcome"])
            elif '"kind":"hello"' in raw:
                if self.last_seq is None:
                    self.last_seq = json.loads(raw)["seq"]
                self.ready.set()
            else:
                self.last_seq = seq_of(raw) or self.last_seq

    async def banner(self, token: str, all_ready: asyncio.Event) -> None:
        """One operator's own event stream, read as a banner would; resumes after a close."""
        last_seq: int | None = None
        counted = False
        while True:
            url = f"ws://{HOST}:{self.server.port}/vm/events?token_session={token}"
            if last_seq is not None:
                url += f"&after={last_seq}"
            try:
                async with connect(
                    url, compression=None, max_queue=None, max_size=2**22, proxy=None
                ) as ws:
                    async for raw in ws:
                        text = raw.decode() if isinstance(raw, bytes) else raw
                        last_seq = seq_of(text) or last_seq
                        if '"kind":"hello"' in text:
                            if not counted:
                                counted = True
                                self.banners_ready += 1
                                if self.banners_ready >= self.banners:
                                    all_ready.set()
                        else:
                            self.banner_frames += 1
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                self.banner_problems[f"closed with code {code}"] += 1
                if code == 4410:
                    last_seq = None
            except OSError as exc:
                self.banner_problems[type(exc).__name__] += 1
            self.banner_reconnects += 1
            await asyncio.sleep(0.05)

    def offered(self, call_id: str, id_op: int) -> None:
        now = time.perf_counter()
        call = self.calls.get(call_id)
        if call is None:
            self.early_offers.setdefault(call_id, now)
        elif not call.offered:
            call.offered = True
            call.stage.latencies.append(now - call.sent)
        headers = self.operators.get(id_op)
        if headers is not None:
            self.spawn(self.answer(call_id, headers))

    def ended(self, call_id: str, outcome: str) -> None:
        now = time.perf_counter()
        call = self.calls.pop(call_id, None)
        if call is None:
            self.early_ends[call_id] = (outcome, now)
            return
        call.stage.end(outcome, now)

    def spawn(self, job: Any) -> None:
        task = asyncio.create_task(job)
        self.jobs.add(task)
        task.add_done_callback(self.jobs.discard)

    # operators

    async def answer(self, call_id: str, headers: bytes) -> None:
        stage = self.current
        try:
            status, content = await self.http.request(
                "POST", f"/api/v1/me/calls/{call_id}/answer", headers
            )
        except (OSError, HttpError, TimeoutError, asyncio.IncompleteReadError) as exc:
            if stage is not None:
                stage.fail("answer", repr(exc))
            return
        if status == 200:
            await asyncio.sleep(self.talk)
            await self.hang_up(call_id, headers)
        elif status not in (404, 409) and stage is not None:  # 409: taken by another
            stage.fail(f"answer HTTP {status}", content.decode(errors="replace"))

    async def hang_up(self, call_id: str, headers: bytes) -> None:
        stage = self.current
        try:
            status, content = await self.http.request(
                "POST", f"/api/v1/me/calls/{call_id}/hangup", headers
            )
        except (OSError, HttpError, TimeoutError, asyncio.IncompleteReadError) as exc:
            if stage is not None:
                stage.fail("hangup", repr(exc))
            return
        if status != 200 and stage is not None:
            stage.fail(f"hangup HTTP {status}", content.decode(errors="replace"))

    # callers

    async def place(self, stage: Stage, index: int, due: float) -> None:
        body = json.dumps(
            {"from": f"3361{index % 10**7:07d}", "to": self.numbers[index % len(self.numbers)]}
        ).encode()
        sent: list[float] = []
        try:
            status, content = await self.http.request(
                "POST", "/api/v1/sim/calls", self.account, body, sent
            )
        except (OSError, HttpError, TimeoutError, asyncio.IncompleteReadError) as exc:
            stage.fail("place", repr(exc))
            return
        if status != 201:
            stage.fail(f"place HTTP {status}", content.decode(errors="replace"))
            return
        call_id = json.loads(content)["id_call"]
        call = _Call(stage, sent[0])
        stage.placed += 1
        stage.first_sent = min(stage.first_sent, sent[0])
        stage.lags.append(sent[0] - due)
        offered_at = self.early_offers.pop(call_id, None)
        if offered_at is not None:
            call.offered = True
            stage.latencies.append(offered_at - call.sent)
        early_end = self.early_ends.pop(call_id, None)
        if early_end is not None:
            stage.end(*early_end)
            return
        self.calls[call_id] = call

    async def run_stage(self, stage: Stage) -> None:
        self.current = stage
        before = CpuSample.take(self.server.pid)
        total = max(1, round(stage.rate * stage.seconds))
        placing: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        launched = 0
        while launched < total:
            due_now = min(total, int((time.perf_counter() - start) * stage.rate) + 1)
            while launched < due_now:
                task = asyncio.create_task(
                    self.place(stage, launched, start + launched / stage.rate)
                )
                placing.add(task)
                task.add_done_callback(placing.discard)
                launched += 1
            await asyncio.sleep(0.001)
        if placing:
            await asyncio.gather(*placing)
        stage.placing_seconds = time.perf_counter() - start
        stage.all_placed = True
        stage.check_drained()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stage.drained.wait(), DRAIN_SECONDS)
        after = CpuSample.take(self.server.pid)
        wall = after.at - before.at
        stage.cpu_wall = wall
        stage.client_cpu = (after.client - before.client) / wall
        stage.server_cpu = (after.server - before.server) / wall
        machine = (after.machine - before.machine) / wall
        stage.other_cpu = max(0.0, machine - stage.client_cpu - stage.server_cpu)
        # Forget what is left of this stage (calls still up are reported as unfinished).
        self.calls = {k: c for k, c in self.calls.items() if c.stage is not stage}
        self.early_offers.clear()
        self.early_ends.clear()

    async def figures(self) -> dict[str, Any]:
        answer = await self.call_api("GET", "/api/v1/figures", self.account)
        total: dict[str, Any] = answer["groups"][-1]
        return total

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
        for job in [*self.jobs, *self.banner_tasks]:
            job.cancel()
        await asyncio.gather(
            *self.jobs,
            *self.banner_tasks,
            *([self.listener] if self.listener else []),
            return_exceptions=True,
        )
        await self.http.close()


async def measure(
    server: Server,
    rates: list[float],
    seconds: float,
    connections: int,
    talk: float,
    banners: int = 0,
) -> tuple[list[Stage], dict[str, Any], Driver]:
    driver = Driver(server, connections, talk, banners)
    try:
        setup_started = time.perf_counter()
        await driver.prepare()
        print(
            f"set-up through the API: {len(driver.operators)} tokens, all online, one supervisor "
            f"stream, {banners} operator streams, in {time.perf_counter() - setup_started:.1f} s",
            flush=True,
        )
        await driver.run_stage(Stage("warm-up", WARMUP_RATE, WARMUP_SECONDS, talk=talk))
        stages = []
        for rate in rates:
            stage = Stage(f"{rate:g}/s", rate, seconds, talk=talk)
            await driver.run_stage(stage)
            print(f"  {stage.name}: done", flush=True)
            stages.append(stage)
        figures = await driver.figures()
        return stages, figures, driver
    finally:
        await driver.close()


# --- the report --------------------------------------------------------------------------------


def _row(cells: list[str], widths: list[int]) -> str:
    first, *rest = zip(cells, widths, strict=True)
    return f"{first[0]:<{first[1]}}" + "".join(f"  {c:>{w}}" for c, w in rest)


def print_report(
    args: argparse.Namespace, stages: list[Stage], figures: dict[str, Any], driver: Driver
) -> None:
    print()
    headers = ["target", "placed", "placed/s", "carried/s", "answered", "not answ.", "unfin."]
    headers += ["failures", "offer p50", "offer p99", "lag p99", "server cpu", "client cpu"]
    headers += ["other cpu"]
    widths = [8, 6, 8, 9, 8, 9, 6, 8, 9, 9, 7, 10, 10, 9]
    print(_row(headers, widths))
    print(_row(["-" * w for w in widths], widths))
    for s in stages:
        not_answered = s.ended - s.outcomes["answered"]
        print(
            _row(
                [
                    s.name,
                    str(s.placed),
                    f"{s.placed / s.placing_seconds:.0f}" if s.placing_seconds else "-",
                    f"{s.carried:.0f}",
                    str(s.outcomes["answered"]),
                    str(not_answered),
                    str(s.unfinished),
                    str(sum(s.failures.values())),
                    f"{percentile_ms(s.latencies, 0.5):.1f}",
                    f"{percentile_ms(s.latencies, 0.99):.1f}",
                    f"{percentile_ms(s.lags, 0.99):.0f}",
                    f"{s.server_cpu:.2f}",
                    f"{s.client_cpu:.2f}",
                    f"{s.other_cpu:.2f}",
                ],
                widths,
            )
        )
    print(
        "(placed/s: placements answered 201 / time to place them; carried/s: calls ended "
        "'answered' / (last end - first placement - talk time); offer: "
        "placement sent → its call.offered frame received, ms; lag: how late the client sent "
        "placements (its own backlog), ms; cpu: cores used on average, placing and draining)"
    )
    for s in stages:
        others = {k: v for k, v in s.outcomes.items() if k != "answered"}
        if others or s.failures:
            print(f"{s.name}: outcomes other than answered {others}, failures {dict(s.failures)}")
            for example in s.examples:
                print(f"  e.g. {example}")
    print(
        f"server figures (today, all stages and warm-up): offered {figures.get('offered')}, "
        f"answered {figures.get('answered')}, missed {figures.get('missed')}, "
        f"abandoned {figures.get('abandoned')}, failed {figures.get('failed')}"
    )
    if driver.stream_problems:
        print(
            f"event stream: {driver.stream_reconnects} reconnections "
            f"({', '.join(sorted(set(driver.stream_problems)))})"
        )
    if driver.banners:
        problems = ", ".join(f"{n} {kind}" for kind, n in driver.banner_problems.most_common())
        print(
            f"operator streams: {driver.banners} open, {driver.banner_frames} frames read, "
            f"{driver.banner_reconnects} reconnections" + (f" ({problems})" if problems else "")
        )
    print(f"goal: >= {GOAL_RATE:.0f} calls/s with p99 offer latency <= {GOAL_P99_MS:.0f} ms")
    meeting = [
        s
        for s in stages
        if s.carried >= GOAL_RATE
        and percentile_ms(s.latencies, 0.99) <= GOAL_P99_MS
        and not s.failures
        and not s.unfinished
    ]
    best = max(stages, key=lambda s: s.carried)
    print(
        f"best carried: {best.carried:.0f} calls/s at {best.name} "
        f"(p99 offer {percentile_ms(best.latencies, 0.99):.1f} ms) -> "
        + (f"met at {', '.join(s.name for s in meeting)}" if meeting else "missed")
    )
    if any(s.other_cpu > 0.25 for s in stages):
        print("warning: other processes used CPU during the run: figures are disturbed")


def print_header(args: argparse.Namespace) -> None:
    nproc = len(os.sched_getaffinity(0))
    load_1min = Path("/proc/loadavg").read_text().split()[0]
    print(
        f"ACD end to end: {args.operators} operators in {args.groups} groups, {args.numbers} "
        f"numbers, SQLite; operators answer on call.offered and hang up after {args.talk:g} s"
    )
    print(
        f"machine: nproc {nproc}, {platform.machine()}, Python {platform.python_version()}, "
        f"load average {load_1min} before the run"
    )
    print(
        "client (this process: raw HTTP/1.1, websockets) and server (uvicorn, one process) "
        f"share these CPUs; {args.connections} keep-alive connections, one supervisor event "
        f"stream and {args.banners} operator streams",
        flush=True,
    )


# --- entry point -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rates", default="100,200,400,800", help="calls/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate")
    parser.add_argument("--operators", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--numbers", type=int, default=100)
    parser.add_argument("--talk", type=float, default=0.5, help="seconds before hanging up")
    parser.add_argument("--connections", type=int, default=64, help="HTTP keep-alive")
    parser.add_argument(
        "--banners", type=int, default=0, help="operators who also hold their own event stream"
    )
    args = parser.parse_args(argv)
    try:
        args.rate_list = [float(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error("--rates takes numbers separated by commas")
    if min(args.rate_list) <= 0 or args.seconds <= 0:
        parser.error("--rates and --seconds must be more than 0")
    if min(args.operators, args.groups, args.numbers, args.connections) < 1:
        parser.error("--operators, --groups, --numbers and --connections must be at least 1")
    if not 0 <= args.banners <= args.operators:
        parser.error("--banners must be from 0 to --operators")
    return args


def run(args: argparse.Namespace) -> int:
    for name in [k for k in os.environ if k.startswith("VM_")]:
        print(f"note: ignoring {name} from the environment", file=sys.stderr)
        del os.environ[name]
    with tempfile.TemporaryDirectory(prefix="vm-bench-acd-") as tmp:
        data_dir = Path(tmp)
        print_header(args)
        seeding = time.perf_counter()
        asyncio.run(seed(seed_settings(data_dir), args.operators, args.groups, args.numbers))
        print(f"seeded in {time.perf_counter() - seeding:.1f} s", flush=True)
        with running_server(data_dir) as server:
            stages, figures, driver = asyncio.run(
                measure(
                    server,
                    args.rate_list,
                    args.seconds,
                    args.connections,
                    args.talk,
                    args.banners,
                )
            )
            tail = server.log_tail()
        print_report(args, stages, figures, driver)
        if tail:
            print(f"server log (last lines):\n{tail}", file=sys.stderr)
    return 0


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return run(args)
    except TimeoutError:
        print("error: the server stopped answering", file=sys.stderr)
        return 2
    except (ServerFailed, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
