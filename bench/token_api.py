"""Benchmark: ``POST /vm/token`` against the ``GET /healthz`` baseline, on the real server.

Run::

    .venv/bin/python bench/token_api.py [--clients 50] [--requests 3000]
                                        [--database sqlite|postgresql]

What it does, in order:

1. seeds one account with one operator in a temporary data directory (SQLite) or in a fresh
   PostgreSQL database, with the *production* argon2 cost: the point is to show that the
   verified-credential cache makes the token API fast despite real argon2;
2. starts ``voicemgmt serve`` as a separate process on a free loopback port;
3. loads it from this process with ``--clients`` concurrent keep-alive connections, for three
   scenarios (``healthz``, ``token new``, ``token keep``), each after a short warm-up that is
   left out of the figures; every response is checked and every failure counted;
4. prints throughput and latency per scenario, the ratios to the baseline, the CPU each side
   used, and the server's peak RSS.

A benchmark never gates: missing the goal still exits 0. Only errors (the server did not
start, a request failed) give a non-zero exit code.

Caveat: client and server share the machine (2 cores on the reference box). An httpx client
spends about 1 ms of CPU per request, several times what the server spends on ``/healthz``,
so on the baseline the *client* is the bottleneck: the baseline is understated and the ratios
flattered. The client is therefore kept as cheap as possible (one keep-alive connection per
worker, each request built once and sent again and again, a cheap check of each answer), and
the CPU used by each side is printed next to each scenario, with the server's CPU time per
request, so that the reader can see which side was saturated and compare the endpoints' cost.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import platform
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from _support import Server, ServerFailed, running_server
from voicemgmt.bootstrap import build
from voicemgmt.config import Settings

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
WARMUP_REQUESTS = 200
SCENARIO_DEADLINE_SECONDS = 600.0  # a stuck server must not hang the benchmark for ever
REQUEST_TIMEOUT_SECONDS = 30.0
GOAL_RATIO = 0.5
GOAL_P99_MS = 25.0
FAILURE_EXAMPLES = 3
OTHER_CPU_WARNING = 0.25  # cores used by unrelated processes that make the figures unreliable


# --- what is measured ----------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    login: str
    password: str
    id_agent: int
    password_hash: str


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    path: str
    body: bytes | None
    expects_token: bool

    def check(self, response: httpx.Response) -> str | None:
        """Why ``response`` is a failure, or ``None`` when it is a success."""
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text[:200]}"
        if not self.expects_token:
            return None
        try:
            token = json.loads(response.content).get("token")
        except (ValueError, AttributeError):
            return f"not a JSON object: {response.text[:200]}"
        if not isinstance(token, str) or not token:
            return f"no token in the answer: {response.text[:200]}"
        return None


def scenarios(id_agent: int) -> list[Scenario]:
    return [
        Scenario("healthz", "GET", "/healthz", None, expects_token=False),
        Scenario(
            "token new",
            "POST",
            "/vm/token",
            json.dumps({"id_agent": id_agent}).encode(),
            expects_token=True,
        ),
        Scenario(
            "token keep",
            "POST",
            "/vm/token",
            json.dumps({"id_agent": id_agent, "keep": 1}).encode(),
            expects_token=True,
        ),
    ]


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far: by this process, the server, PostgreSQL, and all CPUs."""

    at: float
    client: float
    server: float
    postgres: float
    machine_busy: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSample:
        tick = os.sysconf("SC_CLK_TCK")
        return cls(
            at=time.perf_counter(),
            client=time.process_time(),
            server=_process_jiffies(server_pid) / tick,
            postgres=_postgres_jiffies() / tick,
            machine_busy=_machine_busy_jiffies() / tick,
        )


