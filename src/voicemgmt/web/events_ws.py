"""The account's event stream over a WebSocket: ``/vm/events?token_session=…&after=N``.

Each frame is one event, ``{"seq", "kind", "at", "data"}``, filtered to what the token's user
may see: an operator their own status and calls, a supervisor the whole account. A client
that lost its connection reconnects with ``after`` = the last ``seq`` it saw and misses
nothing. Close codes: 4401 token invalid or deleted, 4410 resume point too old (reload the
state and reconnect without ``after``), 4429 the client fell too far behind (reconnect with
``after``), 4400 bad parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
from asyncio import FIRST_COMPLETED
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from voicemgmt.domain.directory import UserRef, UserType
from voicemgmt.domain.errors import InvalidInput, NoSuchToken
from voicemgmt.domain.tokens import token_fingerprint
from voicemgmt.services.events import Event, ResumeTooOld, SubscriberTooSlow, Subscription
from voicemgmt.services.sessions import SESSION_REVOKED

router = APIRouter()

HEARTBEAT_SECONDS = 15.0

_OPERATOR_KINDS = {
    "operator.status": ("id_op",),
    "call.offered": ("id_op",),
    "call.offer_withdrawn": ("id_op",),
    "call.answered": ("id_op",),
    "call.held": ("id_op",),
    "call.resumed": ("id_op",),
    "call.outbound": ("id_op",),
    "call.transferred": ("from_op", "to_op"),
}


def visible(user: UserRef, kind: str, data: Mapping[str, Any]) -> bool:
    if kind == SESSION_REVOKED:
        return False  # handled by the connection itself
    if user.user_type is UserType.ADMIN:
        return True
    me = user.user_id
    if kind in _OPERATOR_KINDS:
        return any(data.get(name) == me for name in _OPERATOR_KINDS[kind])
    if kind == "call.ended":
        record = data.get("record", {})
        return bool(record.get("id_op") == me or me in record.get("operators_offered", ()))
    return False


@router.websocket("/vm/events")
async def event_stream(websocket: WebSocket) -> None:
    container = websocket.app.state.container
    token = websocket.query_params.get("token_session", "")
    after_raw = websocket.query_params.get("after")
    # Accept first, then refuse with a code: a browser sees the reason, not a bare failure.
    await websocket.accept()
    try:
        owner = await container.tokens.resolve(token)
    except NoSuchToken:
        await _close(websocket, 4401, "invalid or expired token")
        return
    try:
        after = int(after_raw) if after_raw not in (None, "") else None
    except ValueError:
        after = -1
    if after is not None and not 0 <= after < 2**62:
        await _close(websocket, 4400, "after must be a sequence number")
        return
    user, mine = owner.user, token_fingerprint(token)
    bus = container.bus
    reader = asyncio.create_task(_drain(websocket))
    try:
        subscription = bus.subscribe(user.account_id, after)
        async with subscription:
            await websocket.send_json({"kind": "hello", "seq": await bus.last_seq(user.account_id)})
            await _forward(websocket, subscription, reader, user, mine)
    except ResumeTooOld:
        await _close(websocket, 4410, "resume point too old: reload and reconnect")
    except SubscriberTooSlow:
        await _close(websocket, 4429, "too far behind: reconnect with after")
    except InvalidInput:
        await _close(websocket, 4400, "after is beyond the latest event")
    except (WebSocketDisconnect, StopAsyncIteration, RuntimeError):
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _forward(
    websocket: WebSocket,
    subscription: Subscription,
    reader: asyncio.Task[None],
    user: UserRef,
    mine: str,
) -> None:
    """Send visible events until the client leaves; a ping when nothing happens for a while."""
    events = subscription.__aiter__()
    upcoming: asyncio.Future[Event] | None = None
    try:
        while True:
            if upcoming is None:
                upcoming = asyncio.ensure_future(anext(events))
            watched: set[asyncio.Future[Any]] = {upcoming, reader}
            done, _ = await asyncio.wait(
                watched, timeout=HEARTBEAT_SECONDS, return_when=FIRST_COMPLETED
            )
            if reader in done:
                return
            if not done:
                await websocket.send_json({"kind": "ping"})
                continue
            event, upcoming = upcoming.result(), None
            if event.kind == SESSION_REVOKED and event.data.get("token") == mine:
                await websocket.close(code=4401, reason="logged out")
                return
            if visible(user, event.kind, event.data):
                await websocket.send_json(event.to_json())
    finally:
        if upcoming is not None:
            upcoming.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await upcoming


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so that its disconnection is noticed."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=code, reason=reason)
