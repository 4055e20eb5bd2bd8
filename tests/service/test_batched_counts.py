"""Counts batched in memory (the rule firings' metrics under gunicorn): none lost, none doubled,
handed on within their interval, by the process that counted them."""

from __future__ import annotations

import collections
import os
import threading
import time

import pytest

from service.batched_counts import BatchedCounts


class Written:
    """What a BatchedCounts handed on: the sum per key, and each call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, int]] = []

    def __call__(self, key: str, count: int) -> None:
        with self.lock:
            self.calls.append((key, count))

    def totals(self) -> collections.Counter:
        with self.lock:
            totals = collections.Counter()
            for key, count in self.calls:
                totals[key] += count
            return totals


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_without_an_interval_every_count_is_handed_on_at_once():
    written = Written()
    counts = BatchedCounts(written, None)
    counts.add(["R1", "R2", "R1"])
    assert written.calls == [("R1", 1), ("R2", 1), ("R1", 1)]


def test_counts_wait_for_their_batch_and_arrive_summed_once():
    written = Written()
    counts = BatchedCounts(written, 3600)  # no flush by time within this test
    counts.add(["R1", "R2"])
    counts.add(["R1"])
    assert written.calls == []
    counts.flush()
    assert sorted(written.calls) == [("R1", 2), ("R2", 1)]
    counts.flush()  # nothing twice
    assert sorted(written.calls) == [("R1", 2), ("R2", 1)]


def test_a_batch_is_handed_on_within_its_interval_without_a_flush():
    written = Written()
    counts = BatchedCounts(written, 0.05)
    counts.add(["R1", "R1", "R3"])
    assert wait_for(lambda: written.totals() == {"R1": 2, "R3": 1}, 5)


def test_counts_added_by_many_threads_while_flushing_are_all_handed_on_once():
    written = Written()
    counts = BatchedCounts(written, 0.001)  # the flusher runs all the time
    threads, rounds = 8, 2000

    def count() -> None:
        for _ in range(rounds):
            counts.add(["R1", "R2"])
            counts.add(["R1"])

    workers = [threading.Thread(target=count) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for _ in range(200):
        counts.flush()  # from another thread, as worker_exit does
    for worker in workers:
        worker.join()
    counts.flush()
    assert written.totals() == {"R1": 2 * threads * rounds, "R2": threads * rounds}


def in_a_fork(check) -> bool:
    """Whether ``check()`` holds in a forked child of this process (as gunicorn forks its
    workers); the child reports through a pipe, with what it was handed if it does not."""
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.write(writer, b"ok" if check() else b"failed")
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        report = pipe.read()
    os.waitpid(child, 0)
    return report == b"ok"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_hands_on_its_own_counts_on_its_own_thread():
    """gunicorn forks its workers: each needs a flusher of its own, since threads do not
    survive a fork, and a count made before the fork is not handed on twice."""
    written = Written()
    counts = BatchedCounts(written, 0.05)
    counts.add(["before fork"])  # starts the parent's flusher
    assert wait_for(lambda: written.totals() == {"before fork": 1}, 5)

    def child_hands_on_its_own() -> bool:
        counts.add(["in child"])
        handed_on = wait_for(lambda: written.totals()["in child"] == 1, 5)
        return handed_on and written.totals() == {"before fork": 1, "in child": 1}

    assert in_a_fork(child_hands_on_its_own)
    assert written.totals() == {"before fork": 1}  # the child's counts are the child's


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_counts_not_yet_handed_on_at_a_fork_stay_the_parents():
    """A worker forked while its parent holds counts must not hand them on a second time."""
    written = Written()
    counts = BatchedCounts(written, 3600)  # only flush() hands counts on here
    counts.add(["before fork", "before fork"])

    def child_hands_on_only_its_own() -> bool:
        counts.add(["in child"])
        counts.flush()
        return written.calls == [("in child", 1)]

    assert in_a_fork(child_hands_on_only_its_own)
    counts.flush()
    assert written.calls == [("before fork", 2)]
