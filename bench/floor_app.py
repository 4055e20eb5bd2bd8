"""The floor of a stored request: bare Flask plus the cheapest durable write there is.

Parses the same JSON body as bench/bare_app.py, then stores the body's bytes under a new id
with one INSERT in autocommit on the driver's own connection (psycopg; or sqlite3 with the
service's journal and synchronous settings, WAL and FULL, its writers queued on a flock as the
service's are), and answers 201 once it is committed.
No evaluation, no compression, no SQLAlchemy, no second row, no index but the primary key: what
any service that answers only after a durable write pays at least, on this machine. A stored
assessment's throughput over this one's says how much of the gap to bare Flask is the write
itself and how much is the service's own work around it.

FLOOR_DATABASE names the database: ``postgresql://...`` or ``sqlite:///<path>``; the table
``floor_writes (id text primary key, body bytea/blob)`` is made by the benchmark beforehand.
"""

import contextlib
import fcntl
import os
import sqlite3
import uuid

from flask import Flask, request

app = Flask(__name__)
DATABASE = os.environ["FLOOR_DATABASE"]
SQLITE_PREFIX = "sqlite:///"
_connection = None  # one per worker, opened on its first request (after gunicorn's fork)


@contextlib.contextmanager
def _queued(lock_file: int):
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock_file, fcntl.LOCK_UN)


def _connect():
    """(connection, INSERT, the context a write runs in)."""
    if DATABASE.startswith(SQLITE_PREFIX):
        path = DATABASE.removeprefix(SQLITE_PREFIX)
        connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        lock_file = os.open(path + "-writers", os.O_RDONLY | os.O_CREAT, 0o644)
        insert = "INSERT INTO floor_writes (id, body) VALUES (?, ?)"
        return connection, insert, lambda: _queued(lock_file)
    import psycopg

    connection = psycopg.connect(DATABASE, autocommit=True)
    insert = "INSERT INTO floor_writes (id, body) VALUES (%s, %s)"
    return connection, insert, contextlib.nullcontext


@app.post("/v1/assess")
def assess():
    global _connection
    body = request.get_data()
    report = request.get_json()
    if _connection is None:
        _connection = _connect()
    connection, insert, turn = _connection
    with turn():
        connection.execute(insert, (uuid.uuid4().hex, body))
    return {"received": len(report), "level": "self_care"}, 201


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
