"""A database that stops answering (packets dropped, nothing refused or reset) fails requests
within seconds, and a transaction it cut off leaves no lock behind, because of the deadlines
the engine sets on both ends of its connections.

The partition is real: the connections run through a veth pair into a network namespace
(bench/partition.py), and the test takes the link down. Making one needs root; without it
these tests are skipped locally and fail in CI (CI=true), like those that need PostgreSQL.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from bench.partition import Partition, unavailable
from service.storage import Storage, StorageUnavailable
from service.storage.database import translate_unavailable

pytestmark = pytest.mark.postgres

# connect_timeout and tcp_user_timeout are 3 s, keepalives end a silent wait within about 3 s:
# every failure below must come well before this (a hang would be tens of seconds or more).
DEADLINE_S = 6.0


@pytest.fixture
def partition(postgres_database):
    """A link to the test server that the test can cut; the database's URL through it."""
    reason = unavailable()
    if reason is not None:
        message = f"no network partition can be made here: {reason}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; in CI these tests are required")
        pytest.skip(message)
    direct = sa.make_url(postgres_database)
    with Partition((direct.host or "127.0.0.1", direct.port or 5432)) as link:
        yield link, direct.set(host=link.host, port=link.port).render_as_string(False)


def in_background(call) -> Callable[[float], tuple[BaseException | None, float]]:
    """Starts ``call`` in a thread of its own. The function returned waits for it, ``limit``
    seconds at most: what it raised (None: nothing) and how long it took, or a failure if it
    is still waiting (left behind in its thread rather than hang the tests)."""
    outcome: list = []

    def run() -> None:
        started = time.monotonic()
        try:
            call()
        except Exception as error:
            outcome.append((error, time.monotonic() - started))
        else:
            outcome.append((None, time.monotonic() - started))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def wait(limit: float = 2 * DEADLINE_S) -> tuple[BaseException | None, float]:
        thread.join(limit)
        if not outcome:
            pytest.fail(f"still waiting on the database after {limit} s")
        return outcome[0]

    return wait


def test_a_partition_fails_queries_within_seconds_and_the_pool_recovers(partition):
    link, url = partition
    storage = Storage(url, statement_timeout_ms=5000)

    @translate_unavailable
    def select_one() -> int:
        with storage.autocommit() as connection:
            return connection.execute(sa.text("SELECT 1")).scalar_one()

    @translate_unavailable
    def sleep(seconds: float) -> None:
        with storage.autocommit() as connection:
            connection.execute(sa.text("SELECT pg_sleep(:s)"), {"s": seconds})

    try:
        # Two connections in the pool, both used just now (not pinged when next checked out).
        with storage.autocommit() as first, storage.autocommit() as second:
            for connection in (first, second):
                assert connection.execute(sa.text("SELECT 1")).scalar_one() == 1
        # A query already sent, its answer lost: only the keepalives can end this wait.
        in_flight = in_background(lambda: sleep(2))
        time.sleep(0.5)
        link.cut()
        # A pooled connection's query: sent, never acknowledged.
        error, seconds = in_background(select_one)()
        assert isinstance(error, StorageUnavailable), error
        assert seconds < DEADLINE_S
        # A new connection: no answer to it at all.
        storage.engine.dispose()
        error, seconds = in_background(select_one)()
        assert isinstance(error, StorageUnavailable), error
        assert seconds < DEADLINE_S
        error, seconds = in_flight()
        assert isinstance(error, StorageUnavailable), error
        assert seconds < 0.5 + DEADLINE_S

        link.restore()
        assert select_one() == 1
    finally:
        storage.dispose()


def test_a_transaction_cut_off_before_its_commit_lets_go_of_its_locks(partition, postgres_database):
    # The engine asks the server to apply the same deadlines to its end of the connection, so
    # the server ends the session of a client gone silent. (Here the forwarder's socket on the
    # link stands for the server's and takes those settings: bench/partition.py.)
    link, url = partition
    storage = Storage(url, statement_timeout_ms=5000)
    direct = sa.create_engine(postgres_database, isolation_level="AUTOCOMMIT")
    lock = 0x706F706C  # any number: an advisory lock no other test takes
    try:
        cut_off = storage.transaction_engine.connect()
        transaction = cut_off.begin()
        backend = cut_off.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        # Several parameter sets at once (an executemany): psycopg pipelines them, after
        # which PostgreSQL's idle_in_transaction_session_timeout is not armed. Only the
        # server's keepalives can end this session.
        cut_off.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), [{"k": lock}, {"k": lock + 1}])
        link.cut()  # the COMMIT never arrives: the server waits on an open transaction
        cut_at = time.monotonic()
        error, _ = in_background(transaction.commit)()
        assert isinstance(error, sa.exc.OperationalError), error
        cut_off.close()  # not before: closing waits on a commit still under way
        with direct.connect() as connection:
            taken = False
            while not taken and time.monotonic() < cut_at + DEADLINE_S:
                taken = connection.execute(
                    sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": lock}
                ).scalar_one()
                time.sleep(0.1)
            assert taken, "the cut-off transaction still holds its lock"
            connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lock})
            gone = connection.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": backend}
            ).scalar_one()
            assert gone == 0
    finally:
        storage.dispose()
        direct.dispose()
