"""The Redis event bus: each account's stream shared by several nodes.

Keys (after the configurable prefix, ``vm:`` by default; the account id in braces is a cluster
hash tag, so all the keys of an account live on one shard):

- ``vm:events:{42}`` — a Redis Stream of the kept events, entry id ``{seq}-0``, fields ``t``
  (``at`` in microseconds since the epoch), ``k`` (kind), ``d`` (data as JSON) and ``e`` (the
  stream's epoch when it was published);
- ``vm:seq:{42}`` — the account's latest sequence number;
- ``vm:epoch:{42}`` — a hash: ``id``, the stream's identity (its *epoch*), and ``published``,
  set once an event was published under it.

The package, one concept a module: ``scripts`` (the Lua scripts that publish gaplessly and keep
the epoch), ``bus`` (``RedisEventBus``: publishing, reading, this node's feeds), ``feed`` (one
account's stream followed for this node's subscribers, and its epoch checks),
``subscription`` (``RedisSubscription``: replay from the stream, then live events).

Redis must not evict these keys (``maxmemory-policy noeviction``). Each feed holds one
connection of the client's pool, blocked for up to ``block_ms`` at a time (the client's
``socket_timeout``, if any, must be longer), and is stopped with ``CLIENT UNBLOCK``, never
cancelled mid-command. Feeds retry lost connections; failures of the commands a publisher or a
subscription runs itself reach their caller as ``redis.exceptions.RedisError``.
"""

from voicemgmt.adapters.events.redis.bus import RedisEventBus
from voicemgmt.adapters.events.redis.subscription import RedisSubscription

__all__ = ["RedisEventBus", "RedisSubscription"]
