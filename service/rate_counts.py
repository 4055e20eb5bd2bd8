"""The counters behind the per-key rate limits: fixed windows, in this process's memory or in
Redis, where one request costs one round trip whatever the number of limits.

A window starts with the first request counted in it and lasts its limit's period (Flask-Limiter's
"fixed-window" strategy, which the service used before). A key's limits are counted shortest
window first; the first one over its amount refuses the request and the longer ones are not
counted (Flask-Limiter's order and its "fail on first breach"). The window reported (in the
X-RateLimit-* headers) is the one that refused, or else the shortest.

No Flask here: ``service.limits`` puts this on the app.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import limits
import limits.storage

log = logging.getLogger(__name__)

# Redis keys as Flask-Limiter named the same counters (LIMITS:LIMITER/<prefix>/<key>/global/
# <amount>/<multiples>/<unit>): workers of the previous version and of this one count together
# during a rolling update, and tools that looked for them still find them.
REDIS_KEY_PREFIX = "LIMITS:"
NAMESPACE = "LIMITER"
SCOPE = "global"
# While the shared store is away, it is tried again after 1 s, then 2, 4, 8, 16, 16... s.
RETRY_SECONDS_MAX = 16.0


@dataclass(frozen=True)
class Window:
    """One limit: at most ``amount`` requests per window of ``seconds``."""

    amount: int
    seconds: int
    text: str  # "30 per 1 second", as a 429's detail names it
    suffix: str  # "30/1/second", the end of its counters' keys

    @classmethod
    def of(cls, item: limits.RateLimitItem) -> Window:
        return cls(
            amount=item.amount,
            seconds=item.get_expiry(),
            text=str(item),
            suffix=f"{item.amount}/{item.multiples}/{item.GRANULARITY.name}",
        )


def parse_windows(text: str) -> tuple[Window, ...]:
    """The limits of a setting ("600 per minute;30 per second"), shortest window first."""
    items = sorted(limits.parse_many(text), key=lambda item: item.GRANULARITY.seconds)
    return tuple(Window.of(item) for item in items)


@dataclass(frozen=True)
class Tally:
    """A request counted: the window reported, its count with this request, and when it ends
    (seconds since the epoch)."""

    window: Window
    count: int
    reset: float

    @property
    def refused(self) -> bool:
        return self.count > self.window.amount

    @property
    def remaining(self) -> int:
        return max(0, self.window.amount - self.count)


class Counts(Protocol):
    def hit(self, key: str, windows: Sequence[Window]) -> Tally:
        """Count one request against every window of ``key`` (shortest first, stopping at the
        first over its amount)."""
        ...


class MemoryCounts:
    """Counters of this process: a dict of [count, end of window]. A window that has ended
    starts again when next met; once a minute the ended ones are dropped, so that keys seen
    once do not stay."""

    SWEEP_SECONDS = 60.0

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counters: dict[str, list[float]] = {}
        self._lock = threading.Lock()  # gunicorn's sync workers have one thread; others may not
        self._next_sweep = 0.0

    def hit(self, key: str, windows: Sequence[Window]) -> Tally:
        now = self._clock()
        shown = None
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            for window in windows:
                name = f"{key}/{window.suffix}"
                counter = self._counters.get(name)
                if counter is None or counter[1] <= now:
                    counter = self._counters[name] = [0, now + window.seconds]
                counter[0] += 1
                if counter[0] > window.amount:
                    return Tally(window, int(counter[0]), counter[1])
                if shown is None:
                    shown = Tally(window, int(counter[0]), counter[1])
        assert shown is not None, "no windows"
        return shown

    def _sweep(self, now: float) -> None:
        self._counters = {name: c for name, c in self._counters.items() if c[1] > now}
        self._next_sweep = now + self.SWEEP_SECONDS


# Every window of one key, in one round trip (EVALSHA). KEYS: the key's counters, shortest
# window first; ARGV: for each, its amount then its seconds. Returns {the window reported
# (from 1), its count, its milliseconds to go}.
COUNT_WINDOWS = """
local shown_count, shown_ttl
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[2 * i - 1])
  local seconds = tonumber(ARGV[2 * i])
  local count = redis.call("INCR", key)
  local ttl
  if count == 1 then
    redis.call("EXPIRE", key, seconds)
    ttl = seconds * 1000
  else
    ttl = redis.call("PTTL", key)
    if ttl < 0 then
      redis.call("EXPIRE", key, seconds)
      ttl = seconds * 1000
    end
  end
  if count > amount then
    return {i, count, ttl}
  end
  if i == 1 then
    shown_count, shown_ttl = count, ttl
  end
