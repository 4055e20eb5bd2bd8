"""Per-key counts in Redis, shared by every worker and machine, in leases.

A worker (a process, or a thread of one) asks Redis for a lease of several requests at once
when a key is busy, and spends it locally: one round trip (one EVALSHA) serves up to
``LEASE_MAX`` requests. The requests of a lease are counted in Redis, in every window of the
key, when it is taken, before any of them is answered, so a key is never let past its limit,
however many workers count it. What a lease leaves unspent when it ends (with the first of the
key's windows to end) is given back, in the same round trip as the worker's next lease, to
every window it was counted in that has not ended since. So a worker alone counts exactly
(unless a round trip fails: what its lease held then stays counted, refusing early, never
late); with several, a key can be refused early by what the other workers hold at that
moment: at most one lease each, and
- a lease takes at most a tenth of what is left of the key's tightest window
  (``LEASE_SHARE``), or one request, and a single request when fewer than twenty are left;
- leases grow only while each is used up within its window (1, 2, 4 ... ``LEASE_MAX``), and
  start again at one otherwise, so a key sending little takes leases of one request.

The headers of each request are those a round trip of its own would have given if no other
worker had counted the key meanwhile.
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
# for each, its amount, its seconds and when the instance of it that the worker's last lease was
# counted in ends (milliseconds since the epoch, Redis's clock; 0: nothing to give back); then
# the lease wanted, LEASE_SHARE, and the requests to give back (that lease's unspent ones).
# First the unspent requests go back to each window whose end is still the one given (the same
# instance: a new one ends at least its period later). Then, with room in every window, all are
# counted up by the lease granted (at most the wanted one, and at most a share of what is left
# of each window): returns {1, the shortest window's count, its milliseconds to go, the lease,
# the milliseconds until the first window ends, then each window's end}. Without room in some
# window, the request is counted alone, shortest window first, stopping at the first over its
# amount (it is refused): {that window (from 1), its count, its milliseconds to go, 0, 0}.
COUNT_WINDOWS = """
local windows = #KEYS
local grant = tonumber(ARGV[3 * windows + 1])
local share = tonumber(ARGV[3 * windows + 2])
local unspent = tonumber(ARGV[3 * windows + 3])
local clock = redis.call("TIME")
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if unspent > 0 then
  for i, key in ipairs(KEYS) do
    local ttl = redis.call("PTTL", key)
    if ttl > 0 and math.abs(now + ttl - tonumber(ARGV[3 * i])) <= 2 then
      local count = tonumber(redis.call("GET", key))
      redis.call("DECRBY", key, math.min(unspent, count))
    end
  end
end
for i, key in ipairs(KEYS) do
  local left = tonumber(ARGV[3 * i - 2]) - (tonumber(redis.call("GET", key)) or 0)
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
  local answer = {1, 0, 0, grant, 0}
  for i, key in ipairs(KEYS) do
    local count, ttl = counted(key, tonumber(ARGV[3 * i - 1]), grant)
    if i == 1 then
      answer[2], answer[3], answer[5] = count, ttl, ttl
    end
    answer[5] = math.min(answer[5], ttl)
    answer[5 + i] = now + ttl
  end
  return answer
end
local shown_count, shown_ttl
for i, key in ipairs(KEYS) do
  local count, ttl = counted(key, tonumber(ARGV[3 * i - 1]), 1)
  if count > tonumber(ARGV[3 * i - 2]) then
    return {i, count, ttl, 0, 0}
  end
  if i == 1 then
    shown_count, shown_ttl = count, ttl
  end
end
return {1, shown_count, shown_ttl, 0, 0}
"""

NOTHING_TO_GIVE_BACK = (0, ())


BOOT_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


def lease_clock() -> float:
    """Seconds on a clock that setting the wall clock does not move, and that goes on while the
    machine sleeps (Linux's boot time; elsewhere the monotonic clock): a lease cannot outlive
    its window in Redis."""
    return time.clock_gettime(BOOT_CLOCK)


@dataclass
class Lease:
    """Requests of one key counted in Redis and not yet spent by this worker."""

    windows: Sequence[Window]
    first_count: int  # the shortest window's count before the lease
    granted: int
    reset: float  # when the shortest window ends (seconds since the epoch, for the headers)
    ends: float  # when the first of its windows ends, the lease with it (lease_clock())
    window_ends: tuple[int, ...]  # each window's end, as Redis's clock gave it (ms)
    spent: int = field(default=0)

    def spend(self) -> Tally:
        self.spent += 1
        return Tally(self.windows[0], self.first_count + self.spent, self.reset)

    def usable(self, windows: Sequence[Window], now: float) -> bool:
        return self.windows is windows and self.spent < self.granted and now < self.ends

    def next_wanted(self, now: float) -> int:
        """Twice as many when this one was used up before its window ended; else one."""
        if self.spent == self.granted and now < self.ends:
            return min(2 * self.granted, LEASE_MAX)
        return 1

    def unspent(self) -> tuple[int, tuple[int, ...]]:
        """What to give back, and the ends of the windows it was counted in."""
        return self.granted - self.spent, self.window_ends


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
        now = lease_clock()
        if lease is not None and lease.usable(windows, now):
            return lease.spend()
        wanted, give_back = 1, NOTHING_TO_GIVE_BACK
        if lease is not None:
            # Dropped before asking: if the round trip fails after Redis ran it, the give-back
            # must not be sent again (a lost give-back refuses early; a repeated one, late).
            del leases[key]
            if lease.windows is windows:
                wanted, give_back = lease.next_wanted(now), lease.unspent()
        try:
            answer = self._ask(connection, self._pack(connection, key, windows, wanted, give_back))
        except self._errors.ConnectionError:
            # A connection Redis has closed (it restarted, or dropped an idle client) fails at
            # its next use: once more on a new one before calling Redis away. The first may
            # have been counted: the second asks for one request and gives nothing back, so
            # that a repeat can only count more, never less.
            connection.disconnect()
            answer = self._ask(
                connection, self._pack(connection, key, windows, 1, NOTHING_TO_GIVE_BACK)
            )
        index, count, ttl_ms, granted, ends_ms, *window_ends = (int(value) for value in answer)
        reset = time.time() + ttl_ms / 1000
        if not granted:
            return Tally(windows[index - 1], count, reset)
        if len(leases) >= LEASES_KEPT_MAX:
            leases.clear()  # their unspent requests stay counted until their windows end
        lease = leases[key] = Lease(
            windows, count - granted, granted, reset, now + ends_ms / 1000, tuple(window_ends)
        )
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

    def _pack(
        self,
        connection,
        key: str,
        windows: Sequence[Window],
        wanted: int,
        give_back: tuple[int, tuple[int, ...]],
    ) -> list[bytes]:
        unspent, ends = give_back
        if not unspent:
            ends = (0,) * len(windows)
        counters = [f"{REDIS_KEY_PREFIX}{key}/{window.suffix}" for window in windows]
        args = [
            number
            for window, end in zip(windows, ends, strict=True)
            for number in (window.amount, window.seconds, end)
        ]
        packed = connection.pack_command(
            "EVALSHA", self._sha, len(counters), *counters, *args, wanted, LEASE_SHARE, unspent
        )
        return [b"".join(packed)]  # one buffer, one send
