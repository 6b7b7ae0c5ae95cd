"""The soak's traffic: callers placing simulated calls, operators acting on their banners.

Callers arrive at random (Poisson) through ``POST /api/v1/sim/calls``: each to one of the
account's numbers, keying an IVR choice on the numbers with the menu, and some of them give up
after a patience (``hangup_after``). Operators act only on what their own event stream says,
through the call-control API with their session token: an offer is answered after a delay,
sometimes declined or left to ring; a conversation lasts a talk time drawn from a log-normal
distribution, is sometimes put on hold for a while, and ends with a hang-up or a blind
transfer to an idle colleague or a group. An operator put on break by the server for
unanswered offers (``max_no_answer``) comes back online after a few seconds.

What the load itself knows of each call (placed, answered by one of its operators, the keys
and patience it gave the caller) is kept beside what the first supervisor's stream said of it
(its ``call.ended`` outcome), so that the report can compare both with the records.
(``bench/`` is a folder of scripts: ``soak.py`` imports this as ``_soak_traffic``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from _soak_account import HANGUP_KEY, Account
from _soak_streams import Stream
from acd_end_to_end import HttpError, HttpPool, bearer

EXAMPLES_KEPT = 5
GONE = (404, 409)  # the call ended or moved on meanwhile: a race a real operator meets too


@dataclass(frozen=True)
class Behaviour:
    """The probabilities and times of the simulation (seconds of the compressed day)."""

    abandon: float = 0.08  # callers who give up after their patience
    patience: tuple[float, float] = (0.5, 8.0)
    ignore: float = 0.02  # offers left to ring until the group's ring timeout
    decline: float = 0.04
    answer_delay: tuple[float, float] = (0.3, 2.5)
    talk_median: float = 5.0  # log-normal, sigma TALK_SIGMA, at most TALK_CAP medians
    hold: float = 0.15
    hold_time: tuple[float, float] = (0.5, 3.0)
    transfer: float = 0.06
    transfer_to_operator: float = 0.6  # of transfers; the others go to a group
    back_online: tuple[float, float] = (1.0, 3.0)


TALK_SIGMA = 0.6
TALK_CAP = 6.0
KEYS = (("1", 25), ("2", 25), ("3*", 20), (HANGUP_KEY, 5), ("", 15), ("7", 10))


@dataclass(slots=True)
class CallView:
    """One call as the load saw it."""

    sent: float = math.nan  # perf_counter when the placement was written; nan: not ours yet
    number: str = ""
    keys: str = ""
    ivr: bool = False
    patience: float | None = None
    offered_at: float | None = None  # first call.offered on a banner
    answered: bool = False  # one of our operators' answers was accepted (200)
    outcome: str | None = None  # the first supervisor's call.ended
    ends_seen: int = 0

    def expected(self) -> str:
        """The outcome the load's own actions imply."""
        if self.answered:
            return "answered"
        if self.ivr and self.keys == HANGUP_KEY:
            return "missed"  # the IVR's goodbye
        if self.patience is not None:
            return "abandoned"
        return "unexpected"  # nobody answered, yet the caller would have waited forever


