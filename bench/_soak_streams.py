"""The soak's event streams: one per operator (their banner) and a few supervisors' pages.

Each stream is read the way the banner reads it (``js/live.js``): resume after a drop with
``after`` = the last ``seq`` and the ``epoch``, start afresh after 4410. What each stream saw
is counted: frames, reconnections and why, and sequence faults — on a supervisor's stream
(every event of the account) any missing ``seq``; on an operator's (the account's stream
filtered, so with gaps by design) a ``seq`` that does not increase.
(``bench/`` is a folder of scripts: ``soak.py`` imports this as ``_soak_streams``.)
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from _support import HOST

OPEN_TIMEOUT = 30.0
RECONNECT_DELAY = 0.2

# (stream, frame) → None: what the load does with each event frame (not hello, not ping).
OnFrame = Callable[["Stream", dict[str, Any]], None]


@dataclass
class Stream:
    """One ``/vm/events`` connection kept open for the whole run."""

    port: int
    token: str
    on_frame: OnFrame
    supervisor: bool
    id_op: int | None = None
    frames: int = 0
    hellos: int = 0
    reconnects: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    missing: int = 0  # supervisor: seq numbers skipped
    disorder: int = 0  # any stream: a seq not above the previous one
    last_seq: int | None = None
    epoch: str | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self) -> str:
        url = f"ws://{HOST}:{self.port}/vm/events?token_session={self.token}"
        if self.last_seq is None:
            return url
        epoch = "" if self.epoch is None else f"&epoch={quote(self.epoch)}"
        return f"{url}&after={self.last_seq}{epoch}"

    async def run(self) -> None:
        """Read until cancelled, reconnecting after anything."""
        while True:
            try:
                async with connect(
                    self.url(),
                    compression=None,
                    open_timeout=OPEN_TIMEOUT,
                    max_queue=None,
                    max_size=2**22,
                    proxy=None,
                ) as ws:
                    async for raw in ws:
                        self.receive(raw if isinstance(raw, str) else raw.decode())
                self.problems["closed by the server (1000)"] += 1
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                self.problems[f"closed with code {code}"] += 1
                if code == 4410:  # events lost or another epoch: start from the live state
                    self.last_seq = None
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self.problems[type(exc).__name__] += 1
            self.reconnects += 1
            await asyncio.sleep(RECONNECT_DELAY)

    def receive(self, text: str) -> None:
        frame = json.loads(text)
        kind = frame.get("kind")
        if kind == "hello":
            self.hellos += 1
            if self.last_seq is None:
                self.last_seq = int(frame["seq"])
            self.epoch = frame.get("epoch")
            self.ready.set()
            return
        if kind == "ping":
            return
        self.frames += 1
        seq = int(frame["seq"])
        if self.last_seq is not None:
            if seq <= self.last_seq:
                self.disorder += 1
            elif self.supervisor and seq != self.last_seq + 1:
                self.missing += seq - self.last_seq - 1
        self.last_seq = seq
        self.on_frame(self, frame)


@dataclass
class Streams:
    """Every stream of the run, started together and stopped together."""

    operators: list[Stream]
    supervisors: list[Stream]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def all(self) -> list[Stream]:
        return [*self.operators, *self.supervisors]

    async def open(self) -> None:
        """Start every stream; return once each has had its ``hello``."""
        self.tasks = [asyncio.create_task(s.run()) for s in self.all]
        for stream in self.all:
            await stream.ready.wait()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def summary(self) -> list[str]:
        """Lines for the report: frames per stream, reconnections, sequence faults."""
        lines = []
        for name, group in (("operator", self.operators), ("supervisor", self.supervisors)):
            if not group:
                continue
            frames = sorted(s.frames for s in group)
            problems: Counter[str] = Counter()
            for stream in group:
                problems.update(stream.problems)
            why = ", ".join(f"{n} {kind}" for kind, n in problems.most_common())
            lines.append(
                f"{name} streams: {len(group)}, events received per stream min {frames[0]} / "
                f"median {frames[len(frames) // 2]} / max {frames[-1]} "
                f"(total {sum(frames)}); reconnections {sum(s.reconnects for s in group)}"
                + (f" ({why})" if why else "")
                + f"; seq gaps {sum(s.missing for s in group)}, "
                f"seq not increasing {sum(s.disorder for s in group)}"
            )
        return lines

    @property
    def faults(self) -> int:
        """Gaps and disorder: events a client would have missed or seen twice."""
        return sum(s.missing + s.disorder for s in self.all)
