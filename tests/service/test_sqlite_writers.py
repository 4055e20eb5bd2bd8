"""The writers of a SQLite file queue on a lock beside it (service.storage.writers): a writer
waits for the one ahead of it and goes the moment it is done; threads, Storages and forked
processes on one file queue against each other; SQLite's own lock still decides, and a long
wait in the queue shortens the wait for it; where the lock cannot be had, writes go on."""

from __future__ import annotations

import errno
import fcntl
import logging
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from rules import load_library
from service.evaluation import assessment_of
from service.examples import SELF_CARE_TECHNIQUE
from service.record_creation import assessment_record
from service.storage import Storage, StorageUnavailable, database, engine, writers
from service.storage.writers import SUFFIX, queue_for, release

# Long enough for a blocked writer to have written, had it not been waiting.
SETTLE_SECONDS = 0.3
# A waiting writer, once the lock is let go, is done within this (a synced insert on a loaded
# machine included); SQLite's own retries would take up to 100 ms a step, the whole 30 s at most.
DONE_AFTER_RELEASE_SECONDS = 1.0
# Joins that end a test rather than hang it when a thread or a child never finishes.
JOIN_SECONDS = 10


@pytest.fixture
def sqlite_path(tmp_path) -> Path:
    return tmp_path / "writers.sqlite3"


def _new_storage(sqlite_path: Path) -> Storage:
    store = Storage(f"sqlite:///{sqlite_path}")
    store.upgrade()
    if store.keys.tenant_id("writers") is None:
        store.keys.create("writers", label="test")
    return store


@pytest.fixture
def storage(sqlite_path) -> Storage:
    store = _new_storage(sqlite_path)
    yield store
    store.dispose()


def _storing(storage: Storage) -> Callable[[], str]:
    """A write of a new assessment, everything but the write made now (so that a thread
    running it does nothing but wait for its turn and write)."""
    library = load_library()
    sent, _, assessment = assessment_of(library.get, dict(SELF_CARE_TECHNIQUE))
    new_record = assessment_record(sent, assessment, None)
    tenant_id = storage.keys.tenant_id("writers")

    def store() -> str:
        stored, _ = storage.records.create(
            tenant_id=tenant_id,
            api_key_id=None,
            request_id="writers-test",
            new_record=new_record,
        )
        return stored.id

    return store


def _held_elsewhere(sqlite_path: Path) -> int:
    """The queue's lock taken on an open file of the test's own (flock excludes other open
    files, even in one process)."""
    fd = os.open(f"{sqlite_path}{SUFFIX}", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _in_thread(work) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except Exception as error:
            outcome["error"] = error
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _joined(thread: threading.Thread) -> None:
    thread.join(JOIN_SECONDS)
    assert not thread.is_alive(), "the thread is still waiting"


def test_a_write_waits_for_the_writer_ahead_and_goes_as_soon_as_it_is_done(storage, sqlite_path):
    store = _storing(storage)
    fd = _held_elsewhere(sqlite_path)
    thread, outcome = _in_thread(store)
    time.sleep(SETTLE_SECONDS)
    assert outcome == {}, "the write went ahead while another writer held the queue"
    released = time.monotonic()
    os.close(fd)
    _joined(thread)
    assert "error" not in outcome
    assert outcome["at"] - released < DONE_AFTER_RELEASE_SECONDS
    assert storage.records.get(storage.keys.tenant_id("writers"), "assessment", outcome["value"])


def test_reads_do_not_queue(storage, sqlite_path):
    record_id = _storing(storage)()
    tenant_id = storage.keys.tenant_id("writers")
    fd = _held_elsewhere(sqlite_path)
    try:
        thread, outcome = _in_thread(
            lambda: storage.records.get(tenant_id, "assessment", record_id)
        )
        _joined(thread)
        assert outcome["value"].id == record_id
    finally:
        os.close(fd)


def test_the_checkpoint_after_an_erasure_waits_its_turn(storage, sqlite_path):
    fd = _held_elsewhere(sqlite_path)
    thread, outcome = _in_thread(storage.scrub_after_erasure)
    time.sleep(SETTLE_SECONDS)
    assert outcome == {}, "the checkpoint went ahead while a writer held the queue"
    os.close(fd)
    _joined(thread)
    assert "error" not in outcome


def test_threads_of_one_process_queue_on_each_other(storage):
    store = _storing(storage)
    entered, leave = threading.Event(), threading.Event()

    def first() -> None:
        with storage.write():
            entered.set()
            leave.wait(JOIN_SECONDS)

    holder = threading.Thread(target=first, daemon=True)
    holder.start()
    assert entered.wait(JOIN_SECONDS)
    thread, outcome = _in_thread(store)
    time.sleep(SETTLE_SECONDS)
    assert outcome == {}, "a second thread wrote while the first held the queue"
    leave.set()
    _joined(thread)
    _joined(holder)
    assert "value" in outcome


def test_storages_of_one_file_share_its_queue_so_a_nested_write_does_not_hang(sqlite_path):
    first, second = _new_storage(sqlite_path), _new_storage(sqlite_path)
    try:
        assert first._writers is second._writers

        def nested() -> bool:
            with first.write(), second.write():
                return True

        thread, outcome = _in_thread(nested)
        _joined(thread)
        assert outcome["value"] is True
    finally:
        first.dispose()
        second.dispose()


def test_a_relative_path_and_its_absolute_path_are_one_queue(sqlite_path, monkeypatch):
    monkeypatch.chdir(sqlite_path.parent)
    relative, absolute = queue_for(sqlite_path.name), queue_for(str(sqlite_path))
    try:
        assert relative is absolute
    finally:
        release(relative)
        release(absolute)


def _hold_in_child(storage: Storage, holding, release_child) -> None:
    with storage.write():
        holding.set()
        release_child.wait(JOIN_SECONDS)


def test_processes_forked_from_one_storage_queue_on_each_other(storage):
    store = _storing(storage)
    store()  # the parent has opened its lock file before the fork
    context = multiprocessing.get_context("fork")
    holding, release_child = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(storage, holding, release_child))
    child.start()
    try:
        assert holding.wait(JOIN_SECONDS)
        thread, outcome = _in_thread(_storing(storage))
        time.sleep(SETTLE_SECONDS)
        assert outcome == {}, "the parent wrote while its forked child held the queue"
        release_child.set()
        _joined(thread)
        assert "value" in outcome
    finally:
        release_child.set()
        child.join(JOIN_SECONDS)
    assert child.exitcode == 0


