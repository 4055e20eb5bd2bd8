"""Counts added up in memory and handed on in batches: for counters whose every increment is
costly to write (prometheus-client's multiprocess samples) and bumped many times a request.

A batch is handed on within ``interval`` seconds of its first count, by a daemon thread of the
process that counted (started on its first count), and when that process exits (atexit: a
gunicorn worker leaves through SystemExit, even on its timeout). A forked child (gunicorn forks
its workers) starts with no counts, a lock of its own and no flusher: a thread does not survive
a fork, and the parent's counts are the parent's to hand on. What a process killed outright had
not handed on yet, one interval of counts at most, is lost: these are metrics, not records.
Without an interval every count is handed on at once.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable


class BatchedCounts:
    """``add`` counts keys; ``write(key, count)`` receives them, batched."""

    def __init__(self, write: Callable[[Hashable, int], None], interval: float | None) -> None:
        self._write = write
        self._interval = interval
        self._forget_on_fork()
        if interval is not None:
            os.register_at_fork(after_in_child=self._forget_on_fork)
            atexit.register(self.flush)

    def add(self, keys: Iterable[Hashable]) -> None:
        if self._interval is None:
            for key in keys:
                self._write(key, 1)
            return
        with self._lock:
            pending = self._pending
            for key in keys:
                pending[key] = pending.get(key, 0) + 1
            if not self._flushing:
                self._flushing = True
                threading.Thread(target=self._flush_every_interval, daemon=True).start()

    def flush(self) -> None:
        """Hand on every count added so far."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for key, count in pending.items():
            self._write(key, count)

    def _forget_on_fork(self) -> None:
        # In a child, the parent's lock may have been held by its flusher at the fork.
        self._lock = threading.Lock()
        self._pending: dict[Hashable, int] = {}
        self._flushing = False

    def _flush_every_interval(self) -> None:
        while True:
            time.sleep(self._interval)
            self.flush()
