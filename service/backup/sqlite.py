"""SQLite: a backup is ``VACUUM INTO`` a new file (one read snapshot, while writers go on),
checked with ``PRAGMA integrity_check``; a restore copies it beside the database, checks it and
renames it over the database, once no other connection has the database open."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url

from service.backup.files import fsync, fsync_folder, new_private_file
from service.backup.outcome import BackupError
from service.storage import COUNT_RECORDS

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
# VACUUM INTO came with SQLite 3.27.
SQLITE_VACUUM_INTO = (3, 27, 0)


def database_path(url: str) -> Path:
    parsed = make_url(url)
    if not parsed.database or parsed.database == ":memory:" or parsed.query:
        raise BackupError(
            "DATABASE_URL must name an SQLite file (sqlite:///path/to/file.sqlite3) to back up "
            "or restore it."
        )
    return Path(parsed.database).expanduser()


def _connect(path: Path, mode: str, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection that never creates the file (mode "ro" or "rw")."""
    return sqlite3.connect(
        f"file:{quote(str(path.absolute()))}?mode={mode}",
        uri=True,
        timeout=timeout,
        isolation_level=None,
    )


def backup(database: Path, temporary: Path) -> tuple[int | None, set[str]]:
    if sqlite3.sqlite_version_info < SQLITE_VACUUM_INTO:
        raise BackupError(
            f"SQLite {sqlite3.sqlite_version} is too old for a consistent online backup "
            "(VACUUM INTO needs 3.27 or later)."
        )
    # One read transaction: WAL lets writers go on meanwhile. The copy is compact (no free
    # pages, so nothing of erased records) and is a single file in rollback-journal mode.
    try:
        with contextlib.closing(_connect(database, "rw")) as connection:
            connection.execute("VACUUM INTO ?", (str(temporary),))
    except sqlite3.Error as error:
        raise BackupError(f"Copying {database} failed: {error}.") from None
    return _check(temporary)


def _check(path: Path) -> tuple[int | None, set[str]]:
    """Raise unless the file passes PRAGMA integrity_check; its record count and revisions."""
    try:
        return _read(path)
    except sqlite3.DatabaseError as error:
        raise BackupError(f"The copy is not a sound SQLite database: {error}.") from None


def _read(path: Path) -> tuple[int | None, set[str]]:
    with contextlib.closing(_connect(path, "ro")) as connection:
        problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(
                f"The copy failed SQLite's integrity check: {'; '.join(problems[:5])}"
            )
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        records = connection.execute(COUNT_RECORDS).fetchone()[0] if "records" in tables else None
        revisions = (
            {row[0] for row in connection.execute("SELECT version_num FROM alembic_version")}
            if "alembic_version" in tables
            else set()
        )
    return records, revisions


def _target_holds_data(target: Path) -> bool:
    """Whether ``target`` holds a row in a table other than alembic_version. Raises
    BackupError while another connection, of this process or another, has it open: in WAL
    mode every open connection holds a shared lock, so an exclusive lock cannot be had."""
    if not target.exists():
        return False
    try:
        with contextlib.closing(_connect(target, "rw", timeout=0)) as connection:
            connection.execute("PRAGMA locking_mode=EXCLUSIVE")
            connection.execute("BEGIN EXCLUSIVE")
            tables = [
                row[0]
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' "
                    "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
                )
            ]
            # Names from sqlite_master, quoted as identifiers.
            queries = [f"SELECT 1 FROM {_identifier(name)} LIMIT 1" for name in tables]  # noqa: S608
            holds_data = any(connection.execute(query).fetchone() for query in queries)
            connection.execute("ROLLBACK")
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            raise BackupError(
                f"The database {target} is in use: stop the service (every worker, and any "
                "other program that has it open) before restoring."
            ) from None
        return True  # unreadable: treat it as data, so that only --replace replaces it
    except sqlite3.DatabaseError:
        return True  # not a database, or damaged: the same
    return holds_data


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def restore(target: Path, source: Path, replace: bool) -> None:
    if target.exists() and source.resolve() == target.resolve():
        raise BackupError(f"{source} is the database itself: nothing to restore.")
    if any(Path(f"{source}{suffix}").exists() for suffix in ("-wal", "-journal")):
        raise BackupError(
            f"{source} has a write-ahead log or journal beside it: it is a live database or a "
            "copy of one, not a backup. Make a backup of it with `backup create`."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if _target_holds_data(target) and not replace:
        raise BackupError(
            f"The database {target} holds data, which a restore replaces entirely. Stop the "
            "service, then run the restore again with --replace."
        )
    temporary = new_private_file(target)
    try:
        _prepare_copy(source, temporary)
        _take_owner_and_mode(target, temporary)
        fsync(temporary)
        # Checked again just before: the service may have been started meanwhile.
        _target_holds_data(target)
        # A write-ahead log left beside the old file would be replayed into the new one and
        # corrupt it: remove the old file's side files first, then rename.
        for suffix in SQLITE_SIDE_FILES:
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(temporary, target)
        fsync_folder(target.parent)
    finally:
        temporary.unlink(missing_ok=True)


def _prepare_copy(source: Path, temporary: Path) -> None:
    """The backup copied into ``temporary``, made a single file and checked."""
    shutil.copyfile(source, temporary)
    try:
        with contextlib.closing(_connect(temporary, "rw")) as connection:
            # A single, self-contained file (the service turns WAL on when it opens it).
            connection.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{source} is not a sound SQLite database: {error}.") from None
    _check(temporary)


def _take_owner_and_mode(target: Path, temporary: Path) -> None:
    """The restored file keeps the replaced file's mode and owner (or, new, the folder's
    owner), so that the service's user can still open it when root ran the restore."""
    if target.exists():
        shutil.copymode(target, temporary)
        model = target.stat()
    else:
        model = target.parent.stat()
    if (model.st_uid, model.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):
            os.chown(temporary, model.st_uid, model.st_gid)
