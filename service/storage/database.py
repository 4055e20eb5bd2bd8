"""The engine, its connection settings per database, migrations and health."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine, make_url

from service.storage.cds import CdsStore
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
from service.storage.records import RecordStore

# What a failure means is service.storage.errors'; its names were first defined here, and
# code that imports them from here still finds them.
__all__ = [
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


SQLITE_BUSY_TIMEOUT_S = 30
SCRUB_WAIT_MS = 2000


def _json_dumps(value) -> str:
    return orjson.dumps(value).decode()


def create_storage_engine(url: str, statement_timeout_ms: int | None = None) -> Engine:
    parsed = make_url(url)
    options: dict = {
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
        # Errors never quote the values they were given: those values are health data and
        # error messages end up in logs.
        "hide_parameters": True,
    }
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Several gunicorn workers share the file: wait for the write lock rather than fail.
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        engine = sa.create_engine(parsed, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # Deadlines on every wait on the network, so that a database that stops answering
        # (a partition: packets dropped, nothing refused) costs a request seconds and a 503,
        # never a worker held until gunicorn kills it (its timeout is 30 s):
        # - connect_timeout: a new connection gets no answer within 3 s (libpq's floor is 2);
        # - tcp_user_timeout (Linux, milliseconds): data sent and not acknowledged for 3 s
        #   ends the connection. On a LAN that is several lost retransmissions, never a slow
        #   server: its kernel acknowledges at once, however long the query takes;
        # - keepalives: a connection waiting on an answer, or idle in the pool, is probed
        #   after 2 s of silence; unanswered, it ends at the next probe, 1 s later (Linux: on
        #   tcp_user_timeout; elsewhere after keepalives_count probes). A long query is fine:
        #   the server's kernel answers probes while the query runs. A pooled connection the
        #   partition broke is so found dead before it is used.
        # A request then spends about 3 s per database round trip it tries (a few at most)
        # before its 503; the statement timeout below cannot help here, it is server-side.
        options["connect_args"] = {
            "connect_timeout": 3,
            "tcp_user_timeout": 3000,
            "keepalives": 1,
            "keepalives_idle": 2,
            "keepalives_interval": 1,
            "keepalives_count": 2,
        }
        # The same deadlines on the server's end of the connection (these settings are the
        # session's own; ignored over a Unix socket): a session whose client went silent ends
        # within seconds. Otherwise a transaction cut off before its COMMIT keeps its locks (an
        # Idempotency-Key's among them, which every retry of that key waits on) until the
        # server's keepalives notice, two hours later by default. (idle_in_transaction_session_
        # timeout would not do: PostgreSQL 15 leaves it unarmed after psycopg's pipelined
        # executemany, which stores an assessment and its plan.)
        server_settings = [
            "-c tcp_keepalives_idle=2",
            "-c tcp_keepalives_interval=1",
            "-c tcp_keepalives_count=2",
            "-c tcp_user_timeout=3000",
        ]
        if statement_timeout_ms:
            # A stuck query is cancelled server-side and the request gets a 503, instead of
            # holding a worker until gunicorn kills it.
            server_settings.append(f"-c statement_timeout={statement_timeout_ms}")
        options["connect_args"]["options"] = " ".join(server_settings)
        options["pool_timeout"] = 5
    engine = sa.create_engine(parsed, **options)
    _ping_idle_connections(engine)
    return engine


# A pooled connection idle for longer than this is checked with a round trip before use.
IDLE_BEFORE_PING_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """Replace a dead pooled connection before a request uses it.

    Like pool_pre_ping, so that the first request after the database restarts succeeds, but
    only for connections that sat idle: under load a connection is reused within milliseconds
    and a ping would cost a round trip per request. A connection that dies while in use fails
    that request (a 503) and the pool is emptied of its siblings at once.
    """

    @event.listens_for(engine, "checkin")
    def remember_when_idle(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, record, _proxy) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except Exception as error:
            # The pool discards this connection and checks out (or opens) another.
            raise exc.DisconnectionError(str(error)) from error


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while one worker writes; synchronous stays FULL (the default), so
    # a committed record survives a power cut.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted content is overwritten with zeros, so an erased record leaves nothing in the
    # database file's free pages (some SQLite builds do this by default; not all).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


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
        self.engine = create_storage_engine(url, statement_timeout_ms)
        # Until when readiness says "full" (time.monotonic()); set by any write that failed so.
        self._full_until = 0.0
        # The readiness problem last logged, so that a probe every few seconds logs it once.
        self._logged_problem: str | None = None
        event.listen(self.engine, "handle_error", self._notice_error)
        self.keys = ApiKeyStore(self)
        self.records = RecordStore(self)
        self.cds = CdsStore(self)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    def scrub_after_erasure(self) -> None:
        """After an erasure has committed: on SQLite, copy the write-ahead log into the
        database (whose freed pages secure_delete has zeroed) and truncate it, so the erased
        rows do not stay in the log file. PostgreSQL keeps dead row versions until VACUUM
        (see the README's Erasure section); nothing is done for it here."""
        if self.engine.dialect.name != "sqlite":
            return
        # A TRUNCATE checkpoint waits for readers (a long listing, a backup) and holds writers
        # off meanwhile: wait briefly, not the connection's 30 s. If readers outlast it, the
        # erased rows stay in the log until the next truncating checkpoint (the next erasure).
        with self.engine.connect() as connection:
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
        with self.reading() as connection:
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
