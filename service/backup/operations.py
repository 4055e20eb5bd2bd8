"""Create and restore, whichever the database: the kind of database (DATABASE_URL) and of
backup file checked, the SQLite or PostgreSQL way taken, and what resulted reported."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from service.backup import postgres, sqlite
from service.backup.files import check_new_file, fsync, new_private_file, publish
from service.backup.outcome import BackupError, Outcome, count_records, expected_revisions
from service.storage import Storage

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}  # after "a"


def store_kind(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups cover SQLite and PostgreSQL, not {backend!r} (DATABASE_URL).")
    return backend


def create_backup(url: str, destination: str | os.PathLike) -> Outcome:
    """Back up the database at ``url`` into the new file ``destination``, while it is in use."""
    kind = store_kind(url)
    database = sqlite.database_path(url) if kind == "sqlite" else None
    if database is not None and not database.is_file():
        raise BackupError(f"No SQLite database at {database}.")
    destination = Path(destination).expanduser()
    check_new_file(destination)
    started = time.monotonic()
    temporary = new_private_file(destination)
    try:
        if database is not None:
            records, revisions = sqlite.backup(database, temporary)
        else:
            records, revisions = postgres.backup(url, temporary)
        fsync(temporary)
        publish(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
    return Outcome(
        destination,
        kind,
        records,
        frozenset(revisions),
        frozenset(expected_revisions()),
        destination.stat().st_size,
        time.monotonic() - started,
    )


def restore_backup(url: str, source: str | os.PathLike, *, replace: bool = False) -> Outcome:
    """Replace the database at ``url`` with the backup ``source``. The service must be stopped.

    Refused when the database is in use, or holds data and ``replace`` is false. Afterwards
    the outcome's ``migrations`` says whether this code can serve the database as it is."""
    kind = store_kind(url)
    source = Path(source).expanduser()
    _check_backup_file(source, kind)
    started = time.monotonic()
    if kind == "sqlite":
        sqlite.restore(sqlite.database_path(url), source, replace)
    else:
        postgres.restore(url, source, replace)
    storage = Storage(url)
    try:
        revisions = storage.current_revisions()
        with storage.autocommit() as connection:
            records = count_records(connection)
    finally:
        storage.dispose()
    return Outcome(
        source,
        kind,
        records,
        frozenset(revisions),
        frozenset(expected_revisions()),
        source.stat().st_size,
        time.monotonic() - started,
    )


def _check_backup_file(source: Path, kind: str) -> None:
    """Raise unless ``source`` is a backup of a ``kind`` database."""
    if not source.is_file():
        raise BackupError(f"No backup file at {source}.")
    found = _backup_kind(source)
    if found is None:
        raise BackupError(
            f"{source} is not a backup made by `backup create` (neither an SQLite database "
            "nor a pg_dump custom-format archive)."
        )
    if found != kind:
        raise BackupError(
            f"The backup {source} is of a {_NAMES[found]} database, but DATABASE_URL names a "
            f"{_NAMES[kind]} one: restore a backup into a database of its own kind."
        )


def _backup_kind(path: Path) -> str | None:
    with path.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    if head == SQLITE_MAGIC:
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    return None
