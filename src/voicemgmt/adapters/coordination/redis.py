"""Coordination in Redis: the node registry and the fenced leases of several nodes.

Keys, after the prefix (``vm:`` by default; the part in braces is a cluster hash tag):

- ``vm:nodes:{cluster}`` — a sorted set: node name → when its registration expires (µs);
- ``vm:node:{cluster}:<name>`` — a hash: ``incarnation``, ``started`` (µs), ``meta`` (JSON);
- ``vm:lease:{<key>}`` — a hash: ``holder``, ``fence``, ``expires`` (µs);
- ``vm:fence:{<key>}`` — the last fence given for the key (kept for ever, no ttl).

A lease key that is an account id (``42``) puts the lease in the slot of the account's event
stream (``vm:events:{42}``), so a fenced script can touch both.

Every decision about time runs in a Lua script that reads Redis's ``TIME``: the nodes' clocks
are never compared with anything. A fence is ``max(last fence + 1, TIME in µs)``: it grows with
every new holding, and stays above every earlier one even if Redis lost its keys (restarted
without persistence), as long as the Redis host's clock does not step back by more than the
restart took. Scripts are loaded again by the client after a restart (``NOSCRIPT``).
Connection failures become ``CoordinationUnavailable``; the client reconnects on the next call.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from voicemgmt.adapters.coordination.memory import in_use
from voicemgmt.domain.errors import CoordinationUnavailable
from voicemgmt.domain.ownership import check_lease_key, check_node_name
from voicemgmt.services.coordination import (
    Lease,
    LeaseHolder,
    Member,
    check_ttl,
    trust_deadline,
)

T = TypeVar("T")
SOCKET_TIMEOUT_SECONDS = 5.0  # for commands that do not block; blocking reads set their own

_NOW = """
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"""

# Usable by any script: whether the lease at lease_key is held with that fence (a string)
# by Redis's clock. Prefix a script's body with it (``fenced_script``).
LEASE_HOLDS_LUA = (
    _NOW
    + """
local function lease_holds(lease_key, fence)
  local h = redis.call('HMGET', lease_key, 'fence', 'expires')
  return h[1] == fence and h[2] ~= false and tonumber(h[2]) > now_us()
end
"""
)

# KEYS: lease, fence counter. ARGV: holder, ttl µs.
_ACQUIRE = (
    _NOW
    + """
local now = now_us()
local h = redis.call('HMGET', KEYS[1], 'holder', 'fence', 'expires')
if h[1] and tonumber(h[3]) > now then return {0} end
local fence = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, now)
local expires = now + tonumber(ARGV[2])
redis.call('SET', KEYS[2], string.format('%d', fence))
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'fence', string.format('%d', fence),
           'expires', string.format('%d', expires))
redis.call('PEXPIRE', KEYS[1], math.ceil(2 * tonumber(ARGV[2]) / 1000))
return {1, fence, expires}
"""
)

# KEYS: lease. ARGV: fence, ttl µs.
_RENEW = (
    LEASE_HOLDS_LUA
    + """
if not lease_holds(KEYS[1], ARGV[1]) then return {0} end
local expires = now_us() + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'expires', string.format('%d', expires))
redis.call('PEXPIRE', KEYS[1], math.ceil(2 * tonumber(ARGV[2]) / 1000))
return {1, expires}
"""
)

# KEYS: lease. ARGV: fence.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: lease.
_HOLDER = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'holder', 'fence', 'expires')
if not h[1] or tonumber(h[3]) <= now_us() then return {} end
return h
"""
)

_PURGE = """
local function purge(nodes, node_prefix, now)
  for _, name in ipairs(redis.call('ZRANGEBYSCORE', nodes, '-inf', now)) do
    redis.call('DEL', node_prefix .. name)
  end
  redis.call('ZREMRANGEBYSCORE', nodes, '-inf', now)
end
"""

