"""``sim load``: one run — set-up, callers, operators, drain and clean-up.

Callers arrive at random (Poisson) through ``POST /api/v1/sim/calls``; the account's
operators, set online, answer the calls the supervisor's stream (``CallFeed``) says they are
offered, talk and hang up. At the end the run hangs up what its operators still hold, puts
their statuses back and reads the server's figures for the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from voicemgmt.cli.sim.api import ApiError, LoadRequests, iso
from voicemgmt.cli.sim.stream import CallFeed, TrackedCall

OUTCOMES = ("answered", "abandoned", "missed", "overflowed", "failed")
FINAL_HANGUP_SECONDS = 5.0
FINAL_EVENTS_SECONDS = 2.0


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


async def _together(jobs: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run jobs side by side; the first failure cancels the others and is raised as is."""
    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(job)
    except BaseExceptionGroup as problems:
        raise problems.exceptions[0] from None


class LoadRun:
    """One ``sim load``: set-up, arrivals, operators, event stream, drain, clean-up."""

    def __init__(self, plan: LoadPlan, client: httpx.AsyncClient) -> None:
        self.plan = plan
        self.api = LoadRequests(client, plan.base_url, plan.concurrency)
        self.stop = asyncio.Event()
        self.feed = CallFeed(plan.base_url, self.stop, self._offered)
        self.answers_lost = 0  # answer refused: the offer went elsewhere or the caller left
        self.operator_tokens: dict[int, dict[str, str]] = {}  # id → headers
        self.presence_before: dict[int, str] = {}
        self.connected: dict[str, int] = {}  # call answered by our operator
        self.numbers: list[str] = []
        self.started: datetime | None = None
        self.finished: datetime | None = None
        self.interrupted = False
        self.figures: dict[str, Any] | None = None
        self.elapsed = 0.0
        seed = plan.seed
        self.rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
        self.operator_rng = random.Random(None if seed is None else seed + 1)  # noqa: S311
        self.operators_act = True
        self.tasks: set[asyncio.Task[Any]] = set()  # the stream's reader, the progress
        self.operator_jobs: set[asyncio.Task[None]] = set()
        self.loop = asyncio.get_running_loop()

    def spawn(self, job: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(job)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # set-up

    async def prepare(self) -> None:
        plan, api = self.plan, self.api
        auth = plan.auth
        if plan.numbers:
            for number in plan.numbers:
                await api.setup("GET", f"/api/v1/numbers/{number}", auth=auth)
            self.numbers = list(plan.numbers)
        else:
            self.numbers = [n["e164"] for n in await api.listing("/api/v1/numbers", auth)]
            if not self.numbers:
                raise ApiError("the account has no numbers to call")
        supervisors = await api.setup("GET", "/api/v1/supervisors", params={"limit": 1}, auth=auth)
        if not supervisors["items"]:
            raise ApiError("the account has no supervisor, whose event stream sim load reads")
        id_admin = supervisors["items"][0]["id_admin"]
        answer = await api.setup(
            "POST", "/vm/token", json={"id_admin": id_admin, "keep": 1}, auth=auth
        )
        self.feed.token = answer["token"]
        operators = sorted(o["id_agent"] for o in await api.listing("/api/v1/operators", auth))
        if plan.operators is not None:
            operators = operators[: plan.operators]

        async def token_for(id_agent: int) -> None:
            got = await api.setup(
                "POST", "/vm/token", json={"id_agent": id_agent, "keep": 1}, auth=auth
            )
            self.operator_tokens[id_agent] = {"Authorization": f"Bearer {got['token']}"}

        await _together(token_for(o) for o in operators)
        live = await api.setup(
            "GET",
            "/api/v1/supervision/live",
            headers={"Authorization": f"Bearer {self.feed.token}"},
        )
        self.presence_before = {
            o["id_op"]: o["presence"] for o in live["operators"] if o["id_op"] in operators
        }
        # The stream first, so that no offer made once operators are online goes unseen.
        self.spawn(self.feed.listen())
        ready = asyncio.ensure_future(self.feed.ready.wait())
        stopped = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            stopped.cancel()
        if self.feed.error is not None:
            raise ApiError(self.feed.error)
        if self.stop.is_set():
            return

        async def online(id_agent: int) -> None:
            await api.setup(
                "PUT",
                "/api/v1/me/status",
                json={"status": "online"},
                headers=self.operator_tokens[id_agent],
            )

        await _together(online(o) for o in operators)

    # operators

    def _offered(self, id_op: Any, call_id: str) -> None:
        if id_op in self.operator_tokens and self.operators_act:
            job = asyncio.create_task(self.take(id_op, call_id))
            self.operator_jobs.add(job)
            job.add_done_callback(self.operator_jobs.discard)

    async def take(self, id_op: int, call_id: str) -> None:
        """An operator's phone rings: answer after a while, talk, hang up."""
        headers = self.operator_tokens[id_op]
        await asyncio.sleep(_pick(self.operator_rng, self.plan.answer_delay))
        if not self.operators_act:
            return
        answered = await self.api.send(
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
        await self.api.send(
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
            response = await self.api.send(
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
            self.api.errors["place call: unexpected answer"] += 1
            return
        self.feed.adopt(call_id, sent[0])

    # the whole run

    async def run(self, on_progress: Callable[[], None]) -> None:
        clock = time.monotonic()
        ticker = self.spawn(self._tick(on_progress))
        try:
            await self.prepare()
            self.started = datetime.now(UTC)
            if not self.stop.is_set():
                await self.arrivals()
            self.feed.arrivals_done = True
            self.feed.check_settled()
            await self._wait_any(self.feed.settled, self.stop, seconds=self.plan.drain)
        finally:
            self.interrupted = self.stop.is_set() and self.feed.error is None
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
            calls = self.feed.calls
            while self.feed.error is None and self.loop.time() < deadline:  # last call.ended
                if all(calls.get(c, TrackedCall(outcome="?")).outcome for c in connected):
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
            await self.api.send(
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
        answer = await self.api.setup(
            "GET",
            "/api/v1/figures",
            params={"since": iso(self.started), "until": iso(until)},
            auth=self.plan.auth,
        )
        total = answer["groups"][-1] if answer.get("groups") else {}
        keys = ("offered", *OUTCOMES)
        return {k: int(total.get(k, 0)) for k in keys}
