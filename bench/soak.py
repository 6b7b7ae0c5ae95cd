"""Soak: a simulated day of a 500-operator account, compressed, against a real server.

Run::

    .venv/bin/python bench/soak.py [--minutes 60] [--operators 500] [--scale 1]
                                   [--calls-per-second R] [--groups 5] [--supervisors 3]
                                   [--database postgresql+asyncpg://…] [--event-bus redis]
                                   [--redis-url redis://127.0.0.1:6379/9] [--seed N]

(``make soak MINUTES=60``.) By default a day of a 500-operator account, about 100,000 calls,
in one hour: 27.8 calls/s for 60 minutes; the rate follows the operator count (``--operators
50`` places a tenth of it) and ``--scale`` (``--scale 2``: twice as busy a day), or is given
outright with ``--calls-per-second``. ``--minutes 5`` is a five-minute slice of that day.

1. Starts ``voicemgmt serve`` on a free loopback port (SQLite in a temporary folder, or
   ``--database``; the in-process event bus, or Redis with ``--event-bus redis``), JSON logs
   at WARNING, the simulated switch with short IVR prompts.
2. Makes one account (in-process: there is no API for it) and, through the admin API, its
   groups, operators (tier 1 in one group, tier 2 in the next), supervisors and two numbers
   per group, the first with an IVR menu (groups by digit, an order number, a goodbye);
   a session token per user (``POST /vm/token``).
3. Opens every operator's event stream (their banner's ``/vm/events``) and the supervisors'
   streams, and sets the operators online. Operators act only on their own stream, through the
   call-control API: answer after a delay, sometimes decline or let it ring, hold and unhold,
   hang up after a log-normal talk time, or transfer to an idle colleague or a group; an
   operator put on break for unanswered offers comes back. Callers arrive at random
   (``POST /api/v1/sim/calls``), key IVR choices, and some give up after a patience.
4. Samples the server's RSS and CPU, and this process's CPU, every ``--sample-seconds``.
5. After the arrivals, waits for every call to end (``--drain`` seconds at most), then reads
   the records (``GET /api/v1/call-records``), the figures (``/api/v1/figures``) and the
   supervisor's figures (``/api/v1/supervision/figures``) of the run's window, stops the
   server, and reads its log.

Prints calls placed; calls per outcome as the load saw them (from its own actions), as the
first supervisor's stream said (``call.ended``), in the records, and in both figures;
records against placements (counts and ids); per-operator answered calls (supervisor's
figures) against the records; the offer latency (placement sent → ``call.offered`` on the
operator's banner) p50/p99; the server's RSS slope (KiB per minute and relative growth, by
least squares) after ``--warmup-minutes`` (a quarter of the run: bounded buffers fill first,
such as the 10,000 events kept for resuming) and over the last half (``--samples FILE``
writes every sample as CSV); server CPU per call and this process's CPU; events per stream,
reconnections and ``seq`` gaps; the log's ERROR/WARNING/traceback lines.

Exit code 0 only if records equal placements, every comparison agrees, no call is left
unfinished or ended twice, no API request failed, no stream lost or skipped events, and the
log has no warning or error; 1 otherwise (the reasons are printed); 2 if the run could not be
made (the server did not start, the set-up was refused).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _soak_report as report
from _soak_account import Account, create_account, provision
from _soak_checks import Sample, all_records, window
from _soak_streams import Stream, Streams
from _soak_traffic import Behaviour, Traffic
from _support import Server, ServerFailed, process_seconds, running_server
from acd_end_to_end import HttpPool, bearer

DAY_CALLS = 100_000
DAY_OPERATORS = 500
DAY_MINUTES = 60.0
CONNECTIONS = 32
STREAMS_OPEN_SECONDS = 180.0
SERVER_ENV = {
    "VM_LOG_FORMAT": "json",
    "VM_SIM_PROMPT_SECONDS": "0.5",  # a compressed day: prompts and keys are quick too
    "VM_SIM_DIGIT_INTERVAL": "0.1",
}


@dataclass
class Run:
    """Everything the report needs."""

    args: argparse.Namespace
    rate: float
    behaviour: Behaviour
    account: Account
    traffic: Traffic | None = None
    streams: Streams | None = None
    samples: list[Sample] = field(default_factory=list)
    arrivals_seconds: float = 0.0
    drain_seconds: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    supervision: dict[str, Any] = field(default_factory=dict)
    peak_rss_kib: int = 0
    log_path: Path | None = None


class Api:
    """The set-up's and the checks' requests: anything but 200/201 stops the run."""

    def __init__(self, http: HttpPool) -> None:
        self.http = http

    async def request(self, method: str, path: str, headers: bytes, body: Any = None) -> Any:
        payload = b"" if body is None else json.dumps(body).encode()
        status, content = await self.http.request(method, path, headers, payload)
        if status not in (200, 201):
            raise ServerFailed(f"{method} {path}: HTTP {status} {content[:300]!r}")
        return json.loads(content)

    async def get(self, path: str, headers: bytes) -> Any:
        return await self.request("GET", path, headers)


async def sample_forever(run: Run, server: Server, started: float) -> None:
    args = run.args
    next_progress = args.progress_seconds
    while True:
        traffic = run.traffic
        assert traffic is not None
        sample = Sample(
            at=time.perf_counter() - started,
            rss_kib=server.status_kib("VmRSS"),
            server_cpu=process_seconds(server.pid),
            client_cpu=time.process_time(),
            placed=traffic.placed,
            ended=traffic.ended,
        )
        run.samples.append(sample)
        if sample.at >= next_progress:
            next_progress += args.progress_seconds
            print(report.progress_line(sample, run.samples[0]), flush=True)
        await asyncio.sleep(args.sample_seconds)


async def soak(run: Run, server: Server) -> None:
    args, account = run.args, run.account
    since = datetime.now(UTC) - timedelta(seconds=2)
    http = HttpPool(server.port, CONNECTIONS)
    await http.open()
    api = Api(http)
    try:
        clock = time.perf_counter()
        await provision(
            account,
            api.request,
            operators=args.operators,
            groups=args.groups,
            supervisors=args.supervisors,
        )
        traffic = run.traffic = Traffic(http, account, run.behaviour, seed=args.seed)
        operators = [
            Stream(server.port, token, traffic.on_frame, supervisor=False, id_op=id_op)
            for id_op, token in account.operator_tokens.items()
        ]
        supervisors = [
            Stream(server.port, token, traffic.on_frame, supervisor=True)
            for token in account.supervisor_tokens
        ]
        traffic.ledger = supervisors[0]
        streams = run.streams = Streams(operators, supervisors)
        async with asyncio.timeout(STREAMS_OPEN_SECONDS):
            await streams.open()
        await traffic.set_online()
        print(
            f"set-up through the API: {len(account.operator_ids)} operators, "
            f"{len(account.group_ids)} groups, {len(account.numbers)} numbers, "
            f"{len(supervisors)} supervisors, {len(streams.all)} event streams open, "
            f"all online, in {time.perf_counter() - clock:.1f} s",
            flush=True,
        )
        started = time.perf_counter()
        sampler = asyncio.create_task(sample_forever(run, server, started))
        try:
            await traffic.arrivals(run.rate, args.minutes * 60, CONNECTIONS)
            run.arrivals_seconds = time.perf_counter() - started
            try:
                async with asyncio.timeout(args.drain):
                    await traffic.all_ended.wait()
            except TimeoutError:
                pass
            run.drain_seconds = time.perf_counter() - started - run.arrivals_seconds
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            await traffic.stop()
        run.peak_rss_kib = server.status_kib("VmHWM")
        until = datetime.now(UTC) + timedelta(seconds=1)
        run.records = await all_records(api.get, account.headers, since, until)
        span = window(since, until)
        run.figures = await api.get(f"/api/v1/figures?{span}", account.headers)
        sup = bearer(account.supervisor_tokens[0])
        run.supervision = await api.get(f"/api/v1/supervision/figures?{span}", sup)
    finally:
        if run.streams is not None:
            await run.streams.close()
        await http.close()


def server_settings(args: argparse.Namespace) -> dict[str, str]:
    env = dict(SERVER_ENV)
    if args.database:
        env["VM_DATABASE_URL"] = args.database
    if args.event_bus == "redis":
        env |= {"VM_EVENT_BUS": "redis", "VM_REDIS_URL": args.redis_url}
    return env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=DAY_MINUTES, help="of arrivals")
    parser.add_argument("--operators", type=int, default=DAY_OPERATORS)
    parser.add_argument("--scale", type=float, default=1.0, help="times the day's call rate")
    parser.add_argument(
        "--calls-per-second", type=float, default=None, help="instead of the day's rate"
    )
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--supervisors", type=int, default=3)
    parser.add_argument("--talk-median", type=float, default=Behaviour.talk_median)
    parser.add_argument("--abandon", type=float, default=Behaviour.abandon)
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--event-bus", choices=("memory", "redis"), default="memory")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds at most")
    parser.add_argument(
        "--warmup-minutes", type=float, default=None, help="left out of the RSS slope (1/4 run)"
    )
    parser.add_argument("--sample-seconds", type=float, default=None, help="(<= 10)")
    parser.add_argument("--samples", type=Path, default=None, help="write the samples (CSV)")
    parser.add_argument("--progress-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    numbers = [args.minutes, args.scale, args.talk_median, args.drain, args.progress_seconds]
    if not all(math.isfinite(n) and n > 0 for n in numbers):
        parser.error("--minutes, --scale, --talk-median, --drain, --progress-seconds: > 0")
    if args.calls_per_second is not None and not (
        math.isfinite(args.calls_per_second) and args.calls_per_second > 0
    ):
        parser.error("--calls-per-second must be more than 0")
    if not 1 <= args.operators <= 10_000 or not 1 <= args.groups <= 99:
        parser.error("--operators is 1 to 10000, --groups 1 to 99")
    if not 1 <= args.supervisors <= 30:
        parser.error("--supervisors is 1 to 30")
    if not 0 <= args.abandon <= 1:
        parser.error("--abandon is a fraction between 0 and 1")
    if args.database and not args.database.startswith("postgresql+asyncpg://"):
        parser.error("--database takes a postgresql+asyncpg:// URL")
    if args.warmup_minutes is None:
        args.warmup_minutes = args.minutes / 4
    if args.sample_seconds is None:
        args.sample_seconds = min(10.0, max(0.5, args.minutes * 60 / 60))
    if args.warmup_minutes < 0 or args.sample_seconds <= 0:
        parser.error("--warmup-minutes must be 0 or more, --sample-seconds more than 0")
    return args


def day_rate(args: argparse.Namespace) -> float:
    if args.calls_per_second is not None:
        return float(args.calls_per_second)
    per_operator = DAY_CALLS / (DAY_MINUTES * 60) / DAY_OPERATORS
    return float(per_operator * args.operators * args.scale)


def run(args: argparse.Namespace) -> int:
    for name in [k for k in os.environ if k.startswith("VM_")]:
        print(f"note: ignoring {name} from the environment", file=sys.stderr)
        del os.environ[name]
    behaviour = Behaviour(talk_median=args.talk_median, abandon=args.abandon)
    with tempfile.TemporaryDirectory(prefix="vm-soak-") as tmp:
        data_dir = Path(tmp)
        database = args.database or f"sqlite+aiosqlite:///{data_dir / 'voicemgmt.db'}"
        account = asyncio.run(create_account(data_dir, database))
        soak_run = Run(args, day_rate(args), behaviour, account)
        report.header(soak_run)
        with running_server(data_dir, env=server_settings(args)) as server:
            soak_run.log_path = server.log
            asyncio.run(soak(soak_run, server))
        # The server has stopped: its log is complete, shutdown included.
        return report.final(soak_run)


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return run(args)
    except (ServerFailed, OSError, TimeoutError) as exc:
        print(f"error: {exc or type(exc).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