# KEYS: nodes, node hash. ARGV: name, incarnation, ttl µs, meta JSON, node hash prefix.
_JOIN = (
    _NOW
    + _PURGE
    + """
local now = now_us()
purge(KEYS[1], ARGV[5], now)
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expires then return {0, tonumber(expires) - now} end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'incarnation', ARGV[2], 'started', string.format('%d', now),
           'meta', ARGV[4], 'ttl', ARGV[3])
redis.call('PEXPIRE', KEYS[2], math.ceil(2 * tonumber(ARGV[3]) / 1000))
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return {1, now, now + tonumber(ARGV[3])}
"""
)

# KEYS: nodes, node hash. ARGV: name, incarnation, node hash prefix.
_HEARTBEAT = (
    _NOW
    + _PURGE
    + """
local now = now_us()
purge(KEYS[1], ARGV[3], now)
local h = redis.call('HMGET', KEYS[2], 'incarnation', 'started', 'ttl')
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) or h[1] ~= ARGV[2] then return {0} end
local ttl = tonumber(h[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[2], math.ceil(2 * ttl / 1000))
return {1, tonumber(h[2]), now + ttl}
"""
)

# KEYS: nodes, node hash. ARGV: name, incarnation.
_LEAVE = """
if redis.call('HGET', KEYS[2], 'incarnation') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: nodes. ARGV: node hash prefix. Returns {name, expires, incarnation, started, meta}...
_MEMBERS = (
    _NOW
    + _PURGE
    + """
local now = now_us()
purge(KEYS[1], ARGV[1], now)
local out = {}
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #live, 2 do
  local h = redis.call('HMGET', ARGV[1] .. live[i], 'incarnation', 'started', 'meta')
  if h[1] then
    for _, v in ipairs({live[i], live[i + 1], h[1], h[2], h[3]}) do table.insert(out, v) end
  end
end
return out
"""
)


def fenced_script(body: str) -> str:
    """A Lua script whose ``body`` may call ``lease_holds(lease_key, fence)`` (and
    ``now_us()``) to refuse a write unless the caller's lease still holds."""
    return LEASE_HOLDS_LUA + body


def redis_client(url: str, *, socket_timeout: float = SOCKET_TIMEOUT_SECONDS) -> Redis:
    """A client for coordination, every limit chosen: 2 s to connect; ``socket_timeout`` for
    a reply (longer than the messenger's blocking reads, ``block_seconds``); a command whose
    connection fails is tried once more at once (a pooled connection Redis closed since), not
    ten times with backoff as redis-py would: the caller hears ``CoordinationUnavailable``
    while it can still answer its own caller in time."""
    return Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=2.0,
        retry=Retry(NoBackoff(), retries=1),
    )


async def translated(call: Awaitable[T], what: str) -> T:
    """``call``'s result; Redis out of reach becomes ``CoordinationUnavailable``."""
    try:
        return await call
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise CoordinationUnavailable(
            f"Redis did not answer ({what}): {exc}", operation=what
        ) from exc


def _seconds(micros: Any) -> float:
    return int(micros) / 1_000_000