end
return {1, shown_count, shown_ttl}
"""


class RedisCounts:
    """Counters in Redis, shared by every worker and machine: one EVALSHA per request.

    redis-py's client spends several times the round trip's own cost on each command (the pool,
    its checks and events); this keeps one connection per thread (made by the client's pool, so
    the URL's password, TLS, database and timeouts hold) and sends each key's command packed
    once, then reads the answer with the connection's own parser."""

    SCHEMES = ("redis://", "rediss://", "redis+unix://")
    PACKED_KEYS_MAX = 10_000  # commands kept packed, one per key seen; then packed afresh

    def __init__(self, uri: str, options: dict) -> None:
        import redis

        self.client = redis.Redis.from_url(uri.replace("redis+unix://", "unix://", 1), **options)
        self._sha = self.client.register_script(COUNT_WINDOWS).sha
        # Per key: the windows it was packed for, and the command.
        self._packed: dict[str, tuple[Sequence[Window], list[bytes]]] = {}
        self._local = threading.local()
        self._errors = redis.exceptions

    def hit(self, key: str, windows: Sequence[Window]) -> Tally:
        connection = self._connection()
        packed = self._packed.get(key)
        if packed is not None and packed[0] is windows:
            command = packed[1]
        else:
            command = self._pack(connection, key, windows)
        try:
            index, count, ttl_ms = self._ask(connection, command)
        except self._errors.ConnectionError:
            # A connection Redis has closed (it restarted, or dropped an idle client) fails at
            # its next use: once more on a new one before calling Redis away.
            connection.disconnect()
            index, count, ttl_ms = self._ask(connection, command)
        return Tally(windows[int(index) - 1], int(count), time.time() + int(ttl_ms) / 1000)

    def _ask(self, connection, command: list[bytes]):
        connection.send_packed_command(command, check_health=False)
        try:
            return connection.read_response()
        except self._errors.NoScriptError:  # a Redis that restarted, or was flushed
            connection.send_command("SCRIPT", "LOAD", COUNT_WINDOWS, check_health=False)
            connection.read_response()
            connection.send_packed_command(command, check_health=False)
            return connection.read_response()

    def _connection(self):
        local = self._local
        connection = getattr(local, "connection", None)
        pid = os.getpid()
        if connection is None or local.pid != pid:  # never a connection of the parent process
            connection = local.connection = self.client.connection_pool.make_connection()
            local.pid = pid
        return connection

    def _pack(self, connection, key: str, windows: Sequence[Window]) -> list[bytes]:
        counters = [f"{REDIS_KEY_PREFIX}{key}/{window.suffix}" for window in windows]
        args = [number for window in windows for number in (window.amount, window.seconds)]
        packed = connection.pack_command("EVALSHA", self._sha, len(counters), *counters, *args)
        command = [b"".join(packed)]  # one buffer, one send
        if len(self._packed) >= self.PACKED_KEYS_MAX:
            self._packed.clear()
        self._packed[key] = (windows, command)
        return command


class StorageCounts:
    """Any other store Flask-Limiter took (memcached://, redis+sentinel://, redis+cluster://,
    valkey://, mongodb://...), through the limits library: a round trip per window counted,
    and one for the reported window's end."""

    def __init__(self, uri: str, options: dict) -> None:
        self._storage = limits.storage.storage_from_string(uri, **options)

    def hit(self, key: str, windows: Sequence[Window]) -> Tally:
        shown = None
        for window in windows:
            name = f"{key}/{window.suffix}"
            count = self._storage.incr(name, window.seconds)
            if count > window.amount:
                return Tally(window, count, self._storage.get_expiry(name))
            if shown is None:
                shown = (window, count, name)
        assert shown is not None, "no windows"
        return Tally(shown[0], shown[1], self._storage.get_expiry(shown[2]))


def counts_for(uri: str, options: dict) -> Counts:
    if uri.startswith("memory://"):
        return MemoryCounts()
    if uri.startswith(RedisCounts.SCHEMES):
        return RedisCounts(uri, options)
    return StorageCounts(uri, options)


class PerKeyLimiter:
    """The per-key limits of the API: counted in the configured store, or, while that store
    does not answer, in this process's memory (per key and endpoint, under the fallback limits),
    trying the store again now and then. Built empty at start-up; ``configure`` sets it up."""

    def __init__(self) -> None:
        self.windows: tuple[Window, ...] = ()
        self.shared: Counts = MemoryCounts()
        self._prefix = ""
        self._fallback: tuple[Window, ...] | None = None
        self._local = MemoryCounts()
        self._retry_at: float | None = None  # None: the shared store answers
        self._retries = 0

    def configure(
        self,
        windows: tuple[Window, ...],
        storage_uri: str,
        storage_options: dict,
        key_prefix: str = "",
        fallback: tuple[Window, ...] | None = None,
    ) -> None:
        """``fallback``: the limits counted in this process while the store is away (None: no
        counting then)."""
        self.windows = windows
        self.shared = counts_for(storage_uri, storage_options)
        self._prefix = "/".join(part for part in (NAMESPACE, key_prefix) if part) + "/"
        self._fallback = fallback

    def hit(self, key: str, endpoint: str) -> Tally | None:
        """Count a request of ``key`` to ``endpoint``; None if it could not be counted."""
        if self._retry_at is None or time.monotonic() >= self._retry_at:
            try:
                tally = self.shared.hit(f"{self._prefix}{key}/{SCOPE}", self.windows)
            except Exception as error:  # the store is away: count here rather than fail
                self._away(error)
            else:
                if self._retry_at is not None:
                    log.info("rate-limit storage answers again; counting there again")
                    self._retry_at, self._retries = None, 0
                return tally
        if self._fallback is None:
            return None
        return self._local.hit(f"{key}/{endpoint}", self._fallback)

    def _away(self, error: Exception) -> None:
        if self._retry_at is None:
            log.warning(
                "rate-limit storage unreachable (%s: %s); falling back to in-memory storage, "
                "counting per process until it answers again",
                type(error).__name__,
                error,
            )
            self._retries = 0
        else:
            self._retries += 1
        self._retry_at = time.monotonic() + min(2.0**self._retries, RETRY_SECONDS_MAX)
