"""Coordination between nodes: who is alive, who holds what, and how nodes talk. Ports.

    NodeRegistry   the cluster's membership: join (refused while the name is live), heartbeat,
                   leave, members — what ownership (``domain.ownership.owner_of``) is computed over
    LeaseStore     exclusive, expiring leases with fencing numbers, timed by the store's clock
    Messenger      one inbox per node (ordered per sender), broadcast, request and response

A single node uses the in-process implementations (``adapters/coordination/memory.py``), several
nodes share Redis (``adapters/coordination/redis.py``): one code path, a cluster of one or many.
Every expiry is decided by the store's clock, never a node's: a node whose clock is off can
neither steal nor keep a lease. A node trusts a lease it holds for ``TRUST_FRACTION`` of its ttl,
counted on its own monotonic clock from *before* it asked, so a node paused past that stops
acting before the store can give the lease to another. See ``docs/cluster.md``.

Failures to reach the store are ``CoordinationUnavailable``; a request another node did not
answer in time is ``NodeDidNotAnswer``; both mean that nothing was decided, try again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from voicemgmt.domain.errors import InvalidInput

log = logging.getLogger(__name__)

TRUST_FRACTION = 0.8  # of a lease's ttl, on the holder's monotonic clock
MAX_TTL_SECONDS = 86_400.0
MAX_MESSAGE_BYTES = 1 << 20  # a message's body; larger ones are refused (MessageTooLarge)
MAX_KIND_CHARS = 64


def check_ttl(ttl: float) -> float:
    """``ttl`` (seconds) if it is a usable lease or registration time: over 1 ms, at most a
    day; ``InvalidInput`` otherwise."""
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, int | float)
        or not math.isfinite(ttl)
        or not 0.001 <= ttl <= MAX_TTL_SECONDS
    ):
        raise InvalidInput(f"a ttl is 0.001 to {MAX_TTL_SECONDS:.0f} seconds, not {ttl!r}")
    return float(ttl)


def check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not 1 <= len(kind) <= MAX_KIND_CHARS or not kind.isprintable():
        raise InvalidInput(f"a message kind is 1 to {MAX_KIND_CHARS} printable characters")
    return kind


@dataclass(frozen=True, slots=True)
class Member:
    """A live node as the registry knows it. Times are seconds on the store's clock (Redis:
    Unix time from its ``TIME``): compare them with each other, never with a node's clock."""

    name: str
    incarnation: str  # drawn at each join: this life of the name, not an earlier one
    started_at: float
    expires_at: float  # unless it heartbeats again
    metadata: Mapping[str, str] = field(default_factory=dict)


class NodeRegistry(Protocol):
    """Which nodes are alive. A node joins with a ttl and heartbeats well within it (a third
    of it, say); one that stops heartbeating is gone when the ttl runs out."""

    async def join(
        self, node: str, ttl: float, metadata: Mapping[str, str] | None = None
    ) -> Member:
        """Register ``node``; ``NodeNameInUse`` if a live node has the name (even a previous
        life of this one that has not expired yet: wait ``details["expires_in"]``)."""
        ...

    async def heartbeat(self, member: Member) -> Member | None:
        """Extend the registration by its ttl; ``None`` if it lapsed (or was taken over), in
        which case the node has been out of the cluster and must join again."""
        ...

    async def leave(self, member: Member) -> None:
        """Leave at once (a clean stop); nothing if this registration is already gone."""
        ...

    async def members(self) -> list[Member]:
        """The live nodes, by name."""
        ...


