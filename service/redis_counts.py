"""Per-key counts in Redis, shared by every worker and machine, in leases.

A worker asks Redis for a lease of several requests at once when a key is busy, and spends it
locally: one round trip (one EVALSHA) serves up to ``LEASE_MAX`` requests. The requests of a
lease are counted in Redis when it is taken, before any of them is answered, so a key is never
let past its limit, however many workers count it. The price is the other way: requests a
worker leased and has not spent yet are counted for nobody else, so a key can be refused early
by what other workers hold. Two bounds keep that small:

- a lease takes at most a tenth of what is left of the key's tightest window (``LEASE_SHARE``),
  and one request when fewer than twenty are left, so a key close to its limit is counted
  request by request, exactly as before leases;
- leases grow only while they are used up (1, 2, 4 ... ``LEASE_MAX``) and start again at one
  when one ends unspent, so a key sending little never holds more than it sends.

A lease ends with the shortest window it was counted in. The headers of each request are those
a round trip of its own would have given if no other worker had counted the key meanwhile: a
worker alone (or a key used through one) sees exactly the counts it saw before leases.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.rate_windows import Tally, Window

# Redis keys as Flask-Limiter named the same counters (LIMITS:LIMITER/<prefix>/<key>/global/
# <amount>/<multiples>/<unit>): workers of the previous version and of this one count together
# during a rolling update, and tools that looked for them still find them.
REDIS_KEY_PREFIX = "LIMITS:"
# A lease takes at most this share (one over it) of what is left of the tightest window...
LEASE_SHARE = 10
# ... and at most this many requests.
LEASE_MAX = 32
LEASES_KEPT_MAX = 10_000  # keys with a lease, per thread; then all are dropped (and re-leased)

# One round trip for every window of a key. KEYS: its counters, shortest window first; ARGV:
# for each, its amount then its seconds; then the lease wanted and LEASE_SHARE.
# With room in every window, all are counted up by the lease granted (at most the wanted one,
# and at most a share of what is left of each window): returns {1, the shortest window's count,
# its milliseconds to go, the lease, the milliseconds until the first window ends}.
# Without room in some window, the request is counted alone, shortest window first, stopping
# at the first over its amount (it is refused): {that window (from 1), its count, its
# milliseconds to go, 0, 0}.
COUNT_WINDOWS = """
local windows = #KEYS
local grant = tonumber(ARGV[2 * windows + 1])
local share = tonumber(ARGV[2 * windows + 2])
for i, key in ipairs(KEYS) do
  local left = tonumber(ARGV[2 * i - 1]) - (tonumber(redis.call("GET", key)) or 0)
  grant = math.min(grant, left, math.max(1, math.floor(left / share)))
end
local function counted(key, seconds, by)
  local count = redis.call("INCRBY", key, by)
  local ttl = -1
  if count > by then
    ttl = redis.call("PTTL", key)
  end
  if ttl < 0 then
    redis.call("EXPIRE", key, seconds)
    ttl = seconds * 1000
  end
  return count, ttl
end
if grant >= 1 then
  local shown_count, shown_ttl, first_end
  for i, key in ipairs(KEYS) do
    local count, ttl = counted(key, tonumber(ARGV[2 * i]), grant)
    if i == 1 then
      shown_count, shown_ttl, first_end = count, ttl, ttl
    end
    first_end = math.min(first_end, ttl)
  end
  return {1, shown_count, shown_ttl, grant, first_end}
end
local shown_count, shown_ttl
for i, key in ipairs(KEYS) do
  local count, ttl = counted(key, tonumber(ARGV[2 * i]), 1)
  if count > tonumber(ARGV[2 * i - 1]) then
    return {i, count, ttl, 0, 0}
  end
  if i == 1 then
    shown_count, shown_ttl = count, ttl
  end
