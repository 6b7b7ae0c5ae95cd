"""Fuzzing what the event stream reads: its query parameters and the client's messages.

``/vm/events`` reads ``token_session`` and ``after`` when a client connects, then whatever the
client sends (nothing is expected: it is read and ignored). Properties: any parameters get the
``hello`` or a documented close code (docs/events.md), and whatever frames a client sends
(text or binary, JSON or not, large), its stream carries on: the next event still arrives.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.fuzz.mutations import mutated
from tests.support import (
    LiveServer,
    SeededAccount,
    bearer,
    live_server,
    make_settings,
    seed_two_accounts,
    token_for,
)

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CLOSE_CODES = {4400, 4401, 4409, 4410, 4429}  # docs/events.md
MESSAGE_SEEDS = [
    b'{"kind": "ping"}',
    b'{"kind": "hello", "seq": 12}',
    b'{"seq": 3, "kind": "operator.status", "at": "2026-12-07T10:00:00Z", "data": {}}',
    b"after=12",
]


@dataclass
class Stream:
    server: LiveServer
    acme: SeededAccount
    supervisor: str
    flips: int = 0

    def open(self, query: str) -> ClientConnection:
        # max_queue=None: a client that leaves right after the hello of a resumed stream does
        # not stop reading frames (its close would wait behind them for close_timeout)
        url = f"ws://127.0.0.1:{self.server.port}/vm/events?{query}"
        return connect(url, open_timeout=5, max_queue=None)

    def change_something(self) -> None:
        """An event every supervisor stream carries: an operator's status changes."""
        self.flips += 1
        status = "online" if self.flips % 2 else "break"
        with self.server.client() as client:
            answer = client.put(
                f"/api/v1/supervision/operators/{self.acme.id_agent}/status",
                headers=bearer(self.supervisor),
                json={"status": status},
            )
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stream]:
    configured = make_settings(Path(tmp_path_factory.mktemp("ws")))
    acme, _globex = seed_two_accounts(configured)
    with live_server(configured) as server:
        yield Stream(server, acme, token_for(server, acme, id_admin=acme.id_admin))


def _frame(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return frame


_TEXT = st.one_of(
    mutated(MESSAGE_SEEDS, huge=50_000).map(lambda b: b.decode("utf-8", "replace")),
    st.text(max_size=200),
)
_MESSAGES = st.lists(st.one_of(_TEXT, st.binary(max_size=2000)), min_size=1, max_size=5)


@FUZZ
@given(_MESSAGES)
@example([b"\x00\x01binary"])
@example(["x" * 60_000])
def test_whatever_a_client_sends_its_stream_carries_on(
    stream: Stream, messages: list[str | bytes]
) -> None:
    with stream.open(f"token_session={stream.supervisor}") as ws:
        assert _frame(ws)["kind"] == "hello"
        for message in messages:
            ws.send(message)
        stream.change_something()
        deadline = time.monotonic() + 5
        while True:
            try:
                frame = _frame(ws, max(0.01, deadline - time.monotonic()))
            except ConnectionClosed as closed:
                pytest.fail(f"the stream closed after the client's messages: {closed}")
            if frame["kind"] == "operator.status":
                break


_AFTER = st.one_of(
    st.sampled_from(["", "0", "-1", "1_0", " 1", "²", "1e3", "0x10", "9" * 5000, "NaN"]),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=30),
)


@FUZZ
@given(after=_AFTER, token_mutation=st.sampled_from(["as is", "cut", "other", "empty"]))
def test_any_parameters_get_a_hello_or_a_documented_close_code(
    stream: Stream, after: str, token_mutation: str
) -> None:
    token = {
        "as is": stream.supervisor,
        "cut": stream.supervisor[:-3],
        "other": "vm_" + "A" * 43,
        "empty": "",
    }[token_mutation]
    query = f"token_session={quote(token)}&after={quote(after)}"
    with stream.open(query) as ws:
        try:
            frame = _frame(ws)
        except ConnectionClosed as closed:
            refused: ConnectionClosed | None = closed
        else:
            refused = None
            assert frame["kind"] == "hello"
            assert token_mutation == "as is"
    if refused is not None:
        assert refused.rcvd is not None
        assert refused.rcvd.code in CLOSE_CODES, refused