@dataclass
class Traffic:
    """Callers and operators for one run."""

    http: HttpPool
    account: Account
    behaviour: Behaviour
    seed: int | None = None
    calls: dict[str, CallView] = field(default_factory=dict)  # placed (201)
    early: dict[str, CallView] = field(default_factory=dict)  # seen before the 201
    placed: int = 0
    ended: int = 0
    lags: list[float] = field(default_factory=list)  # placement due → sent
    latencies: list[float] = field(default_factory=list)  # sent → offer on a banner, no IVR
    ivr_latencies: list[float] = field(default_factory=list)  # the same through the IVR
    actions: Counter[str] = field(default_factory=Counter)  # accepted (200/201)
    races: Counter[str] = field(default_factory=Counter)  # 404/409: the call had moved on
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    idle: set[int] = field(default_factory=set)  # our operators online and idle
    acting: bool = True

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.jobs: set[asyncio.Task[None]] = set()
        self.headers = {i: bearer(t) for i, t in self.account.operator_tokens.items()}
        self.all_ended = asyncio.Event()
        self.arrivals_done = False

    # requests

    async def send(
        self,
        kind: str,
        method: str,
        path: str,
        headers: bytes,
        body: Any = None,
        expected: tuple[int, ...] = (200,),
        sent: list[float] | None = None,
    ) -> tuple[int, bytes] | None:
        """A request of the load: refusals other than ``expected`` and ``GONE`` are errors."""
        payload = b"" if body is None else json.dumps(body).encode()
        try:
            status, content = await self.http.request(method, path, headers, payload, sent)
        except (OSError, HttpError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self.error(kind, repr(exc))
            return None
        if status in expected:
            self.actions[kind] += 1
        elif status in GONE:
            self.races[kind] += 1
        else:
            self.error(f"{kind} HTTP {status}", content.decode(errors="replace"))
        return status, content

    def error(self, kind: str, example: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(f"{kind}: {example[:300]}")

    def spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        self.jobs.add(task)
        task.add_done_callback(self.jobs.discard)

    def view(self, id_call: str) -> CallView:
        found = self.calls.get(id_call)
        if found is None:
            found = self.early.setdefault(id_call, CallView())
        return found

    # what the streams say

    def on_frame(self, stream: Stream, frame: dict[str, Any]) -> None:
        kind, data = frame["kind"], frame["data"]
        if stream.supervisor:
            if stream is self.ledger and kind == "call.ended":
                call = self.view(data["record"]["id_call"])
                call.ends_seen += 1
                if call.outcome is None:
                    call.outcome = data["record"]["outcome"]
                    if not math.isnan(call.sent):
                        self.ended += 1
                        self.check_ended()
            return
        id_op = stream.id_op
        assert id_op is not None
        if kind == "call.offered" and data["id_op"] == id_op:
            call = self.view(data["id_call"])
            if call.offered_at is None:
                call.offered_at = time.perf_counter()
                if not math.isnan(call.sent):
                    self.note_latency(call)
            if self.acting:
                self.spawn(self.offered(id_op, data["id_call"]))
        elif kind == "operator.status" and data["id_op"] == id_op:
            if data["presence"] == "online" and data["activity"] == "idle":
                self.idle.add(id_op)
            else:
                self.idle.discard(id_op)
            if data["presence"] == "break" and data["reason"] == "no_answer" and self.acting:
                self.spawn(self.back_online(id_op))

    def note_latency(self, call: CallView) -> None:
        assert call.offered_at is not None
        kept = self.ivr_latencies if call.ivr else self.latencies
        kept.append(call.offered_at - call.sent)

    ledger: Stream | None = None  # the supervisor stream whose call.ended outcomes are kept

    def check_ended(self) -> None:
        if self.arrivals_done and self.ended >= self.placed:
            self.all_ended.set()

    # operators

    async def set_online(self) -> None:
        await asyncio.gather(
            *(
                self.send("status", "PUT", "/api/v1/me/status", h, {"status": "online"})
                for h in self.headers.values()
            )
        )

    async def back_online(self, id_op: int) -> None:
        await asyncio.sleep(self.rng.uniform(*self.behaviour.back_online))
        if self.acting:
            path = "/api/v1/me/status"
            await self.send("back online", "PUT", path, self.headers[id_op], {"status": "online"})

    async def offered(self, id_op: int, id_call: str) -> None:
        b, rng, headers = self.behaviour, self.rng, self.headers[id_op]
        draw = rng.random()
        if draw < b.ignore:
            return  # lets it ring: the group's ring timeout gives it to someone else
        path = f"/api/v1/me/calls/{id_call}"
        if draw < b.ignore + b.decline:
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            await self.send("decline", "POST", f"{path}/decline", headers)
            return
        await asyncio.sleep(rng.uniform(*b.answer_delay))
        answer = await self.send("answer", "POST", f"{path}/answer", headers)
        if answer is None or answer[0] != 200:
            return
        self.view(id_call).answered = True
        await self.converse(id_op, id_call, path)

    async def converse(self, id_op: int, id_call: str, path: str) -> None:
        b, rng, headers = self.behaviour, self.rng, self.headers[id_op]
        talk = min(b.talk_median * math.exp(rng.gauss(0, TALK_SIGMA)), TALK_CAP * b.talk_median)
        if rng.random() < b.hold:
            before = talk * rng.uniform(0.2, 0.8)
            await asyncio.sleep(before)
            held = await self.send("hold", "POST", f"{path}/hold", headers)
            if held is None or held[0] != 200:
                return
            await asyncio.sleep(rng.uniform(*b.hold_time))
            resumed = await self.send("unhold", "POST", f"{path}/unhold", headers)
            if resumed is None or resumed[0] != 200:
                return
            talk -= before
        await asyncio.sleep(talk)
        if rng.random() < b.transfer:
            colleagues = sorted(self.idle - {id_op})
            if colleagues and rng.random() < b.transfer_to_operator:
                target: dict[str, int] = {"id_op": rng.choice(colleagues)}
            else:
                target = {"id_group": rng.choice(self.account.group_ids)}
            moved = await self.send("transfer", "POST", f"{path}/transfer", headers, target)
            if moved is None or moved[0] == 200 or moved[0] not in GONE:
                return
            # 409: the colleague was taken meanwhile; the operator hangs up instead
        await self.send("hangup", "POST", f"{path}/hangup", headers)

    # callers

    def caller(self) -> CallView:
        rng, b = self.rng, self.behaviour
        number, ivr = rng.choice(list(self.account.numbers.items()))
        call = CallView(number=number, ivr=ivr)
        if ivr:
            keys = rng.choices([k for k, _ in KEYS], [w for _, w in KEYS])[0]
            if keys == "3*":
                keys = "3" + "".join(rng.choice("0123456789") for _ in range(6)) + "#"
            call.keys = keys
        # A caller who keys the IVR's goodbye leaves by it (missed), never by impatience: a
        # patience shorter than the IVR would make the outcome a race, not a prediction.
        if rng.random() < b.abandon and call.keys != HANGUP_KEY:
            call.patience = round(rng.uniform(*b.patience), 3)
        return call

    async def arrivals(self, rate: float, seconds: float, in_flight: int) -> None:
        """Poisson arrivals at ``rate`` for ``seconds``; at most ``in_flight`` placements
        waiting for their answer (more would only queue in the HTTP pool)."""
        slots = asyncio.Semaphore(in_flight)
        placing: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        due = start
        while True:
            due += self.rng.expovariate(rate)
            if due - start > seconds:
                break
            call = self.caller()
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            task = loop.create_task(self.place(call, due, slots))
            placing.add(task)
            task.add_done_callback(placing.discard)
        if placing:
            await asyncio.gather(*placing)
        self.arrivals_done = True
        self.check_ended()

    async def place(self, call: CallView, due: float, slots: asyncio.Semaphore) -> None:
        rng = self.rng
        caller = f"336{rng.choice('124578')}{rng.randrange(10**7):07d}"  # valid mobiles
        body: dict[str, Any] = {"from": caller, "to": call.number}
        if call.keys:
            body["dtmf"] = call.keys
        if call.patience is not None:
            body["hangup_after"] = call.patience
        sent: list[float] = []
        try:
            answer = await self.send(
                "place", "POST", "/api/v1/sim/calls", self.account.headers, body, (201,), sent
            )
        finally:
            slots.release()
        if answer is None or answer[0] != 201:
            return
        id_call = json.loads(answer[1])["id_call"]
        call.sent = sent[0]
        self.lags.append(sent[0] - due)
        seen = self.early.pop(id_call, None)
        if seen is not None:
            call.offered_at, call.answered = seen.offered_at, seen.answered
            call.outcome, call.ends_seen = seen.outcome, seen.ends_seen
            if call.offered_at is not None:
                self.note_latency(call)
        self.calls[id_call] = call
        self.placed += 1
        if call.outcome is not None:
            self.ended += 1

    async def stop(self) -> None:
        """Operators stop acting; what they were doing is cancelled."""
        self.acting = False
        jobs = list(self.jobs)
        for job in jobs:
            job.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*jobs, return_exceptions=True)
