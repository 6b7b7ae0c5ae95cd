"""The Redis event bus's Lua scripts: gapless publishing, and the stream's epoch.

The epoch is drawn when first read or published, and kept as long as the stream is: every
node reads the same one. A stream key never disappears on its own (trimming leaves an empty
stream), so a missing stream that had events under the epoch means Redis lost it (a flush, a
restart without persistence, a deleted key): the next read or publish draws a new epoch,
atomically (the same Lua function in both scripts), and clients resuming with the old one are
told to reload. So is a missing epoch (keys written before epochs existed).

Publishing runs one Lua script that takes a block of numbers from the counter, appends the
events and trims the stream, atomically: nodes publishing at once still make one gapless order.
Trimming is exact (``MAXLEN``, then age), always from the oldest end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

# The stream's epoch (hash fields ``id``, ``published``), drawn anew (``candidate``) if there is
# none, or if the stream had events under it and is gone (Redis lost it).
ENSURE_EPOCH = """
local function ensure_epoch(stream, epoch, candidate)
  local id = redis.call('HGET', epoch, 'id')
  local exists = redis.call('EXISTS', stream) == 1
  if id and (exists or not redis.call('HGET', epoch, 'published')) then return id end
  redis.call('DEL', epoch)
  redis.call('HSET', epoch, 'id', candidate)
  if exists then redis.call('HSET', epoch, 'published', '1') end
  return candidate
end
"""

# KEYS: stream, counter, epoch. ARGV: candidate epoch.
EPOCH_SCRIPT = ENSURE_EPOCH + "return ensure_epoch(KEYS[1], KEYS[3], ARGV[1])\n"

# KEYS: stream, counter, epoch. ARGV: max_events, age cutoff in µs ("" for none), n, then n
# times (t, k, d), then a candidate epoch. Returns the first sequence number of the block.
PUBLISH = (
    ENSURE_EPOCH
    + """
local n = tonumber(ARGV[3])
local epoch = ensure_epoch(KEYS[1], KEYS[3], ARGV[4 + 3 * n])
redis.call('HSETNX', KEYS[3], 'published', '1')
local last = redis.call('INCRBY', KEYS[2], n)
local first = last - n + 1
for i = 0, n - 1 do
  local at = 4 + 3 * i
  redis.call('XADD', KEYS[1], string.format('%d-0', first + i),
             't', ARGV[at], 'k', ARGV[at + 1], 'd', ARGV[at + 2], 'e', epoch)
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[1])
if ARGV[2] ~= '' then
  local cutoff = tonumber(ARGV[2])
  while true do
    local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 100)
    local keep = nil
    for _, entry in ipairs(head) do
      if tonumber(entry[2][2]) >= cutoff then keep = entry[1] break end
    end
    if keep then
      redis.call('XTRIM', KEYS[1], 'MINID', keep)
      break
    end
    if #head == 0 then break end
    local oldest_young = tonumber(string.match(head[#head][1], '^(%d+)')) + 1
    redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', oldest_young))
  end
end
return first
"""
)


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def micros_of(at: datetime) -> int:
    """Microseconds since the Unix epoch (the stream's ``t``)."""
    return (at - UNIX_EPOCH) // MICROSECOND
