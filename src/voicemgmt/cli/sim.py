"""``voicemgmt sim``: simulated traffic against a running server (``VM_SWITCH=simulated``).

Everything goes through the server's public API, as an integration would: the account's API
credentials (Basic) place calls and read the figures, operators act with their session tokens
(Bearer), and one supervisor's event stream (``/vm/events``) tells who is offered which call.

- ``sim call`` places one call and prints its id.
- ``sim load`` drives realistic traffic for a while (Poisson arrivals, IVR input, callers who
  give up, operators who answer after a delay and hang up after a talk time), then prints
  what became of the calls, cross-checked against the server's figures.

Errors before the load starts (server down, wrong credentials, unknown number…) give one
``error:`` line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

sim_app = typer.Typer(
    help="Simulated calls against a running server (needs VM_SWITCH=simulated).",
    no_args_is_help=True,
)

DEFAULT_URL = "http://127.0.0.1:8000"
REQUEST_TIMEOUT = 30.0
PAGE = 1000
OUTCOMES = ("answered", "abandoned", "missed", "overflowed", "failed")
EARLY_EVENTS_KEPT = 20_000  # events of calls whose placement has not answered yet (or others')
WS_RECONNECTS = 5
FINAL_HANGUP_SECONDS = 5.0
FINAL_EVENTS_SECONDS = 2.0
EXIT_INTERRUPTED = 130
EXIT_STREAM_LOST = 1

UrlOpt = Annotated[
    str,
    typer.Option("--url", envvar="VM_URL", help="The server's base URL.", show_envvar=True),
]
LoginOpt = Annotated[
    str | None,
    typer.Option(
        "--login",
        envvar="VM_API_LOGIN",
        help="The account's API login.",
        show_envvar=True,
        show_default=False,
    ),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password",
        envvar="VM_API_PASSWORD",
        help="The account's API password.",
        show_envvar=True,
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _credentials(login: str | None, password: str | None) -> tuple[str, str]:
    if not login:
        fail("--login is required (or set VM_API_LOGIN)")
    if not password:
        fail("--password is required (or set VM_API_PASSWORD)")
    return login, password


def _base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        fail(f"--url is not a URL: {url!r}")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        fail(f"--url must be an http:// or https:// URL, not {url!r}")
    return url


# --- talking to the server -------------------------------------------------------------------


class ApiError(Exception):
    """The server refused, or could not be reached; ``message`` is what to tell the user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def refusal(response: httpx.Response) -> ApiError:
    """The server's own ``err_msg`` when it gives one."""
    message: str | None = None
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict) and body.get("err_msg"):
            message = str(body["err_msg"])
    if message is None:
        request = response.request
        message = f"HTTP {response.status_code} from {request.method} {request.url.path}"
    return ApiError(message, response.status_code)


def unreachable(base_url: str, exc: httpx.HTTPError) -> ApiError:
    if isinstance(exc, httpx.TimeoutException):
        return ApiError(f"no answer from {base_url} within {REQUEST_TIMEOUT:.0f} s")
    reason = str(exc) or type(exc).__name__
    return ApiError(f"cannot reach {base_url} ({reason})")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _print_table(rows: Iterable[Mapping[str, Any]], header: Iterable[str]) -> None:
    table = Table(show_header=True, header_style="bold")
    for column in header:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    Console(width=None if sys.stdout.isatty() else 240).print(table)


# --- sim call ----------------------------------------------------------------------------------