def _write_in_child(storage: Storage, entered) -> None:
    with storage.write():
        entered.set()


def test_a_process_forked_during_a_write_starts_with_nothing_held(storage):
    """The child of a fork made while its parent held the queue gets the lock's state of a new
    process: it waits for the parent's write (the lock is the parent's), then takes its turn,
    rather than skip the queue as if it held it, or hang."""
    context = multiprocessing.get_context("fork")
    entered = context.Event()
    with storage.write():
        child = context.Process(target=_write_in_child, args=(storage, entered))
        child.start()
        assert not entered.wait(SETTLE_SECONDS), "the child wrote during its parent's write"
    try:
        assert entered.wait(JOIN_SECONDS), "the child never got its turn"
    finally:
        child.join(JOIN_SECONDS)
    assert child.exitcode == 0


def test_a_write_inside_a_write_of_the_same_thread_keeps_the_lock_until_the_outer_one_ends(
    sqlite_path,
):
    queue = queue_for(str(sqlite_path))
    probe = os.open(f"{sqlite_path}{SUFFIX}", os.O_RDWR | os.O_CREAT)
    try:
        with queue.turn():
            with queue.turn() as waited:
                assert waited == 0.0
            with pytest.raises(BlockingIOError):
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once the outer one ended
    finally:
        os.close(probe)
        release(queue)


def test_a_long_wait_in_the_queue_shortens_the_wait_for_sqlites_own_lock(sqlite_path, monkeypatch):
    # Three seconds stand for the 30 s: a writer that queued longer than that, behind a writer
    # stuck on a lock held outside the queue, fails at once instead of waiting it over again.
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_S", 3)
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 3)
    monkeypatch.setattr(database, "LONG_QUEUE_SECONDS", 0.5)
    storage = _new_storage(sqlite_path)
    try:
        store = _storing(storage)
        outside = sqlite3.connect(sqlite_path, isolation_level=None)
        with closing(outside):
            outside.execute("BEGIN IMMEDIATE")  # a writer outside the queue holds SQLite's lock
            fd = _held_elsewhere(sqlite_path)
            thread, outcome = _in_thread(store)
            time.sleep(3.2)
            released = time.monotonic()
            os.close(fd)
            _joined(thread)
            outside.execute("ROLLBACK")
        assert isinstance(outcome.get("error"), StorageUnavailable)
        assert outcome["at"] - released < 1.5, "the write waited SQLite's whole timeout again"
        # The connection the write used is back in the pool with the whole wait.
        with storage.write() as connection:
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 3000
    finally:
        storage.dispose()


@pytest.mark.parametrize(
    ("url", "queued"),
    [
        ("sqlite:///{folder}/file.sqlite3", True),
        ("sqlite:///{folder}/file.sqlite3?uri=false", True),
        ("sqlite:///file:{folder}/file.sqlite3?mode=rwc&uri=true", False),
        ("sqlite://", False),
        ("sqlite:///:memory:", False),
        ("postgresql+psycopg://user@127.0.0.1:5432/popliteal", False),
    ],
)
def test_only_a_sqlite_file_has_a_queue(url, queued, tmp_path):
    queue = database._writer_queue(url.format(folder=tmp_path))
    assert (queue is not None) is queued
    if queue is not None:
        release(queue)


def test_a_lock_file_that_cannot_be_opened_leaves_writes_to_sqlites_own_lock(sqlite_path, caplog):
    Path(f"{sqlite_path}{SUFFIX}").mkdir()  # a folder where the lock file should be
    storage = _new_storage(sqlite_path)
    try:
        assert _storing(storage)()
    finally:
        storage.dispose()
    assert "will not queue" in caplog.text


def test_a_lock_the_file_system_refuses_leaves_writes_to_sqlites_own_lock(
    storage, monkeypatch, caplog
):
    def refused(_fd, _operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(writers.fcntl, "flock", refused)
    with caplog.at_level(logging.WARNING):
        assert _storing(storage)()
    assert "writers' lock" in caplog.text
    assert os.strerror(errno.ENOLCK) in caplog.text


def test_the_lock_file_is_opened_read_only_so_one_another_user_made_still_serves(storage):
    _storing(storage)()
    fd = storage._writers._fd
    assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
