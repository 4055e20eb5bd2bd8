"""The Storage: its engine (made by ``service.storage.engine``), transactions, migrations and
health."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from service.storage.cds import CdsStore
from service.storage.engine import (
    IDLE_BEFORE_PING_SECONDS,
    SQLITE_BUSY_TIMEOUT_S,
    create_storage_engine,
)
from service.storage.errors import (
    UNAVAILABLE_ERRORS,
    SchemaBehind,
    StorageFull,
    StorageMisconfigured,
    StorageUnavailable,
    diagnose,
    storage_error,
    translate_unavailable,
)
from service.storage.keys import ApiKeyStore
from service.storage.packing import check_dictionaries
from service.storage.records import RecordStore
from service.storage.writers import WriterQueue, queue_for, release

# What a failure means is service.storage.errors', and the engine is service.storage.engine's;
# their names were first defined here, and code that imports them from here still finds them.
__all__ = [
    "IDLE_BEFORE_PING_SECONDS",
    "UNAVAILABLE_ERRORS",
    "SchemaBehind",
    "Storage",
    "StorageFull",
    "StorageMisconfigured",
    "StorageUnavailable",
    "alembic_config",
    "create_storage_engine",
    "diagnose",
    "storage_error",
    "translate_unavailable",
]

log = logging.getLogger(__name__)


SCRUB_WAIT_MS = 2000


# Where alembic keeps the database's revision (its default table).
ALEMBIC_VERSION = sa.table("alembic_version", sa.column("version_num", sa.String))


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option(
        "script_location", str(resources.files("service.storage") / "migrations")
    )
    if engine is not None:
        config.attributes["engine"] = engine
    return config


# How long readiness reports a full disk after a write failed for want of space. A successful
# write does not clear it early: space freed by a delete can be taken again at once.
FULL_REMEMBERED_SECONDS = 30.0


class Storage:
    """The database behind the service. Connections are opened lazily, per process."""

    def __init__(self, url: str, statement_timeout_ms: int | None = None) -> None:
        self.url = url
        # Stored answers cannot be read or written without their dictionaries: a missing or
        # altered one stops the service (or command) here, naming the file.
        check_dictionaries()
        # Most work is a read or a one-statement write: on this engine every statement commits
        # on its own, so it costs one round trip, not BEGIN, the statement and ROLLBACK or
        # COMMIT. Its pool's connections stay in autocommit: switching a pooled connection in
        # and out of it per use cost some 150 us (a query per use on SQLite).
        self.engine = create_storage_engine(url, statement_timeout_ms, autocommit=True)
        # The few multi-statement writes (erasure, keys, CDS token uses) get real transactions.
        self.transaction_engine = create_storage_engine(url, statement_timeout_ms)
        # On a SQLite file, the service's writers queue on a file lock (service.storage.writers).
        self._writers = _writer_queue(url)
        # Until when readiness says "full" (time.monotonic()); set by any write that failed so.
        self._full_until = 0.0
        # The readiness problem last logged, so that a probe every few seconds logs it once.
        self._logged_problem: str | None = None
        for engine in (self.engine, self.transaction_engine):
            event.listen(engine, "handle_error", self._notice_error)
        self.keys = ApiKeyStore(self)
        self.records = RecordStore(self)
        self.cds = CdsStore(self)

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        return self._in_turn(self.transaction_engine.begin)

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    def write(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection for one statement that writes and commits on its own."""
        return self._in_turn(self.engine.connect)

    @contextlib.contextmanager
    def _in_turn(
        self, connect: Callable[[], contextlib.AbstractContextManager[Connection]]
    ) -> Iterator[Connection]:
        """A connection from ``connect``, on a SQLite file once it is this writer's turn."""
        if self._writers is None:  # no queue (PostgreSQL): nothing else to do
            with connect() as connection:
                yield connection
            return
        with (
            self._writers.turn() as waited,
            connect() as connection,
            _busy_timeout_less(connection, waited),
        ):
            yield connection

    def _queued(self) -> contextlib.AbstractContextManager[float]:
        return contextlib.nullcontext(0.0) if self._writers is None else self._writers.turn()

    def scrub_after_erasure(self) -> None:
        """After an erasure has committed: on SQLite, copy the write-ahead log into the
        database (whose freed pages secure_delete has zeroed) and truncate it, so the erased
        rows do not stay in the log file. PostgreSQL keeps dead row versions until VACUUM
        (see Records in docs/operations.md); nothing is done for it here."""
        if self.engine.dialect.name != "sqlite":
            return
        # A TRUNCATE checkpoint waits for readers (a long listing, a backup) and holds writers
        # off meanwhile: wait briefly, not the connection's 30 s. If readers outlast it, the
        # erased rows stay in the log until the next truncating checkpoint (the next erasure).
        # In the writers' queue: the checkpoint needs SQLite's write lock, which queued writers
        # would otherwise pass from one to the next with no gap for it to take.
        with self._queued(), self.engine.connect() as connection:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={SCRUB_WAIT_MS}")
            try:
                busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            finally:
                connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        if busy:
            log.warning(
                "after an erasure the SQLite write-ahead log could not be truncated (readers "
                "held it); it will be at the next erasure"
            )

    def upgrade(self, revision: str = "head") -> None:
        with self._migration_engine() as engine:
            command.upgrade(alembic_config(engine), revision)

    def downgrade(self, revision: str) -> None:
        with self._migration_engine() as engine:
            command.downgrade(alembic_config(engine), revision)

    @contextlib.contextmanager
    def _migration_engine(self) -> Iterator[Engine]:
        """Migrations run without the request path's statement timeout: a long DDL or backfill
        must finish, not be cancelled half-way by a limit meant for requests."""
        engine = create_storage_engine(self.url)
        try:
            yield engine
        finally:
            engine.dispose()

    def expected_revisions(self) -> set[str]:
        return set(ScriptDirectory.from_config(alembic_config()).get_heads())

    @translate_unavailable
    def current_revisions(self) -> set[str]:
        # Read directly rather than through alembic's MigrationContext, which logs two INFO
        # lines each time it is made: once per readiness probe.
        with self.autocommit() as connection:
            if not sa.inspect(connection).has_table(ALEMBIC_VERSION.name):
                return set()
            return set(connection.execute(sa.select(ALEMBIC_VERSION.c.version_num)).scalars())

    def readiness(self) -> dict[str, str]:
        """{"database": "ok" | "unreachable" | "misconfigured" | "full",
        "migrations": "current" | "behind" | "unknown"}.

        "misconfigured": DATABASE_URL names a database or credentials the server refuses (logged
        as an error, once); "full": a write failed for want of space within the last
        FULL_REMEMBERED_SECONDS."""
        try:
            current = self.current_revisions()
        except StorageMisconfigured as error:
            self._log_problem(f"{self.describe()} is misconfigured: {error}")
            return {"database": "misconfigured", "migrations": "unknown"}
        except StorageUnavailable:
            self._logged_problem = None
            return {"database": "unreachable", "migrations": "unknown"}
        self._logged_problem = None
        expected = self.expected_revisions()
        database = "full" if time.monotonic() < self._full_until else "ok"
        return {"database": database, "migrations": "current" if current == expected else "behind"}

    def describe(self) -> str:
        """Which database DATABASE_URL names, for the logs: never its password."""
        url = make_url(self.url)
        if url.get_backend_name() == "sqlite":
            return f"the SQLite file {url.database or ':memory:'!r}"
        where = f"{url.host or 'localhost'}:{url.port or 5432}"
        return f"DATABASE_URL's database {url.database!r} on {where} as user {url.username!r}"

    def _log_problem(self, message: str) -> None:
        if message != self._logged_problem:
            log.error("database not ready: %s", message)
            self._logged_problem = message

    def _notice_error(self, context) -> None:
        """Every database error on this engine: a full disk is remembered for readiness."""
        if diagnose(context.original_exception) is StorageFull:
            self._full_until = time.monotonic() + FULL_REMEMBERED_SECONDS

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()
        self.transaction_engine.dispose()
        if self._writers is not None:
            release(self._writers)
            self._writers = None


def _writer_queue(url: str) -> WriterQueue | None:
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if sa.util.asbool(parsed.query.get("uri", False)):  # a URI filename: not a plain path
        return None
    return queue_for(database)  # made absolute, as the driver opens it


# A writer that queued longer than this has its SQLite wait shortened by as much.
LONG_QUEUE_SECONDS = 1.0


@contextlib.contextmanager
def _busy_timeout_less(connection: Connection, waited: float) -> Iterator[None]:
    """SQLite's own wait for its lock, shortened by the time spent in the queue, so that a
    write waits about SQLITE_BUSY_TIMEOUT_S in all before its 503, not that twice over (the
    writer ahead of it may itself have waited that long for a writer outside the queue)."""
    if waited < LONG_QUEUE_SECONDS:
        yield
        return
    left_ms = max(0, int((SQLITE_BUSY_TIMEOUT_S - waited) * 1000))
    connection.exec_driver_sql(f"PRAGMA busy_timeout={left_ms}")
    try:
        yield
    finally:
        try:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        except Exception:
            # A connection the block's error left unusable: the pool drops it, rather than
            # keep it with a short wait (and the block's own error is the one raised).
            connection.invalidate()
