"""Coordination adapters: in-process (``memory``) and Redis (``redis``, ``redis_messenger``).

What both messengers share lives here: the checks a message passes before it is sent, and
``MessengerCore``, the receiving side in this process (the local queue of messages, the
callers waiting for answers, and the requests being handled, so that a repeat is not
delivered twice while the first is still in hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from voicemgmt.domain.errors import (
    CoordinationUnavailable,
    InvalidInput,
    MessageTooLarge,
    NodeDidNotAnswer,
)
from voicemgmt.domain.ownership import check_node_name
from voicemgmt.services.coordination import MAX_MESSAGE_BYTES, Message, check_kind

ANSWER_TTL_SECONDS = 300.0  # how long an answer is kept for a repeated request
Resend = Callable[[Message, bytes], Awaitable[None]]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_MAX_LANE_CHARS = 200


def checked_message(
    to: str | None,
    kind: str,
    body: bytes,
    *,
    sender: str,
    lane: str | None = None,
    request_id: str | None = None,
    reply_to: str | None = None,
    broadcast: bool = False,
) -> Message:
    """The message to send, or ``InvalidInput`` / ``MessageTooLarge`` before anything is sent."""
    if to is not None:
        check_node_name(to)
    check_kind(kind)
    if not isinstance(body, bytes):
        raise InvalidInput("a message's body is bytes", field="body")
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(
            f"a message's body is at most {MAX_MESSAGE_BYTES} bytes, not {len(body)}",
            size=len(body),
            max_size=MAX_MESSAGE_BYTES,
        )
    if lane is not None and (
        not isinstance(lane, str) or not 1 <= len(lane) <= _MAX_LANE_CHARS or not lane.isprintable()
    ):
        raise InvalidInput(f"a lane is 1 to {_MAX_LANE_CHARS} printable characters", field="lane")
    if request_id is not None and (
        not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id)
    ):
        raise InvalidInput(
            "a request id is 1 to 100 letters, digits or . _ : -", field="request_id"
        )
    return Message(
        kind=kind,
        body=body,
        sender=sender,
        id=request_id or uuid.uuid4().hex,
        lane=lane,
        reply_to=reply_to,
        broadcast=broadcast,
    )


class MessengerCore:
    """The receiving side of one node's messenger, in this process.

    A request is *in hand* from when ``messages()`` yields it until it is answered; a copy of
    it (a retry that arrived meanwhile) is skipped, and a copy of one answered here is
    answered again through ``resend`` without being yielded.
    """

    def __init__(self, node: str, resend: Resend) -> None:
        self.node = node
        self._resend = resend
        # Each message with its deadline on time.monotonic() (requests only), or None to end.
        self._queue: asyncio.Queue[tuple[Message, float | None] | None] = asyncio.Queue()
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._in_hand: dict[str, float] = {}  # request id → when it was yielded (monotonic)
        self._answered: dict[str, tuple[float, bytes]] = {}  # request id → (when, answer)
        self.closed = False
        self.dropped_late = 0  # requests past their deadline before they were taken

    @property
    def backlog(self) -> int:
        """Messages received but not yet taken by ``messages()``."""
        return self._queue.qsize()

    def offer(self, message: Message, deadline: float | None = None) -> None:
        """Queue ``message`` for ``messages()``; a request still waiting at ``deadline``
        (``time.monotonic()``) is dropped then."""
        if not self.closed:
            self._queue.put_nowait((message, deadline))

    def _forget_old(self, now: float) -> None:
        # Entries past the answers' lifetime: a request never answered (its handler failed)
        # may be handled again; an answer is kept no longer than the store keeps it.
        for stale in [i for i, at in self._in_hand.items() if now - at > ANSWER_TTL_SECONDS]:
            del self._in_hand[stale]
        for old in [i for i, (at, _) in self._answered.items() if now - at > ANSWER_TTL_SECONDS]:
            del self._answered[old]

    def answered(self, request_id: str, body: bytes) -> None:
        """An answer came back: hand it to the caller waiting for it, if one still is."""
        future = self._pending.get(request_id)
        if future is not None and not future.done():
            future.set_result(body)

    def responding(self, request: Message, body: bytes) -> None:
        """Check an answer before it is sent; the request is answered, no longer in hand."""
        if request.reply_to is None:
            raise InvalidInput("only a request can be answered; this message is not one")
        checked_message(None, "answer", body, sender=self.node)
        self._in_hand.pop(request.id, None)
        self._answered[request.id] = (time.monotonic(), body)

    @contextlib.contextmanager
    def waiting(self, message: Message) -> Iterator[asyncio.Future[bytes]]:
        """Register the caller of ``message`` before it is sent (the answer may come back at
        once); the future is done when the answer is in (see ``answer``)."""
        if self.closed:
            raise CoordinationUnavailable("the messenger is closed")
        if message.id in self._pending:
            raise InvalidInput(
                f"a request with id {message.id!r} is already waiting for its answer",
                field="request_id",
            )
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[message.id] = future
        try:
            yield future
        finally:
            if self._pending.get(message.id) is future:
                del self._pending[message.id]
            if not future.done():
                future.cancel()

    async def messages(self) -> AsyncIterator[Message]:
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.put_nowait(None)  # for any other reader
                return
            message, deadline = item
            if message.reply_to is not None:
                now = time.monotonic()
                self._forget_old(now)
                if deadline is not None and now > deadline:
                    # Its caller has given up: not applied (a retry may come with its id).
                    self.dropped_late += 1
                    continue
                if message.id in self._in_hand:
                    continue  # a copy of a request being handled: its answer will go back
                answered = self._answered.get(message.id)
                if answered is not None:
                    await self._resend(message, answered[1])
                    continue
                self._in_hand[message.id] = now
            yield message

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._queue.put_nowait(None)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CoordinationUnavailable("the messenger closed"))


async def answer(future: asyncio.Future[bytes], to: str, request_id: str, within: float) -> bytes:
    """The answer, or ``NodeDidNotAnswer`` after ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            return await future
    except TimeoutError:
        raise NodeDidNotAnswer(
            f"node {to} did not answer request {request_id} within {within} s; "
            "send it again with the same id",
            node=to,
            request_id=request_id,
            timeout_seconds=within,
        ) from None
