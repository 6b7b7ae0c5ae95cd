"""The account's event stream over a WebSocket: ``/vm/events?token_session=…&after=N&epoch=E``.

Each frame is one event, ``{"seq", "kind", "at", "data"}``, filtered to what the token's user
may see: an operator their own status and calls, a supervisor the whole account. The first
frame, ``hello``, gives the stream's ``epoch`` (its identity: sequence numbers only mean
something within one). A client that lost its connection reconnects with ``after`` = the last
``seq`` it saw and ``epoch`` = the one it was given, and misses nothing.

Close codes: 4401 token invalid or deleted; 4410 reload the state and reconnect without
``after`` — the resume point is no longer kept, or ``epoch`` is not the stream's any more (a
restart, a Redis that lost the stream: the numbers restarted, so ``after`` would silently
skip events); 4429 the client fell too far behind (reconnect with ``after``); 4400 bad
parameters; 4409 too many streams already open with this token (``streams_per_token``) or
for this user, all their tokens together (``streams_per_user``): counted per process; close
another tab, or retry later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from voicemgmt.bootstrap import Container
from voicemgmt.domain.directory import UserRef, UserType
from voicemgmt.domain.errors import InvalidInput, NoSuchToken
from voicemgmt.domain.tokens import token_fingerprint
from voicemgmt.services.events import (
    ResumeTooOld,
    SubscriberTooSlow,
    Subscription,
    is_epoch,
)
from voicemgmt.services.sessions import SESSION_REVOKED
from voicemgmt.web.plain_numbers import plain_int

router = APIRouter()

HEARTBEAT_SECONDS = 15.0


class StreamSlots:
    """How many event streams each session token, and each user (all their tokens), has
    open in this process: at most ``per_token`` and ``per_user``, so that a leaked token, or
    a user minting token after token, cannot hold thousands of subscriptions."""

    def __init__(self, per_token: int, per_user: int) -> None:
        self.per_token = per_token
        self.per_user = per_user
        self._tokens: Counter[str] = Counter()
        self._users: Counter[UserRef] = Counter()

    def take(self, token_key: str, user: UserRef) -> str | None:
        """Take a slot; or the reason there is none."""
        if self._tokens[token_key] >= self.per_token:
            return f"too many streams open with this token (at most {self.per_token})"
        if self._users[user] >= self.per_user:
            return f"too many streams open for this user (at most {self.per_user})"
        self._tokens[token_key] += 1
        self._users[user] += 1
        return None

    def give_back(self, token_key: str, user: UserRef) -> None:
        self._tokens[token_key] -= 1
        if self._tokens[token_key] <= 0:
            del self._tokens[token_key]
        self._users[user] -= 1
        if self._users[user] <= 0:
            del self._users[user]


@router.websocket("/vm/events")
async def event_stream(websocket: WebSocket) -> None:
    container = websocket.app.state.container
    token = websocket.query_params.get("token_session", "")
    after_raw = websocket.query_params.get("after")
    epoch = websocket.query_params.get("epoch")
    # Accept first, then refuse with a code: a browser sees the reason, not a bare failure.
    await websocket.accept()
    try:
        owner = await container.tokens.resolve(token)
    except NoSuchToken:
        await _close(websocket, 4401, "invalid or expired token")
        return
    after = plain_int(after_raw) if after_raw not in (None, "") else None
    if after_raw not in (None, "") and (after is None or not 0 <= after < 2**62):
        await _close(websocket, 4400, "after must be a sequence number")
        return
    if epoch is not None and not is_epoch(epoch):
        await _close(websocket, 4400, "epoch must be a stream identity as given in hello")
        return
    mine = token_fingerprint(token)
    slots: StreamSlots = websocket.app.state.stream_slots
    refusal = slots.take(mine, owner.user)
    if refusal is not None:
        await _close(websocket, 4409, refusal)
        return
    try:
        await _stream(websocket, container, owner.user, mine, after, epoch)
    finally:
        slots.give_back(mine, owner.user)


async def _stream(
    websocket: WebSocket,
    container: Container,
    user: UserRef,
    mine: str,
    after: int | None,
    epoch: str | None,
) -> None:
    bus = container.bus
    current = await bus.epoch(user.account_id)
    if epoch is not None and epoch != current:
        # Another stream: its numbers restarted, so no ``after`` can resume it without gaps.
        await _close(websocket, 4410, "the event stream restarted: reload and reconnect")
        return
    # An operator's stream carries their own status and calls; a supervisor's, the account.
    operator = user.user_id if user.user_type is UserType.AGENT else None
    subscription = bus.subscribe(user.account_id, after, operator=operator)
    sent = _LastSent()
    helpers: list[asyncio.Task[None]] = []
    open_streams = container.metrics.websockets.labels(user_type=user.user_type.value)
    open_streams.inc()
    try:
        async with subscription:
            last = await bus.last_seq(user.account_id)
            await websocket.send_json({"kind": "hello", "seq": last, "epoch": current})
            sent.now()
            helpers = [
                asyncio.create_task(_drain(websocket, subscription)),
                asyncio.create_task(_heartbeat(websocket, sent)),
            ]
            await _forward(websocket, subscription, mine, sent)
    except ResumeTooOld as exc:
        if exc.details.get("epoch") is not None:  # Redis lost the stream while we followed it
            await _close(websocket, 4410, "the event stream restarted: reload and reconnect")
        else:
            await _close(websocket, 4410, "resume point too old: reload and reconnect")
    except SubscriberTooSlow:
        await _close(websocket, 4429, "too far behind: reconnect with after")
    except InvalidInput:
        await _close(websocket, 4400, "after is beyond the latest event")
    except (WebSocketDisconnect, StopAsyncIteration, RuntimeError):
        pass
    finally:
        open_streams.dec()
        for helper in helpers:
            helper.cancel()
        for helper in helpers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await helper


class _LastSent:
    """When the connection last carried a frame, for the heartbeat."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = time.monotonic()

    def now(self) -> None:
        self.at = time.monotonic()


async def _forward(
    websocket: WebSocket, subscription: Subscription, mine: str, sent: _LastSent
) -> None:
    """Send the subscription's events until it ends (the client left, or it fell behind).

    The bus already chose the events this user may see; each is encoded once for all.
    """
    async for event in subscription:
        if event.kind == SESSION_REVOKED:  # handled by the connection itself, never sent
            if event.data.get("token") == mine:
                await websocket.close(code=4401, reason="logged out")
                return
            continue
        await websocket.send_text(event.frame())
        sent.now()


async def _heartbeat(websocket: WebSocket, sent: _LastSent) -> None:
    """A ping after ``HEARTBEAT_SECONDS`` without any frame, so a page can tell a dead link.

    A send never yields to the event loop before its frame is written, so the ping and the
    events, sent by two tasks, cannot interleave within a frame.
    """
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while True:
            idle = time.monotonic() - sent.at
            if idle >= HEARTBEAT_SECONDS:
                await websocket.send_json({"kind": "ping"})
                sent.now()
                idle = 0.0
            await asyncio.sleep(HEARTBEAT_SECONDS - idle)


async def _drain(websocket: WebSocket, subscription: Subscription) -> None:
    """Read (and ignore) what the client sends, text or binary; once it has left, end the
    subscription, which ends ``_forward``. (``receive_text`` raised ``KeyError`` on a binary
    frame, which dropped the connection without a close frame: found by fuzzing.)"""
    try:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
    finally:
        await subscription.aclose()


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=code, reason=reason)