def _micros(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1_000_000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _RedisCoordination:
    def __init__(self, redis: Redis | str, key_prefix: str) -> None:
        self._owns_client = isinstance(redis, str)
        self.client = redis_client(redis) if isinstance(redis, str) else redis
        self.key_prefix = key_prefix

    def _script(self, source: str) -> Callable[..., Awaitable[Any]]:
        return self.client.register_script(source)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()


class RedisRegistry(_RedisCoordination):
    """A :class:`~voicemgmt.services.coordination.NodeRegistry` in Redis."""

    def __init__(self, redis: Redis | str, *, key_prefix: str = "vm:") -> None:
        super().__init__(redis, key_prefix)
        self.nodes_key = f"{key_prefix}nodes:{{cluster}}"
        self._node_prefix = f"{key_prefix}node:{{cluster}}:"
        self._join = self._script(_JOIN)
        self._heartbeat = self._script(_HEARTBEAT)
        self._leave = self._script(_LEAVE)
        self._members = self._script(_MEMBERS)

    async def join(
        self, node: str, ttl: float, metadata: Mapping[str, str] | None = None
    ) -> Member:
        check_node_name(node)
        ttl = check_ttl(ttl)
        meta = {str(k): str(v) for k, v in (metadata or {}).items()}
        incarnation = uuid.uuid4().hex
        keys = [self.nodes_key, self._node_prefix + node]
        args = [node, incarnation, _micros(ttl), json.dumps(meta), self._node_prefix]
        reply = await translated(self._join(keys=keys, args=args), "join")
        if int(reply[0]) == 0:
            raise in_use(node, _seconds(reply[1]))
        return Member(node, incarnation, _seconds(reply[1]), _seconds(reply[2]), meta)

    async def heartbeat(self, member: Member) -> Member | None:
        keys = [self.nodes_key, self._node_prefix + member.name]
        args = [member.name, member.incarnation, self._node_prefix]
        reply = await translated(self._heartbeat(keys=keys, args=args), "heartbeat")
        if int(reply[0]) == 0:
            return None
        return Member(
            member.name, member.incarnation, _seconds(reply[1]), _seconds(reply[2]), member.metadata
        )

    async def leave(self, member: Member) -> None:
        keys = [self.nodes_key, self._node_prefix + member.name]
        await translated(self._leave(keys=keys, args=[member.name, member.incarnation]), "leave")

    async def members(self) -> list[Member]:
        flat = await translated(
            self._members(keys=[self.nodes_key], args=[self._node_prefix]), "members"
        )
        found = []
        for i in range(0, len(flat), 5):
            name, expires, incarnation, started, meta = flat[i : i + 5]
            found.append(
                Member(
                    _text(name),
                    _text(incarnation),
                    _seconds(_text(started)),
                    _seconds(float(_text(expires))),
                    json.loads(_text(meta)),
                )
            )
        return sorted(found, key=lambda m: m.name)


class RedisLeaseStore(_RedisCoordination):
    """A :class:`~voicemgmt.services.coordination.LeaseStore` in Redis."""

    def __init__(self, redis: Redis | str, *, key_prefix: str = "vm:") -> None:
        super().__init__(redis, key_prefix)
        self._acquire = self._script(_ACQUIRE)
        self._renew = self._script(_RENEW)
        self._release = self._script(_RELEASE)
        self._holder = self._script(_HOLDER)
        self._check = self._script(fenced_script("return lease_holds(KEYS[1], ARGV[1]) and 1 or 0"))

    def lease_key(self, key: str) -> str:
        return f"{self.key_prefix}lease:{{{key}}}"

    def fence_key(self, key: str) -> str:
        return f"{self.key_prefix}fence:{{{key}}}"

    async def acquire(self, key: str, holder: str, ttl: float) -> Lease | None:
        check_lease_key(key)
        check_node_name(holder)
        ttl = check_ttl(ttl)
        sent_at = time.monotonic()
        keys = [self.lease_key(key), self.fence_key(key)]
        reply = await translated(self._acquire(keys=keys, args=[holder, _micros(ttl)]), "acquire")
        if int(reply[0]) == 0:
            return None
        return Lease(
            key, holder, int(reply[1]), ttl, _seconds(reply[2]), trust_deadline(sent_at, ttl)
        )

    async def renew(self, lease: Lease) -> Lease | None:
        sent_at = time.monotonic()
        reply = await translated(
            self._renew(keys=[self.lease_key(lease.key)], args=[lease.fence, _micros(lease.ttl)]),
            "renew",
        )
        if int(reply[0]) == 0:
            return None
        return Lease(
            lease.key,
            lease.holder,
            lease.fence,
            lease.ttl,
            _seconds(reply[1]),
            trust_deadline(sent_at, lease.ttl),
        )

    async def release(self, lease: Lease) -> bool:
        reply = await translated(
            self._release(keys=[self.lease_key(lease.key)], args=[lease.fence]), "release"
        )
        return int(reply) == 1

    async def holder(self, key: str) -> LeaseHolder | None:
        check_lease_key(key)
        reply = await translated(self._holder(keys=[self.lease_key(key)]), "holder")
        if not reply:
            return None
        holder, fence, expires = (_text(v) for v in reply)
        return LeaseHolder(key, holder, int(fence), _seconds(expires))

    async def check(self, lease: Lease) -> bool:
        reply = await translated(
            self._check(keys=[self.lease_key(lease.key)], args=[lease.fence]), "check"
        )
        return int(reply) == 1
