"""The engine, its connection settings per database, migrations and health."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import ParamSpec, TypeVar

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine, make_url

P = ParamSpec("P")
T = TypeVar("T")


class StorageUnavailable(Exception):
    """The database cannot be reached (down, restarting, refusing connections, timing out)."""


# Errors that say the database is unreachable or overloaded, as opposed to a fault in a query.
UNAVAILABLE_ERRORS = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)


def translate_unavailable(function: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except UNAVAILABLE_ERRORS as error:
            raise StorageUnavailable(type(error).__name__) from error

    return wrapper


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
        options["connect_args"] = {"timeout": 30}
        engine = sa.create_engine(parsed, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # Fail fast when the server is away: the request gets a 503 in seconds, not a hang.
        options["connect_args"] = {"connect_timeout": 3}
        if statement_timeout_ms:
            # A stuck query is cancelled server-side and the request gets a 503, instead of
            # holding a worker until gunicorn kills it.
            options["connect_args"]["options"] = f"-c statement_timeout={statement_timeout_ms}"
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


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option(
        "script_location", str(resources.files("service.storage") / "migrations")
    )
    if engine is not None:
        config.attributes["engine"] = engine
    return config


class Storage:
    """The database behind the service. Connections are opened lazily, per process."""

    def __init__(self, url: str, statement_timeout_ms: int | None = None) -> None:
        self.url = url
        self.engine = create_storage_engine(url, statement_timeout_ms)
        # Imported here to keep the module graph flat: both stores take this Storage.
        from service.storage.cds import CdsStore
        from service.storage.keys import ApiKeyStore
        from service.storage.records import RecordStore

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
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

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
        with self.reading() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())

    def readiness(self) -> dict[str, str]:
        """{"database": "ok" | "unreachable", "migrations": "current" | "behind" | "unknown"}."""
        try:
            current = self.current_revisions()
        except StorageUnavailable:
            return {"database": "unreachable", "migrations": "unknown"}
        expected = self.expected_revisions()
        return {"database": "ok", "migrations": "current" if current == expected else "behind"}

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()
