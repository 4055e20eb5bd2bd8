"""The counters behind the per-key rate limits: fixed windows, in this process's memory or in
Redis (``service.redis_counts``: a round trip serves one request or a lease of several).

A window starts with the first request counted in it and lasts its limit's period (Flask-Limiter's
"fixed-window" strategy, which the service used before). A key's limits are counted shortest
window first; the first one over its amount refuses the request and the longer ones are not
counted (Flask-Limiter's order and its "fail on first breach"). The window reported (in the
X-RateLimit-* headers) is the one that refused, or else the shortest.

No Flask here: ``service.limits`` puts this on the app.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import limits.storage

from service.rate_windows import Tally, Window, parse_windows
from service.redis_counts import RedisCounts

# The names other modules and tests import from here.
__all__ = [
    "Counts",
    "MemoryCounts",
    "PerKeyLimiter",
    "RedisCounts",
    "StorageCounts",
    "Tally",
    "Window",
    "parse_windows",
]

log = logging.getLogger(__name__)

# The counters' names as Flask-Limiter gave them (service.redis_counts).
NAMESPACE = "LIMITER"
SCOPE = "global"
# While the shared store is away, it is tried again after 1 s, then 2, 4, 8, 16, 16... s.
RETRY_SECONDS_MAX = 16.0


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
