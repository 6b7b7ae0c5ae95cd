"""Event streams open at once are capped per session token (``VM_STREAMS_PER_TOKEN``) and
per user, all their tokens together (``VM_STREAMS_PER_USER``): one more is closed with 4409,
and a stream that ends gives its slot back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import LiveServer, SeededAccount, live_server, make_settings, seed_two_accounts
from tests.test_calls_api import drain_until_closed, events, token_for


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[tuple[LiveServer, SeededAccount]]:
    settings = make_settings(tmp_path, streams_per_token=2, streams_per_user=3)
    acme, _globex = seed_two_accounts(settings)
    with live_server(settings) as server:
        yield server, acme


def test_one_stream_too_many_for_a_token_is_closed_with_4409(
    capped: tuple[LiveServer, SeededAccount],
) -> None:
    server, acme = capped
    token = token_for(server, acme, id_agent=acme.id_agent)
    with events(server, token) as first, events(server, token) as second:
        for ws in (first, second):
            assert json.loads(ws.recv(timeout=5))["kind"] == "hello"
        with events(server, token) as third:
            closed = drain_until_closed(third)
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (
            4409,
            "too many streams open with this token (at most 2)",
        )
        # another token, even the same operator's, has slots of its own
        other = token_for(server, acme, id_agent=acme.id_agent)
        with events(server, other) as elsewhere:
            assert json.loads(elsewhere.recv(timeout=5))["kind"] == "hello"
        # the two first are still live
        for ws in (first, second):
            ws.ping().wait(timeout=5)


def test_a_closed_stream_gives_its_slot_back(capped: tuple[LiveServer, SeededAccount]) -> None:
    server, acme = capped
    token = token_for(server, acme, id_agent=acme.id_agent)
    with events(server, token) as kept:
        assert json.loads(kept.recv(timeout=5))["kind"] == "hello"
        for _ in range(5):  # opened and closed in turn, never more than 2 at once
            with events(server, token) as ws:
                assert json.loads(ws.recv(timeout=5))["kind"] == "hello"
            time.sleep(0.1)  # the server notices the close
        with events(server, token) as last:
            assert json.loads(last.recv(timeout=5))["kind"] == "hello"


def test_refused_streams_take_no_slot(capped: tuple[LiveServer, SeededAccount]) -> None:
    server, acme = capped
    token = token_for(server, acme, id_agent=acme.id_agent)
    with events(server, token) as first, events(server, token) as second:
        for ws in (first, second):
            ws.recv(timeout=5)
        for _ in range(3):
            with events(server, token) as refused:
                assert drain_until_closed(refused).rcvd is not None
    time.sleep(0.2)
    with events(server, token) as a, events(server, token) as b:
        assert json.loads(a.recv(timeout=5))["kind"] == "hello"
        assert json.loads(b.recv(timeout=5))["kind"] == "hello"


def test_a_user_minting_token_after_token_is_capped_too(
    capped: tuple[LiveServer, SeededAccount],
) -> None:
    server, acme = capped
    tokens = [token_for(server, acme, id_agent=acme.id_agent) for _ in range(3)]
    with events(server, tokens[0]) as a, events(server, tokens[1]) as b:
        with events(server, tokens[2]) as c:
            for ws in (a, b, c):
                assert json.loads(ws.recv(timeout=5))["kind"] == "hello"
            with events(server, token_for(server, acme, id_agent=acme.id_agent)) as fourth:
                closed = drain_until_closed(fourth)
            assert closed.rcvd is not None
            assert (closed.rcvd.code, closed.rcvd.reason) == (
                4409,
                "too many streams open for this user (at most 3)",
            )
            # another operator, and the supervisor, have slots of their own
            bob = token_for(server, acme, id_agent=acme.other_id_agent)
            sam = token_for(server, acme, id_admin=acme.id_admin)
            with events(server, bob) as theirs, events(server, sam) as supervisor:
                assert json.loads(theirs.recv(timeout=5))["kind"] == "hello"
                assert json.loads(supervisor.recv(timeout=5))["kind"] == "hello"
        time.sleep(0.2)  # c closed: its slot is Ana's again
        with events(server, tokens[2]) as again:
            assert json.loads(again.recv(timeout=5))["kind"] == "hello"