async def watch_members(registry: NodeRegistry, interval: float) -> AsyncGenerator[list[Member]]:
    """The members now, then again each time the set of (name, incarnation) changes, polled
    every ``interval`` seconds (a node that dies is noticed when its ttl has run out, which no
    store announces; polling is then as prompt as anything). Errors reach the caller."""
    seen: frozenset[tuple[str, str]] | None = None
    while True:
        members = await registry.members()
        current = frozenset((m.name, m.incarnation) for m in members)
        if current != seen:
            seen = current
            yield members
        await asyncio.sleep(interval)


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds a lease now (``LeaseStore.holder``), on the store's clock."""

    key: str
    holder: str
    fence: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease this process holds. ``fence`` is larger than that of every earlier holding of
    the key: whatever the holder writes elsewhere carries it, and writes with a smaller one
    are refused there. ``expires_at`` is on the store's clock; ``trusted_until`` on this
    process's ``time.monotonic()``: ``TRUST_FRACTION`` times the ttl after the request that
    got the lease was sent."""

    key: str
    holder: str
    fence: int
    ttl: float
    expires_at: float
    trusted_until: float

    def trusted(self, monotonic_now: float) -> bool:
        """Whether the holder may still act on it (the store may not have given it away)."""
        return monotonic_now < self.trusted_until


def trust_deadline(sent_at: float, ttl: float) -> float:
    return sent_at + TRUST_FRACTION * ttl


class LeaseStore(Protocol):
    """Exclusive leases on keys (an account's routing, say), each holding with its fence."""

    async def acquire(self, key: str, holder: str, ttl: float) -> Lease | None:
        """The lease, with a new fence, if nobody holds it (or the holding expired); ``None``
        while anyone holds it — ``holder`` included, as another task or a previous life of
        the same node: the current holding is extended with ``renew``, not ``acquire``."""
        ...

    async def renew(self, lease: Lease) -> Lease | None:
        """The lease extended by its ttl, same fence; ``None`` if it expired or was taken
        (even if nobody took it since: a holding that lapsed is over, acquire anew)."""
        ...

    async def release(self, lease: Lease) -> bool:
        """Give it back now (a drain); ``False`` if it was no longer this holding."""
        ...

    async def holder(self, key: str) -> LeaseHolder | None: ...

    async def check(self, lease: Lease) -> bool:
        """Whether the holding with this fence still holds by the store's clock; the same test
        that fenced writes run inside the store (Redis: ``LEASE_HOLDS_LUA``)."""
        ...


@dataclass(frozen=True, slots=True)
class Message:
    """What a node receives. ``id`` is unique per message, except that a request sent again
    (``Messenger.request`` with the same ``request_id``) keeps its id, so the receiver can
    tell a repeat. ``reply_to`` is set on requests (the node waiting); ``lane`` groups the
    messages the receiver must handle one after the other (see ``Lanes``)."""

    kind: str
    body: bytes
    sender: str
    id: str
    lane: str | None = None
    reply_to: str | None = None
    broadcast: bool = False


class Messenger(Protocol):
    """This node's side of the node-to-node channel.

    ``send``: one-way, into the receiver's inbox; messages one sender sends one after the other
    (each awaited) are received in that order. ``broadcast``: to every other node listening
    now, at most once (a node away at that moment misses it: for hints, not duties).
    ``request``: a message with an id whose answer comes back to the caller
    (``NodeDidNotAnswer`` after ``answer_within`` seconds); the receiver answers with
    ``respond``. The messenger keeps answers for a while: a request repeated with the same id
    (the caller retried) is answered again from the kept answer, and is not delivered twice.
    """

    node: str

    async def start(self) -> None: ...

    async def send(self, to: str, kind: str, body: bytes, *, lane: str | None = None) -> None: ...

    async def broadcast(self, kind: str, body: bytes) -> None: ...

    async def request(
        self,
        to: str,
        kind: str,
        body: bytes,
        *,
        answer_within: float,
        request_id: str | None = None,
        lane: str | None = None,
    ) -> bytes:
        """The receiver's answer; ``NodeDidNotAnswer`` after ``answer_within`` seconds, which
        is also the request's deadline: a receiver that takes it later drops it."""
        ...

    async def respond(self, request: Message, body: bytes) -> None: ...

    def messages(self) -> AsyncIterator[Message]:
        """This node's messages and others' broadcasts, until the messenger closes."""
        ...

    @property
    def dropped_late(self) -> int:
        """Requests dropped because their deadline passed before they were taken."""
        ...

    async def aclose(self) -> None: ...


Handler = Callable[[Message], Awaitable[None]]


class Lanes:
    """Runs a handler over messages: one at a time per lane (a message's ``lane``, or its
    sender when it has none), lanes side by side. Each lane's task ends when it is idle."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._queues: dict[str, asyncio.Queue[Message]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def dispatch(self, message: Message) -> None:
        lane = message.lane if message.lane is not None else f"from:{message.sender}"
        queue = self._queues.get(lane)
        if queue is None:
            queue = self._queues[lane] = asyncio.Queue()
            task = asyncio.create_task(self._run(lane, queue), name=f"vm-lane-{lane}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        queue.put_nowait(message)

    async def _run(self, lane: str, queue: asyncio.Queue[Message]) -> None:
        try:
            while not queue.empty():
                message = queue.get_nowait()
                try:
                    await self._handler(message)
                except Exception:  # one message's failure must not stall its lane
                    log.exception("handling message %s (%s) failed", message.id, message.kind)
        finally:
            # Nothing awaits between the last get and this: no message can be left behind.
            if self._queues.get(lane) is queue:
                del self._queues[lane]

    async def run(self, messenger: Messenger) -> None:
        """Dispatch every message of ``messenger`` until it closes, then wait for the lanes."""
        try:
            async for message in messenger.messages():
                self.dispatch(message)
        finally:
            await self.drain()

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.drain()
