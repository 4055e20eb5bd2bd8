"""The writers of one SQLite file, queued on a lock the kernel hands over.

SQLite lets one writer at a time into a file. A writer that finds the file locked does not wait
for it to be released: SQLite's busy handler sleeps and tries again, 1 ms, then 2, 5, 10 ms and
longer. A write takes well under a millisecond here, so with two gunicorn workers storing
assessments, each collision cost the waiting one more than a whole write, and the slept steps
added up at the tail (p99 about 9 ms for two processes each writing every 0.6 ms, against
1.8 ms queued; throughput half as high again when queued).

So the service's writes (and its checkpoint after an erasure) take an exclusive ``flock`` on a
file beside the database first, and the kernel wakes the next writer the moment the lock is
let go. SQLite's own locking is unchanged and still decides: a writer that does not take this
lock (a migration, a restore, the ``sqlite3`` shell) is waited for as before, through the busy
handler. The queue makes collisions cheap; it never decides what is written. A wait in the
queue has no deadline of its own: it lasts as long as the write ahead, which SQLite's busy
timeout bounds.

One queue per file per process (``queue_for``), shared by every Storage on it, so that a thread
never waits on a lock another Storage of its own process holds.
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
    """The queue of one file in this process; made by ``queue_for``."""

    def __init__(self, database_path: str) -> None:
        self.database = database_path
        self.path = database_path + SUFFIX
        self.users = 0  # the Storages holding it (queue_for, release)
        self._forget()

    def _forget(self) -> None:
        """A new process's state: nothing held, no file open. (In a forked child the parent's
        file is closed rather than reused: a flock belongs to an open file, shared with the
        parent, which may hold it.)"""
        inherited = getattr(self, "_fd", None)
        # A flock belongs to an open file: threads of one process share it, so they queue on
        # this lock first. Reentrant, so that a write nested in another of its own thread fails
        # on SQLite's lock, after its timeout, as it would without the queue, rather than hang.
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._opened = False
        if inherited is not None:
            with contextlib.suppress(OSError):
                os.close(inherited)

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
            locked = False
            try:
                locked = fd is not None and _flock(fd, fcntl.LOCK_EX, self.path)
                self._depth = 1
                yield time.monotonic() - started
            finally:
                self._depth = 0
                if fd is not None and locked:
                    _flock(fd, fcntl.LOCK_UN, self.path)

    def _file(self) -> int | None:
        """This process's open lock file; None when it cannot be opened, and then writes go
        on without the queue, waiting for SQLite's lock as they would without it (logged once
        per process)."""
        if not self._opened:
            self._opened = True
            try:
                # Read-only is enough for flock, so a file another user made (a command run as
                # root, say) still serves; the database's folder is writable, or SQLite fails.
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                log.warning("SQLite writers will not queue (%s): %s", self.path, error.strerror)
        return self._fd

    def close(self) -> None:
        """Close this process's file, once no thread holds the lock."""
        with self._thread_lock:
            if self._fd is not None:
                os.close(self._fd)
            self._fd, self._opened = None, False


def _flock(fd: int, operation: int, path: str) -> bool:
    """flock, or False where the file system refuses it (writes then go on unqueued)."""
    try:
        fcntl.flock(fd, operation)
    except OSError as error:
        log.warning("SQLite writers' lock %s failed: %s", path, error.strerror)
        return False
    return True


_queues: dict[str, WriterQueue] = {}
_queues_lock = threading.Lock()


def queue_for(database: str) -> WriterQueue:
    """The queue of this database file (a path as SQLite opens it), shared in this process."""
    path = os.path.abspath(database)
    with _queues_lock:
        queue = _queues.get(path)
        if queue is None:
            queue = _queues[path] = WriterQueue(path)
        queue.users += 1
        return queue


def release(queue: WriterQueue) -> None:
    """A Storage is done with its queue: the last one closes the file."""
    with _queues_lock:
        queue.users -= 1
        if queue.users > 0:
            return
        _queues.pop(queue.database, None)
    queue.close()


def _forget_all_in_child() -> None:
    global _queues_lock
    _queues_lock = threading.Lock()
    for queue in _queues.values():
        queue._forget()


os.register_at_fork(after_in_child=_forget_all_in_child)
