"""In-process coordination: the registry, leases and messenger of a single node.

The same contracts as the Redis implementations, in this process's memory: the store's clock
is a function given at creation (``time.monotonic`` unless a test passes its own), so that
nothing here reads the wall clock either. Several "nodes" may share one ``MemoryRegistry``,
``MemoryLeaseStore`` and ``MemoryHub`` (tests of the contracts do); nothing survives the
process, which is all a single node needs: it is the only holder of everything.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping

from voicemgmt.adapters.coordination import (
    ANSWER_TTL_SECONDS,
    MessengerCore,
    answer,
    checked_message,
)
from voicemgmt.domain.errors import NodeNameInUse
from voicemgmt.domain.ownership import check_lease_key, check_node_name
from voicemgmt.services.coordination import (
    Lease,
    LeaseHolder,
    Member,
    Message,
    check_ttl,
    trust_deadline,
)

Clock = Callable[[], float]


class MemoryRegistry:
    """A :class:`~voicemgmt.services.coordination.NodeRegistry` in memory."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._members: dict[str, tuple[Member, float]] = {}  # name → (member, ttl)

    def _live(self) -> dict[str, tuple[Member, float]]:
        now = self._clock()
        for name in [n for n, (m, _) in self._members.items() if m.expires_at <= now]:
            del self._members[name]
        return self._members

    async def join(
        self, node: str, ttl: float, metadata: Mapping[str, str] | None = None
    ) -> Member:
        check_node_name(node)
        ttl = check_ttl(ttl)
        live = self._live()
        if node in live:
            raise in_use(node, live[node][0].expires_at - self._clock())
        now = self._clock()
        member = Member(node, uuid.uuid4().hex, now, now + ttl, dict(metadata or {}))
        live[node] = (member, ttl)
        return member

    async def heartbeat(self, member: Member) -> Member | None:
        current = self._live().get(member.name)
        if current is None or current[0].incarnation != member.incarnation:
            return None
        renewed = Member(
            member.name,
            member.incarnation,
            current[0].started_at,
            self._clock() + current[1],
            current[0].metadata,
        )
        self._members[member.name] = (renewed, current[1])
        return renewed

    async def leave(self, member: Member) -> None:
        current = self._members.get(member.name)
        if current is not None and current[0].incarnation == member.incarnation:
            del self._members[member.name]

    async def members(self) -> list[Member]:
        return [member for _, (member, _) in sorted(self._live().items())]


def in_use(node: str, expires_in: float) -> NodeNameInUse:
    return NodeNameInUse(
        f"a live node is already named {node!r}: choose another VM_NODE, or, if it is this "
        f"node's previous life, wait {max(expires_in, 0):.1f} s for its registration to lapse",
        node=node,
        expires_in=round(max(expires_in, 0.0), 3),
    )


