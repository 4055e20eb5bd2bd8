"""The engine: its connection settings per database, and the checks on its pooled connections."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine, make_url

SQLITE_BUSY_TIMEOUT_S = 30


def _json_dumps(value) -> str:
    return orjson.dumps(value).decode()


def create_storage_engine(
    url: str, statement_timeout_ms: int | None = None, *, autocommit: bool = False
) -> Engine:
    """An engine for DATABASE_URL; with ``autocommit``, every statement commits on its own."""
    parsed = make_url(url)
    options: dict = {
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
        # Errors never quote the values they were given: those values are health data and
        # error messages end up in logs.
        "hide_parameters": True,
    }
    if autocommit:
        options["isolation_level"] = "AUTOCOMMIT"
    if parsed.get_backend_name() == "sqlite":
        options.update(_sqlite_options(parsed))
        engine = sa.create_engine(parsed, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        options.update(_postgresql_options(statement_timeout_ms))
    engine = sa.create_engine(parsed, **options)
    _ping_idle_connections(engine)
    return engine


def _sqlite_options(parsed: URL) -> dict:
    database = parsed.database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # Several gunicorn workers share the file: wait for the write lock rather than fail.
    return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}


def _postgresql_options(statement_timeout_ms: int | None) -> dict:
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
    connect_args: dict[str, int | str] = {
        "connect_timeout": 3,
        "tcp_user_timeout": 3000,
        "keepalives": 1,
        "keepalives_idle": 2,
        "keepalives_interval": 1,
        "keepalives_count": 2,
    }
    connect_args["options"] = " ".join(_postgresql_server_settings(statement_timeout_ms))
    return {"connect_args": connect_args, "pool_timeout": 5}


def _postgresql_server_settings(statement_timeout_ms: int | None) -> list[str]:
    # The same deadlines on the server's end of the connection (these settings are the
    # session's own; ignored over a Unix socket): a session whose client went silent ends
    # within seconds. Otherwise a transaction cut off before its COMMIT keeps its locks (an
    # Idempotency-Key's among them, which every retry of that key waits on) until the
    # server's keepalives notice, two hours later by default. (idle_in_transaction_session_
    # timeout would not do: PostgreSQL 15 leaves it unarmed after psycopg's pipelined
    # executemany.)
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
    return server_settings


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
            # Outside autocommit the ping began a transaction: end it, so that the connection
            # goes to its user idle (an autocommit user could not even switch to autocommit).
            dbapi_connection.rollback()
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