def _stat_fields(pid: int | str) -> tuple[str, list[str]]:
    """The command name and the fields after it in /proc/<pid>/stat (field 3 onwards)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()


def _process_jiffies(pid: int | str) -> int:
    """utime + stime of all threads of ``pid`` (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = _stat_fields(pid)[1]
    return int(fields[11]) + int(fields[12])


def _postgres_jiffies() -> int:
    """CPU used so far by all PostgreSQL processes of this machine, ended backends included.

    A backend's own time (utime + stime) while it lives, then, once it has ended, in its
    parent's cutime + cstime (fields 16 and 17): the sum over all ``postgres`` processes of
    the four grows steadily even when connections are opened and closed during the run.
    """
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, fields = _stat_fields(entry.name)
        except (OSError, ValueError):
            continue  # the process has just gone
        if name == "postgres":
            total += sum(int(f) for f in fields[11:15])
    return total


def _machine_busy_jiffies() -> int:
    """Busy jiffies of all CPUs together, from the first line of /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle  # guest time is already counted in user


@dataclass
class Outcome:
    scenario: Scenario
    latencies: list[float] = field(default_factory=list)  # seconds, one per request
    failures: int = 0
    examples: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    # Cores used on average during the run; "other" is all the machine did besides.
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    other_cpu: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(q * len(ordered)))
        return ordered[rank - 1] * 1000

    def record_cpu(self, before: CpuSample, after: CpuSample) -> None:
        wall = after.at - before.at
        if wall <= 0:
            return
        self.client_cpu = (after.client - before.client) / wall
        self.server_cpu = (after.server - before.server) / wall
        self.postgres_cpu = (after.postgres - before.postgres) / wall
        machine = (after.machine_busy - before.machine_busy) / wall
        self.other_cpu = max(0.0, machine - self.client_cpu - self.server_cpu - self.postgres_cpu)


# --- the load ------------------------------------------------------------------------------


async def load(
    clients: list[httpx.AsyncClient],
    scenario: Scenario,
    headers: dict[str, str],
    *,
    total: int,
    server_pid: int,
) -> Outcome:
    """Send ``total`` requests of ``scenario``, one worker per client; time each request."""
    outcome = Outcome(scenario)
    remaining = total

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        # Built once and sent again and again: no per-request URL parsing or header merging.
        request = client.build_request(
            scenario.method, scenario.path, content=scenario.body, headers=headers
        )
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                response = await client.send(request)
                problem = scenario.check(response)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc!r}"
            outcome.latencies.append(time.perf_counter() - started)
            if problem is not None:
                outcome.failures += 1
                if len(outcome.examples) < FAILURE_EXAMPLES:
                    outcome.examples.append(problem)

    before = CpuSample.take(server_pid)
    async with asyncio.timeout(SCENARIO_DEADLINE_SECONDS):
        await asyncio.gather(*(worker(client) for client in clients[:total]))
    after = CpuSample.take(server_pid)
    outcome.elapsed = after.at - before.at
    outcome.record_cpu(before, after)
    return outcome


@dataclass(frozen=True)
class Measurement:
    warmups: list[Outcome]
    outcomes: list[Outcome]


async def measure(
    base_url: str, credentials: Credentials, server_pid: int, *, clients: int, requests: int
) -> Measurement:
    basic = base64.b64encode(f"{credentials.login}:{credentials.password}".encode()).decode()
    headers_for = {
        False: {},
        True: {"authorization": f"Basic {basic}", "content-type": "application/json"},
    }
    warmups: list[Outcome] = []
    outcomes: list[Outcome] = []
    async with AsyncExitStack() as stack:
        # One client, hence one keep-alive connection, per worker: a single client with a
        # pool of 50 connections costs the client about 2.5 times more CPU per request
        # (httpcore's pool bookkeeping grows with its size), CPU taken from the server here.
        pool = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=base_url,
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                    timeout=REQUEST_TIMEOUT_SECONDS,
                    trust_env=False,  # no proxy from the environment: loopback traffic only
                )
            )
            for _ in range(clients)
        ]
        for scenario in scenarios(credentials.id_agent):
            headers = headers_for[scenario.expects_token]
            for total, into in ((WARMUP_REQUESTS, warmups), (requests, outcomes)):
                into.append(await load(pool, scenario, headers, total=total, server_pid=server_pid))
    return Measurement(warmups, outcomes)


# --- the system under test -----------------------------------------------------------------


def production_settings(data_dir: Path, database_url: str) -> Settings:
    """Production defaults (argon2 included); only the data directory and database differ."""
    return Settings(data_dir=data_dir, database_url=database_url, log_level="warning")


async def seed(settings: Settings) -> Credentials:
    container = build(settings)
    try:
        await container.start()
        password = secrets.token_urlsafe(24)
        account = await container.directory.create_account(
            login="bench", name="Bench Ltd", password=password
        )
        operator = await container.directory.create_operator(
            account.id, name="Ana", email="ana@bench.example"
        )
        return Credentials(account.login, password, operator.id, account.password_hash)
    finally:
        await container.close()


async def _postgres_admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _postgres_sessions(name: str) -> int:
    """Sessions ever opened on database ``name``, once its connections have all ended."""
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        query = "SELECT numbackends, sessions FROM pg_stat_database WHERE datname = $1"
        for _ in range(50):  # backends flush their statistics as they end
            row = await connection.fetchrow(query, name)
            if row is None or row["numbackends"] == 0:
                break
            await asyncio.sleep(0.1)
        return int(row["sessions"]) if row is not None else 0
    finally:
        await connection.close()


@dataclass(frozen=True)
class Database:
    url: str
    postgres_name: str | None = None

    def sessions(self) -> int | None:
        """PostgreSQL sessions opened so far (``None`` for SQLite)."""
        if self.postgres_name is None:
            return None
        return asyncio.run(_postgres_sessions(self.postgres_name))


@contextmanager
def database(kind: str, data_dir: Path) -> Iterator[Database]:
    """The database of the run; a fresh PostgreSQL database is dropped afterwards."""
    if kind == "sqlite":
        yield Database(f"sqlite+aiosqlite:///{data_dir / 'voicemgmt.db'}")
        return
    name = f"vm_bench_{secrets.token_hex(6)}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield Database(f"{base}/{name}", name)
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- the report ----------------------------------------------------------------------------


def _row(cells: list[str], widths: list[int]) -> str:
    first, *rest = zip(cells, widths, strict=True)
    return f"{first[0]:<{first[1]}}" + "".join(f"  {c:>{w}}" for c, w in rest)


def print_header(kind: str, args: argparse.Namespace, credentials: Credentials) -> None:
    nproc = len(os.sched_getaffinity(0))
    load_1min = Path("/proc/loadavg").read_text().split()[0]
    params = credentials.password_hash.split("$")[3] if credentials.password_hash else "?"
    print(f"POST /vm/token benchmark — database {kind}, {args.clients} clients")
    print(
        f"machine: nproc {nproc}, {platform.machine()}, Python {platform.python_version()}, "
        f"load average {load_1min} before the run"
    )
    print(
        "client (this process, httpx) and server (uvicorn, one process) share these CPUs"
        + (", and so does PostgreSQL" if kind == "postgresql" else "")
    )
    print(f"argon2id cost of the API password: {params} (production defaults, not lowered)")
    print(
        f"each scenario: {WARMUP_REQUESTS} warm-up requests (not counted), then "
        f"{args.requests} measured; each request timed, keep-alive connections",
        flush=True,
    )


def print_results(
    kind: str,
    clients: int,
    measurement: Measurement,
    peak_rss_kib: int,
    rss_kib: int,
    server: Server,
    postgres_sessions: int | None,
) -> None:
    print()
    headers = ["scenario", "requests", "failures", "req/s", "p50 ms", "p99 ms"]
    headers += ["server cpu", "client cpu", "pg cpu", "other cpu", "server ms/req"]
    widths = [10, 8, 8, 7, 7, 7, 10, 10, 6, 9, 13]
    print(_row(headers, widths))
    print(_row(["-" * w for w in widths], widths))
    for o in measurement.outcomes:
        print(
            _row(
                [
                    o.scenario.name,
                    str(o.requests),
                    str(o.failures),
                    f"{o.rate:.0f}",
                    f"{o.percentile_ms(0.50):.1f}",
                    f"{o.percentile_ms(0.99):.1f}",
                    f"{o.server_cpu:.2f}",
                    f"{o.client_cpu:.2f}",
                    f"{o.postgres_cpu:.2f}" if kind == "postgresql" else "-",
                    f"{o.other_cpu:.2f}",
                    f"{o.server_cpu / o.rate * 1000:.2f}" if o.rate else "-",
                ],
                widths,
            )
        )
    print(
        "(cpu: cores used on average during the scenario; pg: all PostgreSQL processes; "
        "other: the rest of the machine; server ms/req: server CPU time per request)"
    )
    print()

    baseline, *tokens = measurement.outcomes
    for o in tokens:
        ratio = o.rate / baseline.rate if baseline.rate else 0.0
        met = ratio >= GOAL_RATIO and o.percentile_ms(0.99) <= GOAL_P99_MS
        print(
            f"ratio {o.scenario.name} / healthz = {ratio:.2f}"
            f"  (p99 {o.percentile_ms(0.99):.1f} ms) -> {'met' if met else 'missed'}"
        )
    cold = next(o for o in measurement.warmups if o.scenario.name == "token new")
    print(
        f"cold start: the {cold.requests} warm-up requests of 'token new' (cache empty, "
        f"argon2 on the first ones) took p50 {cold.percentile_ms(0.5):.1f} ms, "
        f"max {cold.percentile_ms(1.0):.1f} ms, {cold.failures} failures"
    )
    print(f"server peak RSS (VmHWM): {peak_rss_kib / 1024:.1f} MiB (now {rss_kib / 1024:.1f} MiB)")
    if postgres_sessions is not None:
        sent = sum(o.requests for o in measurement.warmups + measurement.outcomes)
        print(
            f"PostgreSQL sessions opened by the server: {postgres_sessions} for {sent} requests "
            "(more than its pool holds means connections opened and closed under load)"
        )
    print(f"goal: ratio >= {GOAL_RATIO} and p99 <= {GOAL_P99_MS:.0f} ms")
    print(
        f"note: {clients} clients that each send again as soon as answered make the mean "
        f"latency clients / (req/s) (Little's law): p50 <= {GOAL_P99_MS:.0f} ms alone needs "
        f">= {clients / GOAL_P99_MS * 1000:.0f} req/s at this concurrency"
    )
    busiest = max(measurement.outcomes, key=lambda o: o.other_cpu)
    if busiest.other_cpu > OTHER_CPU_WARNING:
        print(
            f"warning: other processes used {busiest.other_cpu:.2f} cores during "
            f"{busiest.scenario.name!r}: these figures are disturbed; rerun on a quiet machine"
        )

    for o in measurement.warmups + measurement.outcomes:
        if o.failures:
            print(f"failures in {o.scenario.name!r}: {o.failures}, e.g.:", file=sys.stderr)
            for example in o.examples:
                print(f"  {example}", file=sys.stderr)
    tail = server.log_tail()
    if tail:
        print(f"server log (last lines of {server.log.name}):\n{tail}", file=sys.stderr)


# --- entry point ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=50, help="concurrent connections")
    parser.add_argument("--requests", type=int, default=3000, help="measured per scenario")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1:
        parser.error("--clients and --requests must be at least 1")
    return args


def run(args: argparse.Namespace) -> int:
    # The stored hash, hence the argon2 cost, comes from these settings: ignore any VM_* knob
    # of the caller's environment so that the figures are for the production defaults.
    for name in [k for k in os.environ if k.startswith("VM_")]:
        print(f"note: ignoring {name} from the environment", file=sys.stderr)
        del os.environ[name]
    with (
        tempfile.TemporaryDirectory(prefix="vm-bench-") as tmp,
        database(args.database, Path(tmp)) as db,
    ):
        data_dir = Path(tmp)
        credentials = asyncio.run(seed(production_settings(data_dir, db.url)))
        print_header(args.database, args, credentials)
        sessions_before = db.sessions()
        with running_server(data_dir, args=["--database", db.url]) as server:
            measurement = asyncio.run(
                measure(
                    server.base_url,
                    credentials,
                    server.pid,
                    clients=args.clients,
                    requests=args.requests,
                )
            )
            peak, now = server.status_kib("VmHWM"), server.status_kib("VmRSS")
        sessions_after = db.sessions()  # once the server has closed its connections
        sessions = (
            sessions_after - sessions_before
            if sessions_after is not None and sessions_before is not None
            else None
        )
        print_results(args.database, args.clients, measurement, peak, now, server, sessions)
    failures = sum(o.failures for o in measurement.warmups + measurement.outcomes)
    return 1 if failures else 0


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: server, database


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    errors: tuple[type[BaseException], ...] = (ServerFailed, OSError, asyncpg.PostgresError)
    try:
        return run(args)
    except TimeoutError:  # before OSError, of which it is a subclass
        print(f"error: a scenario took over {SCENARIO_DEADLINE_SECONDS:.0f} s", file=sys.stderr)
        return 2
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