class MemoryLeaseStore:
    """A :class:`~voicemgmt.services.coordination.LeaseStore` in memory."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._holdings: dict[str, LeaseHolder] = {}
        self._fences: dict[str, int] = {}

    def _current(self, key: str) -> LeaseHolder | None:
        holding = self._holdings.get(key)
        if holding is not None and holding.expires_at <= self._clock():
            del self._holdings[key]
            return None
        return holding

    async def acquire(self, key: str, holder: str, ttl: float) -> Lease | None:
        check_lease_key(key)
        check_node_name(holder)
        ttl = check_ttl(ttl)
        sent_at = time.monotonic()
        if self._current(key) is not None:
            return None
        fence = self._fences[key] = self._fences.get(key, 0) + 1
        expires_at = self._clock() + ttl
        self._holdings[key] = LeaseHolder(key, holder, fence, expires_at)
        return Lease(key, holder, fence, ttl, expires_at, trust_deadline(sent_at, ttl))

    async def renew(self, lease: Lease) -> Lease | None:
        sent_at = time.monotonic()
        current = self._current(lease.key)
        if current is None or current.fence != lease.fence:
            return None
        expires_at = self._clock() + lease.ttl
        self._holdings[lease.key] = LeaseHolder(lease.key, lease.holder, lease.fence, expires_at)
        return Lease(
            lease.key,
            lease.holder,
            lease.fence,
            lease.ttl,
            expires_at,
            trust_deadline(sent_at, lease.ttl),
        )

    async def release(self, lease: Lease) -> bool:
        current = self._holdings.get(lease.key)
        if current is None or current.fence != lease.fence:
            return False
        del self._holdings[lease.key]
        return True

    async def holder(self, key: str) -> LeaseHolder | None:
        return self._current(check_lease_key(key))

    async def check(self, lease: Lease) -> bool:
        current = self._current(lease.key)
        return current is not None and current.fence == lease.fence


class MemoryHub:
    """What joins the in-process messengers: their inboxes, and the answers kept for repeats."""

    def __init__(
        self, clock: Clock = time.monotonic, answer_ttl: float = ANSWER_TTL_SECONDS
    ) -> None:
        self.clock = clock
        self.answer_ttl = answer_ttl
        self.messengers: dict[str, MemoryMessenger] = {}
        self._answers: dict[str, tuple[float, bytes]] = {}

    def keep_answer(self, request_id: str, body: bytes) -> None:
        now = self.clock()
        for stale in [k for k, (expires, _) in self._answers.items() if expires <= now]:
            del self._answers[stale]
        self._answers[request_id] = (now + self.answer_ttl, body)

    def kept_answer(self, request_id: str) -> bytes | None:
        kept = self._answers.get(request_id)
        return kept[1] if kept is not None and kept[0] > self.clock() else None


class MemoryMessenger:
    """A :class:`~voicemgmt.services.coordination.Messenger` between messengers of one hub.
    A message to a node with no messenger on the hub is dropped, as an inbox nobody reads."""

    def __init__(self, hub: MemoryHub, node: str) -> None:
        self.node = check_node_name(node)
        self._hub = hub
        self._core = MessengerCore(node, self._answer_again)

    async def start(self) -> None:
        self._hub.messengers[self.node] = self

    def _deliver(self, to: str, message: Message, deadline: float | None) -> None:
        target = self._hub.messengers.get(to)
        if target is None:
            return
        if message.reply_to is not None:
            kept = self._hub.kept_answer(message.id)
            if kept is not None:  # a repeat of an answered request: answer it again
                target._reply(message.reply_to, message.id, kept)
                return
        target._core.offer(message, deadline)

    async def _answer_again(self, request: Message, body: bytes) -> None:
        assert request.reply_to is not None
        self._reply(request.reply_to, request.id, body)

    def _reply(self, to: str, request_id: str, body: bytes) -> None:
        target = self._hub.messengers.get(to)
        if target is not None:
            target._core.answered(request_id, body)

    async def send(self, to: str, kind: str, body: bytes, *, lane: str | None = None) -> None:
        message = checked_message(to, kind, body, sender=self.node, lane=lane)
        self._deliver(to, message, None)

    async def broadcast(self, kind: str, body: bytes) -> None:
        message = checked_message(None, kind, body, sender=self.node, broadcast=True)
        for name, messenger in list(self._hub.messengers.items()):
            if name != self.node:
                messenger._core.offer(message)

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
        message = checked_message(
            to, kind, body, sender=self.node, lane=lane, request_id=request_id, reply_to=self.node
        )
        within = check_ttl(answer_within)
        deadline = time.monotonic() + within
        with self._core.waiting(message) as future:
            self._deliver(to, message, deadline)
            return await answer(future, to, message.id, within)

    async def respond(self, request: Message, body: bytes) -> None:
        self._core.responding(request, body)
        self._hub.keep_answer(request.id, body)
        assert request.reply_to is not None
        self._reply(request.reply_to, request.id, body)

    def messages(self) -> AsyncIterator[Message]:
        return self._core.messages()

    @property
    def dropped_late(self) -> int:
        """Requests dropped because their deadline passed before they were taken."""
        return self._core.dropped_late

    async def aclose(self) -> None:
        if self._hub.messengers.get(self.node) is self:
            del self._hub.messengers[self.node]
        self._core.close()
        await asyncio.sleep(0)
