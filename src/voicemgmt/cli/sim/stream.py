"""``sim load``: the supervisor's event stream, and what it tells about each call.

The feed reads ``/vm/events`` with a supervisor's token, resumes after a drop (``after`` the
last ``seq`` seen, with the stream's ``epoch``), and keeps per call when it was offered,
whether it was answered and how it ended. Events of a call may arrive before its placement has
answered: they wait in ``early`` until the call is adopted. A lost stream stops the load.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from voicemgmt.cli.sim.api import REQUEST_TIMEOUT

EARLY_EVENTS_KEPT = 20_000  # events of calls whose placement has not answered yet (or others')
WS_RECONNECTS = 5


@dataclass(slots=True)
class TrackedCall:
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


class CallFeed:
    """One supervisor's stream; ``on_offer(id_op, id_call)`` for each ``call.offered``."""

    def __init__(
        self, base_url: str, stop: asyncio.Event, on_offer: Callable[[Any, str], None]
    ) -> None:
        self.base_url = base_url
        self.stop = stop
        self.on_offer = on_offer
        self.token = ""
        self.calls: dict[str, TrackedCall] = {}
        self.early: dict[str, TrackedCall] = {}
        self.counts = Counts()
        self.ready = asyncio.Event()
        self.settled = asyncio.Event()
        self.arrivals_done = False
        self.error: str | None = None
        self.reconnects = 0
        self.events_lost = False
        self.last_seq: int | None = None
        self.epoch: str | None = None  # the stream's identity, sent back with after
        self.failures = 0  # in a row, since the last hello
        self.loop = asyncio.get_running_loop()

    def url(self) -> str:
        base = self.base_url
        ws = "wss" + base[len("https") :] if base.startswith("https") else "ws" + base[4:]
        url = f"{ws}/vm/events?token_session={self.token}"
        if self.last_seq is None:
            return url
        epoch = "" if self.epoch is None else f"&epoch={quote(self.epoch)}"
        return f"{url}&after={self.last_seq}{epoch}"

    async def listen(self) -> None:
        """Read the supervisor's stream; resume after a drop; a lost stream stops the load."""
        while True:
            try:
                async with connect(
                    self.url(),
                    compression=None,
                    open_timeout=REQUEST_TIMEOUT,
                    max_queue=4096,
                    max_size=2**22,
                ) as ws:
                    await self._read(ws)
                self.reconnects += 1  # closed normally: the server is stopping?
                self.failures += 1
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                if code == 4401:
                    return self._lose("the supervisor's token was refused (4401)")
                if code == 4410:  # events gone or another stream: start afresh, counting
                    self.events_lost, self.last_seq, self.epoch = True, None, None
                self.reconnects += 1
                self.failures += 1
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                self.failures += 1
                if self.failures > WS_RECONNECTS or not self.ready.is_set():
                    reason = str(exc) or type(exc).__name__
                    return self._lose(f"cannot open the event stream ({reason})")
                self.reconnects += 1
            if self.failures > WS_RECONNECTS:
                return self._lose("the event stream keeps closing")
            await asyncio.sleep(min(2.0, 0.1 * 2**self.failures))

    def _lose(self, reason: str) -> None:
        self.error = reason
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
            self.failures = 0
            self.ready.set()
            return
        seq = frame.get("seq")
        if isinstance(seq, int):
            self.last_seq = seq
        data = frame.get("data") or {}
        if kind == "call.offered":
            call_id = data.get("id_call")
            self.note(call_id, offered=True)
            if isinstance(call_id, str):
                self.on_offer(data.get("id_op"), call_id)
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
                call = self.early[call_id] = TrackedCall()
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

    def adopt(self, call_id: str, placed_at: float) -> None:
        """A call of ours was placed: what the stream already told about it counts now."""
        call = self.early.pop(call_id, None) or TrackedCall()
        call.placed_at = placed_at
        self.calls[call_id] = call
        self.counts.placed += 1
        self.counts.answered += call.answered
        if call.outcome is not None:
            self.counts.ended += 1

    def check_settled(self) -> None:
        if self.arrivals_done and self.counts.ended >= self.counts.placed:
            self.settled.set()