end
return {1, shown_count, shown_ttl, 0, 0}
"""


@dataclass
class Lease:
    """Requests of one key counted in Redis and not yet spent by this worker."""

    windows: Sequence[Window]
    first_count: int  # the shortest window's count before the lease
    granted: int
    reset: float  # when the shortest window ends (seconds since the epoch)
    ends: float  # when the first of its windows ends: the lease with it
    spent: int = field(default=0)

    def spend(self) -> Tally:
        self.spent += 1
        return Tally(self.windows[0], self.first_count + self.spent, self.reset)

    def usable(self, windows: Sequence[Window], now: float) -> bool:
        return self.windows is windows and self.spent < self.granted and now < self.ends

    def next_wanted(self) -> int:
        """Twice as many when this one was used up; one when it ended unspent."""
        return min(2 * self.granted, LEASE_MAX) if self.spent == self.granted else 1


class RedisCounts:
    """Counters in Redis, shared by every worker and machine: one EVALSHA per lease.

    redis-py's client spends several times the round trip's own cost on each command (the pool,
    its checks and events); this keeps one connection per thread (made by the client's pool, so
    the URL's password, TLS, database and timeouts hold), sends each command packed in one
    buffer, then reads the answer with the connection's own parser. Leases are per thread too:
    a thread counts as a worker of its own."""

    SCHEMES = ("redis://", "rediss://", "redis+unix://")

    def __init__(self, uri: str, options: dict) -> None:
        import redis

        self.client = redis.Redis.from_url(uri.replace("redis+unix://", "unix://", 1), **options)
        self._sha = self.client.register_script(COUNT_WINDOWS).sha
        self._local = threading.local()
        self._errors = redis.exceptions

    def hit(self, key: str, windows: Sequence[Window]) -> Tally:
        connection, leases = self._thread_state()
        lease = leases.get(key)
        now = time.time()
        if lease is not None and lease.usable(windows, now):
            return lease.spend()
        wanted = lease.next_wanted() if lease is not None and lease.windows is windows else 1
        command = self._pack(connection, key, windows, wanted)
        try:
            answer = self._ask(connection, command)
        except self._errors.ConnectionError:
            # A connection Redis has closed (it restarted, or dropped an idle client) fails at
            # its next use: once more on a new one before calling Redis away.
            connection.disconnect()
            answer = self._ask(connection, command)
        index, count, ttl_ms, granted, ends_ms = (int(value) for value in answer)
        reset = now + ttl_ms / 1000
        if not granted:
            leases.pop(key, None)
            return Tally(windows[index - 1], count, reset)
        if len(leases) >= LEASES_KEPT_MAX:
            leases.clear()
        lease = leases[key] = Lease(windows, count - granted, granted, reset, now + ends_ms / 1000)
        return lease.spend()

    def _ask(self, connection, command: list[bytes]):
        connection.send_packed_command(command, check_health=False)
        try:
            return connection.read_response()
        except self._errors.NoScriptError:  # a Redis that restarted, or was flushed
            connection.send_command("SCRIPT", "LOAD", COUNT_WINDOWS, check_health=False)
            connection.read_response()
            connection.send_packed_command(command, check_health=False)
            return connection.read_response()

    def _thread_state(self):
        """This thread's connection and leases; never a connection of the parent process, nor
        its leases (they were counted for the parent)."""
        local = self._local
        pid = os.getpid()
        if getattr(local, "pid", None) != pid:
            local.connection = self.client.connection_pool.make_connection()
            local.leases = {}
            local.pid = pid
        return local.connection, local.leases

    def _pack(self, connection, key: str, windows: Sequence[Window], wanted: int) -> list[bytes]:
        counters = [f"{REDIS_KEY_PREFIX}{key}/{window.suffix}" for window in windows]
        args = [number for window in windows for number in (window.amount, window.seconds)]
        packed = connection.pack_command(
            "EVALSHA", self._sha, len(counters), *counters, *args, wanted, LEASE_SHARE
        )
        return [b"".join(packed)]  # one buffer, one send