@sim_app.command("call")
def sim_call(
    caller: Annotated[str, typer.Option("--from", help="The caller's number (E.164 digits).")],
    to: Annotated[str, typer.Option("--to", help="One of the account's numbers.")],
    dtmf: Annotated[
        str, typer.Option("--dtmf", help="Keys the caller presses in the IVR (0-9 * #).")
    ] = "",
    hangup_after: Annotated[
        float | None,
        typer.Option(
            "--hangup-after",
            help="Seconds after which the caller hangs up, if the call is still up.",
            show_default=False,
        ),
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    login: LoginOpt = None,
    password: PasswordOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Place one simulated inbound call; prints its id_call."""
    base = _base_url(url)
    auth = _credentials(login, password)
    body: dict[str, Any] = {"from": caller, "to": to}
    if dtmf:
        body["dtmf"] = dtmf
    if hangup_after is not None:
        body["hangup_after"] = hangup_after
    try:
        with httpx.Client(base_url=base, auth=auth, timeout=REQUEST_TIMEOUT) as client:
            response = client.post("/api/v1/sim/calls", json=body)
    except httpx.HTTPError as exc:
        fail(unreachable(base, exc).message)
    if response.status_code != 201:
        fail(refusal(response).message)
    try:
        placed = response.json()
        row = {"id_call": str(placed["id_call"]), "from": placed["from"], "to": placed["to"]}
    except (ValueError, KeyError, TypeError):
        fail(f"unexpected answer from {base}: {response.text[:200]}")
    if as_json:
        print(json.dumps(row))
    else:
        _print_table([row], row)


# --- sim load: its settings -------------------------------------------------------------------


def _seconds_range(value: str, option: str) -> tuple[float, float]:
    """``"4"`` or ``"1-4"`` → (low, high) seconds."""
    low_text, dash, high_text = value.strip().partition("-")
    try:
        low = float(low_text)
        high = float(high_text) if dash else low
    except ValueError:
        fail(f"{option} takes SECONDS or MIN-MAX (e.g. 1-4), not {value!r}")
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
        fail(f"{option} takes SECONDS or MIN-MAX with 0 <= MIN <= MAX, not {value!r}")
    return low, high


@dataclass(frozen=True)
class LoadPlan:
    base_url: str
    auth: tuple[str, str]
    rate: float  # calls per second, on average
    duration: float  # seconds of arrivals
    numbers: tuple[str, ...]  # empty: every number of the account
    dtmf_choices: tuple[str, ...]
    abandon: float  # fraction of callers who give up
    patience: tuple[float, float]  # when those callers hang up, after arrival
    answer_delay: tuple[float, float]
    talk: tuple[float, float]
    operators: int | None  # None: all of them
    seed: int | None
    drain: float  # seconds to wait at the end for calls in progress
    concurrency: int  # HTTP requests in flight at most
    leave_online: bool

    @property
    def max_calls(self) -> int:
        return max(1, math.floor(self.rate * self.duration))


def _pick(rng: random.Random, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return low if low == high else rng.uniform(low, high)


def percentile_ms(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of seconds, in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(1, math.ceil(q * len(ordered))) - 1] * 1000, 1)


# --- sim load: the run -----------------------------------------------------------------------


async def _together(jobs: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run jobs side by side; the first failure cancels the others and is raised as is."""
    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(job)
    except BaseExceptionGroup as problems:
        raise problems.exceptions[0] from None


@dataclass(slots=True)
class _Call:
    """What the event stream told about one call."""

    placed_at: float | None = None  # loop time the placement was sent; None: not (yet) ours
    offered_at: float | None = None  # loop time the first call.offered was seen
    answered: bool = False
    outcome: str | None = None


@dataclass
class Counts:
    placed: int = 0
    answered: int = 0  # call.answered seen (progress); the summary counts outcomes
    ended: int = 0


@dataclass
class LoadRun:
    """One ``sim load``: set-up, arrivals, operators, event stream, drain, clean-up."""

    plan: LoadPlan
    client: httpx.AsyncClient
    calls: dict[str, _Call] = field(default_factory=dict)
    early: dict[str, _Call] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    api_errors: Counter[str] = field(default_factory=Counter)
    api_error_examples: dict[str, str] = field(default_factory=dict)  # the first of each kind
    answers_lost: int = 0  # answer refused: the offer went elsewhere or the caller left
    operator_tokens: dict[int, dict[str, str]] = field(default_factory=dict)  # id → headers
    presence_before: dict[int, str] = field(default_factory=dict)
    connected: dict[str, int] = field(default_factory=dict)  # call answered by our operator
    numbers: list[str] = field(default_factory=list)
    supervisor_token: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    interrupted: bool = False
    stream_error: str | None = None
    stream_reconnects: int = 0
    events_lost: bool = False
    figures: dict[str, Any] | None = None
    elapsed: float = 0.0

    def __post_init__(self) -> None:
        seed = self.plan.seed
        self.rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
        self.operator_rng = random.Random(None if seed is None else seed + 1)  # noqa: S311
        self.slots = asyncio.Semaphore(self.plan.concurrency)
        self.stop = asyncio.Event()
        self.settled = asyncio.Event()
        self.stream_ready = asyncio.Event()
        self.arrivals_done = False
        self.operators_act = True
        self.tasks: set[asyncio.Task[Any]] = set()  # the stream's reader, the progress
        self.operator_jobs: set[asyncio.Task[None]] = set()
        self.last_seq: int | None = None
        self.epoch: str | None = None  # the stream's identity, sent back with after
        self.stream_failures = 0  # in a row, since the last hello
        self.loop = asyncio.get_running_loop()

    # requests

    async def send(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        expected: Iterable[int] = (200,),
        sent: list[float] | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """A request of the load: unexpected answers are counted, never raised.

        ``sent`` receives the loop time at which the request left (once a slot was free).
        """
        async with self.slots:
            if sent is not None:
                sent.append(self.loop.time())
            try:
                response = await self.client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                self.api_errors[f"{kind}: {type(exc).__name__}"] += 1
                return None
        if response.status_code not in expected:
            problem = f"{kind}: HTTP {response.status_code}"
            self.api_errors[problem] += 1
            self.api_error_examples.setdefault(problem, refusal(response).message)
            return None
        return response

    async def setup_request(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request of the set-up: any failure is fatal (``ApiError``)."""
        async with self.slots:
            try:
                response = await self.client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise unreachable(self.plan.base_url, exc) from None
        if response.status_code not in (200, 201):
            raise refusal(response)
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"unexpected answer to {method} {path}: {response.text[:200]}") from None

    async def listing(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = await self.setup_request(
                "GET", path, params={"limit": PAGE, "offset": len(items)}, auth=self.plan.auth
            )
            items.extend(page["items"])
            if len(page["items"]) < PAGE:
                return items

    def spawn(self, job: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(job)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # set-up

    async def prepare(self) -> None:
        plan = self.plan
        auth = plan.auth
        if plan.numbers:
            for number in plan.numbers:
                await self.setup_request("GET", f"/api/v1/numbers/{number}", auth=auth)
            self.numbers = list(plan.numbers)
        else:
            self.numbers = [n["e164"] for n in await self.listing("/api/v1/numbers")]
            if not self.numbers:
                raise ApiError("the account has no numbers to call")
        supervisors = await self.setup_request(
            "GET", "/api/v1/supervisors", params={"limit": 1}, auth=auth
        )
        if not supervisors["items"]:
            raise ApiError("the account has no supervisor, whose event stream sim load reads")
        id_admin = supervisors["items"][0]["id_admin"]
        answer = await self.setup_request(
            "POST", "/vm/token", json={"id_admin": id_admin, "keep": 1}, auth=auth
        )
        self.supervisor_token = answer["token"]
        operators = sorted(o["id_agent"] for o in await self.listing("/api/v1/operators"))
        if plan.operators is not None:
            operators = operators[: plan.operators]

        async def token_for(id_agent: int) -> None:
            got = await self.setup_request(
                "POST", "/vm/token", json={"id_agent": id_agent, "keep": 1}, auth=auth
            )
            self.operator_tokens[id_agent] = {"Authorization": f"Bearer {got['token']}"}

        await _together(token_for(o) for o in operators)
        live = await self.setup_request(
            "GET", "/api/v1/supervision/live", headers=self._supervisor_headers()
        )
        self.presence_before = {
            o["id_op"]: o["presence"] for o in live["operators"] if o["id_op"] in operators
        }
        # The stream first, so that no offer made once operators are online goes unseen.
        self.spawn(self.listen())
        ready = asyncio.ensure_future(self.stream_ready.wait())
        stopped = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            stopped.cancel()
        if self.stream_error is not None:
            raise ApiError(self.stream_error)
        if self.stop.is_set():
            return

        async def online(id_agent: int) -> None:
            await self.setup_request(
                "PUT",
                "/api/v1/me/status",
                json={"status": "online"},
                headers=self.operator_tokens[id_agent],
            )

        await _together(online(o) for o in operators)

    def _supervisor_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.supervisor_token}"}

    # the event stream

    def stream_url(self) -> str:
        base = self.plan.base_url
        ws = "wss" + base[len("https") :] if base.startswith("https") else "ws" + base[4:]
        url = f"{ws}/vm/events?token_session={self.supervisor_token}"
        if self.last_seq is None:
            return url
        epoch = "" if self.epoch is None else f"&epoch={quote(self.epoch)}"
        return f"{url}&after={self.last_seq}{epoch}"

    async def listen(self) -> None:
        """Read the supervisor's stream; resume after a drop; a lost stream stops the load."""
        while True:
            try:
                async with connect(
                    self.stream_url(),
                    compression=None,
                    open_timeout=REQUEST_TIMEOUT,
                    max_queue=4096,
                    max_size=2**22,
                ) as ws:
                    await self._read(ws)
                self.stream_reconnects += 1  # closed normally: the server is stopping?
                self.stream_failures += 1
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                if code == 4401:
                    return self._lose_stream("the supervisor's token was refused (4401)")
                if code == 4410:  # events gone or another stream: start afresh, counting
                    self.events_lost, self.last_seq, self.epoch = True, None, None
                self.stream_reconnects += 1
                self.stream_failures += 1
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                self.stream_failures += 1
                if self.stream_failures > WS_RECONNECTS or not self.stream_ready.is_set():
                    reason = str(exc) or type(exc).__name__
                    return self._lose_stream(f"cannot open the event stream ({reason})")
                self.stream_reconnects += 1
            if self.stream_failures > WS_RECONNECTS:
                return self._lose_stream("the event stream keeps closing")
            await asyncio.sleep(min(2.0, 0.1 * 2**self.stream_failures))

    def _lose_stream(self, reason: str) -> None:
        self.stream_error = reason
        self.stop.set()

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                self.on_frame(json.loads(raw))
            except (ValueError, AttributeError, TypeError):
                continue  # not an event of the expected shape: ignored

    def on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("kind")
        if kind == "hello":
            if self.last_seq is None:
                self.last_seq = int(frame.get("seq") or 0)
            if isinstance(epoch := frame.get("epoch"), str):
                self.epoch = epoch
            self.stream_failures = 0
            self.stream_ready.set()
            return
        seq = frame.get("seq")
        if isinstance(seq, int):
            self.last_seq = seq
        data = frame.get("data") or {}
        if kind == "call.offered":
            call_id, id_op = data.get("id_call"), data.get("id_op")
            self.note(call_id, offered=True)
            if isinstance(call_id, str) and id_op in self.operator_tokens and self.operators_act:
                job = asyncio.create_task(self.take(id_op, call_id))
                self.operator_jobs.add(job)
                job.add_done_callback(self.operator_jobs.discard)
        elif kind == "call.answered":
            self.note(data.get("id_call"), answered=True)
        elif kind == "call.ended":
            record = data.get("record") or {}
            self.note(record.get("id_call"), outcome=str(record.get("outcome")))

    def note(
        self, call_id: Any, *, offered: bool = False, answered: bool = False, outcome: str = ""
    ) -> None:
        if not isinstance(call_id, str):
            return
        call = self.calls.get(call_id)
        ours = call is not None
        if call is None:
            call = self.early.get(call_id)
            if call is None:
                if len(self.early) >= EARLY_EVENTS_KEPT:
                    del self.early[next(iter(self.early))]
                call = self.early[call_id] = _Call()
        if offered and call.offered_at is None:
            call.offered_at = self.loop.time()
        if answered and not call.answered:
            call.answered = True
            self.counts.answered += ours
        if outcome and call.outcome is None:
            call.outcome = outcome
            if ours:
                self.counts.ended += 1
                self.check_settled()

    def check_settled(self) -> None:
        if self.arrivals_done and self.counts.ended >= self.counts.placed:
            self.settled.set()

    # operators

    async def take(self, id_op: int, call_id: str) -> None:
        """An operator's phone rings: answer after a while, talk, hang up."""
        headers = self.operator_tokens[id_op]
        await asyncio.sleep(_pick(self.operator_rng, self.plan.answer_delay))
        if not self.operators_act:
            return
        answered = await self.send(
            "POST",
            f"/api/v1/me/calls/{call_id}/answer",
            kind="answer",
            expected=(200, 404, 409),
            headers=headers,
        )
        if answered is None:
            return
        if answered.status_code != 200:  # taken by another operator, or the caller left
            self.answers_lost += 1
            return
        self.connected[call_id] = id_op
        try:
            await asyncio.sleep(_pick(self.operator_rng, self.plan.talk))
            await self.hang_up(id_op, call_id)
        finally:
            self.connected.pop(call_id, None)

    async def hang_up(self, id_op: int, call_id: str) -> None:
        await self.send(
            "POST",
            f"/api/v1/me/calls/{call_id}/hangup",
            kind="hangup",
            expected=(200, 404, 409),  # the caller may have hung up first
            headers=self.operator_tokens[id_op],
        )

    # callers

    async def arrivals(self) -> None:
        """Poisson arrivals for ``duration`` seconds, at most ``max_calls``; bounded in flight."""
        plan = self.plan
        in_flight = asyncio.Semaphore(plan.concurrency)
        placing: set[asyncio.Task[None]] = set()
        start = self.loop.time()
        due = start
        for _ in range(plan.max_calls):
            due += self.rng.expovariate(plan.rate)
            if due - start > plan.duration:
                break
            body = self._caller()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), max(0.0, due - self.loop.time()))
            if self.stop.is_set():
                break
            await in_flight.acquire()
            task = asyncio.create_task(self.place(body, in_flight))
            placing.add(task)
            task.add_done_callback(placing.discard)
        if placing:
            await asyncio.gather(*placing)

    def _caller(self) -> dict[str, Any]:
        rng = self.rng
        body: dict[str, Any] = {
            "from": f"336{rng.choice('124578')}{rng.randrange(10**7):07d}",  # valid mobiles
            "to": rng.choice(self.numbers),
        }
        dtmf = rng.choice(self.plan.dtmf_choices)
        if dtmf:
            body["dtmf"] = dtmf
        if rng.random() < self.plan.abandon:
            body["hangup_after"] = max(0.001, _pick(rng, self.plan.patience))
        return body

    async def place(self, body: dict[str, Any], in_flight: asyncio.Semaphore) -> None:
        sent: list[float] = []
        try:
            response = await self.send(
                "POST",
                "/api/v1/sim/calls",
                kind="place call",
                expected=(201,),
                sent=sent,
                json=body,
                auth=self.plan.auth,
            )
        finally:
            in_flight.release()
        if response is None:
            return
        try:
            call_id = str(response.json()["id_call"])
        except (ValueError, KeyError, TypeError):
            self.api_errors["place call: unexpected answer"] += 1
            return
        call = self.early.pop(call_id, None) or _Call()
        call.placed_at = sent[0]
        self.calls[call_id] = call
        self.counts.placed += 1
        self.counts.answered += call.answered
        if call.outcome is not None:
            self.counts.ended += 1

    # the whole run

    async def run(self, on_progress: Callable[[], None]) -> None:
        clock = time.monotonic()
        ticker = self.spawn(self._tick(on_progress))
        try:
            await self.prepare()
            self.started = datetime.now(UTC)
            if not self.stop.is_set():
                await self.arrivals()
            self.arrivals_done = True
            self.check_settled()
            await self._wait_any(self.settled, self.stop, seconds=self.plan.drain)
        finally:
            self.interrupted = self.stop.is_set() and self.stream_error is None
            await self._wind_down()
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            on_progress()
            self.elapsed = time.monotonic() - clock

    async def _tick(self, on_progress: Callable[[], None]) -> None:
        while True:
            on_progress()
            await asyncio.sleep(0.1)

    async def _wait_any(self, *events: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _wind_down(self) -> None:
        """Operators stop; calls they hold are hung up; statuses restored; figures read."""
        self.operators_act = False
        connected = dict(self.connected)
        jobs = list(self.operator_jobs)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        if connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(self.hang_up(o, c) for c, o in connected.items())),
                    FINAL_HANGUP_SECONDS,
                )
            deadline = self.loop.time() + FINAL_EVENTS_SECONDS
            while self.stream_error is None and self.loop.time() < deadline:  # last call.ended
                if all(self.calls.get(c, _Call(outcome="?")).outcome for c in connected):
                    break
                await asyncio.sleep(0.05)
        self.finished = datetime.now(UTC)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        with contextlib.suppress(ApiError, TimeoutError):
            await asyncio.wait_for(self._restore(), FINAL_HANGUP_SECONDS)
        with contextlib.suppress(ApiError, TimeoutError):
            self.figures = await asyncio.wait_for(self._figures(), FINAL_HANGUP_SECONDS)

    async def _restore(self) -> None:
        if self.plan.leave_online:
            return

        async def back(id_op: int, presence: str) -> None:
            await self.send(
                "PUT",
                "/api/v1/me/status",
                kind="restore status",
                json={"status": presence},
                headers=self.operator_tokens[id_op],
            )

        await asyncio.gather(
            *(
                back(id_op, presence)
                for id_op, presence in self.presence_before.items()
                if presence != "online" and id_op in self.operator_tokens
            )
        )

    async def _figures(self) -> dict[str, Any] | None:
        if self.started is None:
            return None
        until = (self.finished or datetime.now(UTC)) + timedelta(seconds=1)
        answer = await self.setup_request(
            "GET",
            "/api/v1/figures",
            params={"since": _iso(self.started), "until": _iso(until)},
            auth=self.plan.auth,
        )
        total = answer["groups"][-1] if answer.get("groups") else {}
        keys = ("offered", *OUTCOMES)
        return {k: int(total.get(k, 0)) for k in keys}

    # the result

    def summary(self) -> dict[str, Any]:
        outcomes = Counter(c.outcome for c in self.calls.values() if c.outcome is not None)
        latencies = [
            c.offered_at - c.placed_at
            for c in self.calls.values()
            if c.offered_at is not None and c.placed_at is not None
        ]
        placed = len(self.calls)
        ended = {k: outcomes.get(k, 0) for k in OUTCOMES}
        other = sum(n for k, n in outcomes.items() if k not in OUTCOMES)
        server = self.figures
        agrees = (
            None
            if server is None
            else server["offered"] == placed - self._unfinished(outcomes)
            and all(server[k] == ended[k] for k in OUTCOMES)
        )
        until = self.finished or datetime.now(UTC)
        return {
            "url": self.plan.base_url,
            "since": _iso(self.started) if self.started else None,
            "until": _iso(until + timedelta(seconds=1)),
            "seconds": round(self.elapsed, 3),
            "rate": self.plan.rate,
            "duration": self.plan.duration,
            "operators": len(self.operator_tokens),
            "operators_left": "online" if self.plan.leave_online else "restored",
            "placed": placed,
            **ended,
            "other_outcomes": other,
            "unfinished": self._unfinished(outcomes),
            "offer_latency_ms": {
                "p50": percentile_ms(latencies, 0.5),
                "p99": percentile_ms(latencies, 0.99),
                "samples": len(latencies),
            },
            "answers_lost": self.answers_lost,
            "api_errors": sum(self.api_errors.values()),
            "api_error_kinds": dict(self.api_errors),
            "api_error_examples": self.api_error_examples,
            "server": server,
            "server_agrees": agrees,
            "stream_reconnects": self.stream_reconnects,
            "events_lost": self.events_lost,
            "stream_error": self.stream_error,
            "interrupted": self.interrupted,
        }

    def _unfinished(self, outcomes: Counter[str]) -> int:
        return len(self.calls) - sum(outcomes.values())


# --- sim load: the command ---------------------------------------------------------------------


LOAD_HELP = (
    "Drive realistic traffic for --duration seconds at --rate calls/s, then summarize.\n\n"
    "Callers arrive at random (Poisson), at most RATE x DURATION of them, each to one of the "
    "numbers, keying one of the --dtmf-choices; an --abandon fraction of them hang up after "
    "--patience. The account's operators (their tokens are fetched, keeping live ones) are set "
    "online; when one is offered a call (seen on the event stream of the account's first "
    "supervisor), they answer after --answer-delay and hang up after --talk. An answer refused "
    'because the offer went elsewhere or the caller left is normal ("answers lost").\n\n'
    "At the end the tool waits up to --drain seconds for the calls in progress, hangs up those "
    "its operators still hold, and puts every operator back to the status they had before "
    "(--leave-online keeps them online). The summary counts what became of the calls (from the "
    "events seen) beside the server's figures for the window, the offer latency (call placed "
    "to call.offered seen) and the API errors. Ctrl-C stops early with the summary so far "
    "(exit code 130); a lost event stream also stops it (exit code 1)."
)


@sim_app.command("load", help=LOAD_HELP)
def sim_load(
    rate: Annotated[float, typer.Option("--rate", help="Calls per second, on average.")],
    duration: Annotated[float, typer.Option("--duration", help="Seconds of arrivals.")],
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to", help="A number to call (repeat); default: every number of the account."
        ),
    ] = None,
    dtmf_choices: Annotated[
        str,
        typer.Option(
            "--dtmf-choices",
            help="IVR inputs, one picked at random per call, comma-separated; an empty choice "
            'keys nothing (e.g. "1,2123456#,").',
        ),
    ] = "",
    abandon: Annotated[
        float,
        typer.Option("--abandon", help="Fraction of callers who hang up after --patience."),
    ] = 0.1,
    patience: Annotated[
        str,
        typer.Option(
            "--patience", help="Seconds after arrival when those callers hang up: S or MIN-MAX."
        ),
    ] = "1-15",
    answer_delay: Annotated[
        str,
        typer.Option(
            "--answer-delay", help="Seconds an operator lets the phone ring: S or MIN-MAX."
        ),
    ] = "1-4",
    talk: Annotated[
        str, typer.Option("--talk", help="Seconds of talk before the operator hangs up.")
    ] = "5-30",
    operators: Annotated[
        str,
        typer.Option(
            "--operators", help="'all' the account's operators, or the first N (by id_agent)."
        ),
    ] = "all",
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed of the random choices.", show_default=False),
    ] = None,
    drain: Annotated[
        float,
        typer.Option("--drain", help="Seconds to wait at the end for calls still in progress."),
    ] = 60.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="HTTP requests in flight at most.")
    ] = 50,
    leave_online: Annotated[
        bool,
        typer.Option(
            "--leave-online", help="Leave the operators online instead of restoring their status."
        ),
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    login: LoginOpt = None,
    password: PasswordOpt = None,
    as_json: JsonOpt = False,
) -> None:
    base = _base_url(url)
    auth = _credentials(login, password)
    if not (math.isfinite(rate) and rate > 0):
        fail("--rate must be more than 0 calls per second")
    if not (math.isfinite(duration) and duration > 0):
        fail("--duration must be more than 0 seconds")
    if rate * duration > 1_000_000:
        fail("--rate x --duration is at most 1,000,000 calls")
    if not 0 <= abandon <= 1:
        fail("--abandon is a fraction between 0 and 1")
    if not (math.isfinite(drain) and drain >= 0):
        fail("--drain must be 0 seconds or more")
    if not 1 <= concurrency <= 1000:
        fail("--concurrency must be between 1 and 1000")
    if operators == "all":
        how_many = None
    elif operators.isdigit():
        how_many = int(operators)
    else:
        fail(f"--operators takes 'all' or a number, not {operators!r}")
    choices = tuple(c.strip() for c in dtmf_choices.split(","))
    for choice in choices:
        if not set(choice) <= set("0123456789*#"):
            fail(f"--dtmf-choices keys are 0-9, * and #, not {choice!r}")
    plan = LoadPlan(
        base_url=base,
        auth=auth,
        rate=rate,
        duration=duration,
        numbers=tuple(to or ()),
        dtmf_choices=choices,
        abandon=abandon,
        patience=_seconds_range(patience, "--patience"),
        answer_delay=_seconds_range(answer_delay, "--answer-delay"),
        talk=_seconds_range(talk, "--talk"),
        operators=how_many,
        seed=seed,
        drain=drain,
        concurrency=concurrency,
        leave_online=leave_online,
    )
    summary = _run_load(plan)
    if as_json:
        print(json.dumps(summary))
    else:
        _print_summary(summary)
    if summary["interrupted"]:
        raise typer.Exit(EXIT_INTERRUPTED)
    if summary["stream_error"]:
        print(f"error: {summary['stream_error']}", file=sys.stderr)
        raise typer.Exit(EXIT_STREAM_LOST)


