"""The writers of a SQLite file queue on a lock beside it (service.storage.writers): a writer
waits for the one ahead of it and goes the moment it is done; processes forked from one
Storage queue against each other; SQLite's own lock still decides, and a long wait in the queue
shortens the wait for it."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from rules import load_library
from service.evaluation import assessment_of
from service.examples import SELF_CARE_TECHNIQUE
from service.record_creation import assessment_records
from service.storage import Storage, StorageUnavailable, database, engine
from service.storage.writers import SUFFIX, WriterQueue

# Long enough for a blocked writer to have written, had it not been waiting.
SETTLE_SECONDS = 0.3


@pytest.fixture
def sqlite_path(tmp_path) -> Path:
    return tmp_path / "writers.sqlite3"


@pytest.fixture
def storage(sqlite_path) -> Storage:
    store = Storage(f"sqlite:///{sqlite_path}")
    store.upgrade()
    store.keys.create("writers", label="test")
    yield store
    store.dispose()


def _store_one(storage: Storage) -> str:
    library = load_library()
    sent, _, assessment = assessment_of(library.get, dict(SELF_CARE_TECHNIQUE))
    tenant_id = storage.keys.tenant_id("writers")
    stored, _ = storage.records.create(
        tenant_id=tenant_id,
        api_key_id=None,
        request_id="writers-test",
        new_records=assessment_records(sent, assessment, None),
    )
    return stored[0].id


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


def test_a_write_waits_for_the_writer_ahead_and_goes_as_soon_as_it_is_done(storage, sqlite_path):
    fd = _held_elsewhere(sqlite_path)
    thread, outcome = _in_thread(lambda: _store_one(storage))
    time.sleep(SETTLE_SECONDS)
    assert outcome == {}, "the write went ahead while another writer held the queue"
    released = time.monotonic()
    os.close(fd)
    thread.join(10)
    assert "error" not in outcome
    # Woken by the kernel, not by a retry timer: well under SQLite's busy steps (1-100 ms) and
    # the write itself.
    assert outcome["at"] - released < 0.2
    assert storage.records.get(storage.keys.tenant_id("writers"), "assessment", outcome["value"])


def test_reads_do_not_queue(storage, sqlite_path):
    record_id = _store_one(storage)
    fd = _held_elsewhere(sqlite_path)
    try:
        assert storage.records.get(storage.keys.tenant_id("writers"), "assessment", record_id)
    finally:
        os.close(fd)


def test_threads_of_one_process_queue_on_each_other(storage):
    entered = threading.Event()
    leave = threading.Event()

    def first() -> None:
        with storage.write():
            entered.set()
            leave.wait(10)

    holder = threading.Thread(target=first, daemon=True)
    holder.start()
    assert entered.wait(10)
    thread, outcome = _in_thread(lambda: _store_one(storage))
    time.sleep(SETTLE_SECONDS)
    assert outcome == {}, "a second thread wrote while the first held the queue"
    leave.set()
    thread.join(10)
    holder.join(10)
    assert "value" in outcome


def _hold_in_child(storage: Storage, holding, release) -> None:
    with storage.write():
        holding.set()
        release.wait(10)


def test_processes_forked_from_one_storage_queue_on_each_other(storage):
    _store_one(storage)  # the parent has opened its lock file before the fork
    context = multiprocessing.get_context("fork")
    holding, release = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(storage, holding, release))
    child.start()
    try:
        assert holding.wait(10)
        thread, outcome = _in_thread(lambda: _store_one(storage))
        time.sleep(SETTLE_SECONDS)
        assert outcome == {}, "the parent wrote while its forked child held the queue"
        release.set()
        thread.join(10)
        assert "value" in outcome
    finally:
        release.set()
        child.join(10)
    assert child.exitcode == 0


def test_a_write_inside_a_write_of_the_same_thread_keeps_the_lock_until_the_outer_one_ends(
    sqlite_path,
):
    queue = WriterQueue(str(sqlite_path))
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
        queue.close()


def test_a_long_wait_in_the_queue_shortens_the_wait_for_sqlites_own_lock(sqlite_path, monkeypatch):
    # One second stands for the 30 s: a writer that queued longer than that, behind a writer
    # stuck on a lock held outside the queue, fails at once instead of waiting it over again.
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_S", 1)
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 1)
    monkeypatch.setattr(database, "LONG_QUEUE_SECONDS", 0.5)
    storage = Storage(f"sqlite:///{sqlite_path}")
    storage.upgrade()
    storage.keys.create("writers", label="test")
    outside = sqlite3.connect(sqlite_path, isolation_level=None)
    with closing(outside):
        outside.execute("BEGIN IMMEDIATE")  # a writer outside the queue holds SQLite's lock
        fd = _held_elsewhere(sqlite_path)
        thread, outcome = _in_thread(lambda: _store_one(storage))
        time.sleep(1.2)
        released = time.monotonic()
        os.close(fd)
        thread.join(10)
        outside.execute("ROLLBACK")
    assert isinstance(outcome.get("error"), StorageUnavailable)
    assert outcome["at"] - released < 0.5, "the write waited SQLite's whole timeout again"
    _store_one(storage)  # and the connection's own timeout is back for the next write
    storage.dispose()


@pytest.mark.parametrize(
    ("url", "queued"),
    [
        ("sqlite:///{folder}/file.sqlite3", True),
        ("sqlite://", False),
        ("sqlite:///:memory:", False),
        ("postgresql+psycopg://user@127.0.0.1:5432/popliteal", False),
    ],
)
def test_only_a_sqlite_file_has_a_queue(url, queued, tmp_path):
    assert (database._writer_queue(url.format(folder=tmp_path)) is not None) is queued


def test_a_lock_file_that_cannot_be_opened_leaves_writes_to_sqlites_own_lock(sqlite_path, caplog):
    Path(f"{sqlite_path}{SUFFIX}").mkdir()  # a folder where the lock file should be
    storage = Storage(f"sqlite:///{sqlite_path}")
    try:
        storage.upgrade()
        storage.keys.create("writers", label="test")
        assert _store_one(storage)
    finally:
        storage.dispose()
    assert "will not queue" in caplog.text


def test_a_lock_file_another_user_made_read_only_still_queues(sqlite_path):
    lock = Path(f"{sqlite_path}{SUFFIX}")
    lock.touch(mode=0o444)
    queue = WriterQueue(str(sqlite_path))
    probe = os.open(lock, os.O_RDONLY)
    try:
        with queue.turn(), pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(probe)
        queue.close()
