"""The writers of one SQLite file, queued on a lock the kernel hands over.

SQLite lets one writer at a time into a file. A writer that finds the file locked does not wait
for it to be released: SQLite's busy handler sleeps and tries again, 1 ms, then 2, 5, 10 ms and
longer. A write takes well under a millisecond here, so with two gunicorn workers storing
assessments, each collision cost the waiting one more than a whole write, and the slept steps
added up at the tail (p99 about 9 ms for two processes each writing every 0.6 ms, against
1.8 ms queued; throughput half as high again when queued).

So every write of the service takes an exclusive ``flock`` on a file beside the database
first, and the kernel wakes the next writer the moment the lock is let go. SQLite's own locking
is unchanged and still decides: a writer that does not take this lock (a migration, a backup
tool, the ``sqlite3`` shell) is waited for as before, through the busy handler. The queue makes
collisions cheap; it never decides what is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

# The lock file beside the database: "<database>-writers".
SUFFIX = "-writers"


class WriterQueue:
    """One per Storage; safe across forks (each process opens the file anew) and threads."""

    def __init__(self, database_path: str) -> None:
        self.path = database_path + SUFFIX
        # A flock belongs to an open file: threads of one process share it, so they queue on
        # this lock first. Reentrant: a write may run inside another of the same thread's.
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid: int | None = None

    @contextlib.contextmanager
    def turn(self) -> Iterator[float]:
        """Hold the lock for the block; gives the seconds spent waiting for it."""
        started = time.monotonic()
        with self._thread_lock:
            if self._depth:
                self._depth += 1
                try:
                    yield 0.0
                finally:
                    self._depth -= 1
                return
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth = 1
            try:
                yield time.monotonic() - started
            finally:
                self._depth = 0
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _file(self) -> int | None:
        """This process's open lock file; None when it cannot be opened, and then writes go
        on without the queue, waiting for SQLite's lock as they would without it."""
        # A file opened before a fork is shared with the child, and so is its lock: each
        # process needs its own open file to queue against the others.
        pid = os.getpid()
        if self._pid != pid:
            self._pid = pid
            try:
                # Read-only is enough for flock, so a file another user made (a command run as
                # root, say) still serves; the database's folder is writable, or SQLite fails.
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                self._fd = None
                log.warning("SQLite writers will not queue (%s): %s", self.path, error.strerror)
        return self._fd

    def close(self) -> None:
        """Close this process's file (the lock, if held, goes with it)."""
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = self._pid = None