def _run_load(plan: LoadPlan) -> dict[str, Any]:
    stderr = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    tasks = {
        name: progress.add_task(name, total=plan.max_calls)
        for name in ("placed", "answered", "ended")
    }

    async def main() -> dict[str, Any]:
        limits = httpx.Limits(
            max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency
        )
        timeout = httpx.Timeout(REQUEST_TIMEOUT, pool=None)
        async with httpx.AsyncClient(
            base_url=plan.base_url, limits=limits, timeout=timeout
        ) as client:
            load = LoadRun(plan, client)
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGINT, _on_interrupt, loop, load)

            def show() -> None:
                counts = load.counts
                progress.update(tasks["placed"], completed=counts.placed)
                progress.update(tasks["answered"], completed=counts.answered)
                progress.update(tasks["ended"], completed=counts.ended)

            try:
                with progress:
                    await load.run(show)
            finally:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signal.SIGINT)
            return load.summary()

    try:
        return asyncio.run(main())
    except ApiError as exc:
        fail(exc.message)
    except KeyboardInterrupt:  # a second Ctrl-C
        print("error: interrupted", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _on_interrupt(loop: asyncio.AbstractEventLoop, load: LoadRun) -> None:
    """First Ctrl-C: stop and summarize; a second one: give up at once."""
    load.stop.set()
    loop.remove_signal_handler(signal.SIGINT)  # the default handler again: KeyboardInterrupt


def _print_summary(summary: dict[str, Any]) -> None:
    server = summary["server"] or {}
    rows: list[dict[str, Any]] = [
        {"": "placed", "seen": summary["placed"], "server": server.get("offered")}
    ]
    for name in OUTCOMES:
        rows.append({"": name, "seen": summary[name], "server": server.get(name)})
    rows.append({"": "unfinished", "seen": summary["unfinished"], "server": None})
    latency = summary["offer_latency_ms"]
    rows += [
        {"": "offer latency p50 ms", "seen": latency["p50"], "server": None},
        {"": "offer latency p99 ms", "seen": latency["p99"], "server": None},
        {"": "answers lost", "seen": summary["answers_lost"], "server": None},
        {"": "API errors", "seen": summary["api_errors"], "server": None},
    ]
    _print_table(rows, ["", "seen", "server"])
    examples = summary["api_error_examples"]
    for kind, count in summary["api_error_kinds"].items():
        example = examples.get(kind)
        print(f"  {count} x {kind}" + (f" (e.g. {example})" if example else ""))
    agrees = summary["server_agrees"]
    print(
        f"{summary['since']} .. {summary['until']}: "
        + {None: "no server figures", True: "the server agrees", False: "the server DIFFERS"}[
            agrees
        ]
        + f"; operators {summary['operators_left']}"
        + ("; interrupted" if summary["interrupted"] else "")
    )
