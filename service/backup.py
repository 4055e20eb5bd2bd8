"""Backups of the service's database, consistent while the service writes, and their restore.

SQLite: ``VACUUM INTO`` copies one read snapshot into a new, compact file. It is a read
transaction, so in WAL mode writers go on while it runs, and it finishes however busy they are
(the step-wise online backup, as ``sqlite3 .backup`` does it, restarts whenever another
connection writes and may never finish; a file copy misses what is still in the write-ahead
log). PostgreSQL: ``pg_dump --format=custom`` from an exported snapshot, in which the records
are counted too; ``pg_restore`` in one transaction.

A backup is written beside its destination, checked (``PRAGMA integrity_check``; the archive's
table of contents), flushed to disk, and only then given its name, which must be new. A restore
needs the service stopped: it refuses while another connection uses the database, and refuses a
database that holds data unless told to replace it.

No Flask here: ``service.cli`` calls these and prints what they return.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, make_url

from service.storage import Storage, alembic_config

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
# VACUUM INTO came with SQLite 3.27.
SQLITE_VACUUM_INTO = (3, 27, 0)
# Where Debian and Ubuntu install each PostgreSQL version's programs.
POSTGRES_PROGRAM_FOLDERS = "/usr/lib/postgresql/*/bin"
# SQLAlchemy URL query parameters that libpq also reads from the environment.
LIBPQ_QUERY_VARIABLES = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "user": "PGUSER",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "gssencmode": "PGGSSENCMODE",
    "channel_binding": "PGCHANNELBINDING",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
    "service": "PGSERVICE",
    "passfile": "PGPASSFILE",
}
# Inherited variables that would say where to connect: the URL alone decides that.
LIBPQ_CONNECTION_VARIABLES = frozenset(
    ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE")
)


class BackupError(Exception):
    """A backup or restore refused or failed. The message says why and what to do; nothing
    was written under the destination's name (a backup) or into the database (a restore)."""


@dataclass(frozen=True)
class Outcome:
    """What a backup holds, or what a restored database now holds."""

    path: Path  # the backup file
    store: str  # "sqlite" or "postgresql"
    records: int | None  # rows of the records table (None: the database has none)
    revisions: frozenset[str]  # the migrations it is at
    expected: frozenset[str]  # the migrations this code expects
    size: int  # bytes of the backup file
    seconds: float

    @property
    def migrations(self) -> str:
        """One of: current; empty (no migration applied); behind (db upgrade brings it to this
        code); unknown (a revision this code does not know: a newer release made it)."""
        if self.revisions == self.expected:
            return "current"
        if not self.revisions:
            return "empty"
        script = ScriptDirectory.from_config(alembic_config())
        try:
            for revision in self.revisions:
                script.get_revision(revision)
        except CommandError:
            return "unknown"
        return "behind"


def store_kind(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups cover SQLite and PostgreSQL, not {backend!r} (DATABASE_URL).")
    return backend


def create_backup(url: str, destination: str | os.PathLike) -> Outcome:
    """Back up the database at ``url`` into the new file ``destination``, while it is in use."""
    kind = store_kind(url)
    database = _sqlite_path(url) if kind == "sqlite" else None
    if database is not None and not database.is_file():
        raise BackupError(f"No SQLite database at {database}.")
    destination = Path(destination).expanduser()
    _check_new_file(destination)
    started = time.monotonic()
    temporary = _new_private_file(destination)
    try:
        if database is not None:
            records, revisions = _sqlite_backup(database, temporary)
        else:
            records, revisions = _postgres_backup(url, temporary)
        _fsync(temporary)
        _publish(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
    return Outcome(
        destination,
        kind,
        records,
        frozenset(revisions),
        frozenset(_expected_revisions()),
        destination.stat().st_size,
        time.monotonic() - started,
    )


def restore_backup(url: str, source: str | os.PathLike, *, replace: bool = False) -> Outcome:
    """Replace the database at ``url`` with the backup ``source``. The service must be stopped.

    Refused when the database is in use, or holds data and ``replace`` is false. Afterwards
    the outcome's ``migrations`` says whether this code can serve the database as it is."""
    kind = store_kind(url)
    source = Path(source).expanduser()
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
    started = time.monotonic()
    if kind == "sqlite":
        _sqlite_restore(_sqlite_path(url), source, replace)
    else:
        _postgres_restore(url, source, replace)
    storage = Storage(url)
    try:
        revisions = storage.current_revisions()
        with storage.reading() as connection:
            records = _count_records(connection)
    finally:
        storage.dispose()
    return Outcome(
        source,
        kind,
        records,
        frozenset(revisions),
        frozenset(_expected_revisions()),
        source.stat().st_size,
        time.monotonic() - started,
    )


_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}  # after "a"


def _expected_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def _backup_kind(path: Path) -> str | None:
    with path.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    if head == SQLITE_MAGIC:
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    return None


def _count_records(connection: sa.Connection) -> int | None:
    if not sa.inspect(connection).has_table("records"):
        return None
    return connection.execute(sa.text("SELECT count(*) FROM records")).scalar_one()


# -- Files -----------------------------------------------------------------------------------


def _check_new_file(destination: Path) -> None:
    if destination.exists() or destination.is_symlink():
        raise BackupError(f"{destination} exists already: a backup never overwrites a file.")
    if not destination.parent.is_dir():
        raise BackupError(f"The folder {destination.parent} does not exist.")


def _new_private_file(beside: Path) -> Path:
    """An empty file, readable by its owner only (a backup holds health data), in the folder
    of ``beside``: renaming it there is atomic."""
    path = beside.with_name(f".{beside.name}.partial-{secrets.token_hex(4)}")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_folder(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be synced
        _fsync(path)


def _publish(temporary: Path, destination: Path) -> None:
    """Give the finished file its name, which must still be free (a hard link never replaces
    a file; where hard links are not supported, a check and a rename)."""
    try:
        os.link(temporary, destination)
    except FileExistsError:
        raise BackupError(
            f"{destination} appeared while the backup ran: not overwritten."
        ) from None
    except OSError:
        if destination.exists():
            raise BackupError(f"{destination} exists already: not overwritten.") from None
        os.rename(temporary, destination)
    _fsync_folder(destination.parent)


# -- SQLite ----------------------------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    parsed = make_url(url)
    if not parsed.database or parsed.database == ":memory:" or parsed.query:
        raise BackupError(
            "DATABASE_URL must name an SQLite file (sqlite:///path/to/file.sqlite3) to back up "
            "or restore it."
        )
    return Path(parsed.database).expanduser()


def _sqlite_connect(path: Path, mode: str, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection that never creates the file (mode "ro" or "rw")."""
    return sqlite3.connect(
        f"file:{quote(str(path.absolute()))}?mode={mode}",
        uri=True,
        timeout=timeout,
        isolation_level=None,
    )


def _sqlite_backup(database: Path, temporary: Path) -> tuple[int | None, set[str]]:
    if sqlite3.sqlite_version_info < SQLITE_VACUUM_INTO:
        raise BackupError(
            f"SQLite {sqlite3.sqlite_version} is too old for a consistent online backup "
            "(VACUUM INTO needs 3.27 or later)."
        )
    # One read transaction: WAL lets writers go on meanwhile. The copy is compact (no free
    # pages, so nothing of erased records) and is a single file in rollback-journal mode.
    try:
        with contextlib.closing(_sqlite_connect(database, "rw")) as connection:
            connection.execute("VACUUM INTO ?", (str(temporary),))
    except sqlite3.Error as error:
        raise BackupError(f"Copying {database} failed: {error}.") from None
    return _check_sqlite(temporary)


def _check_sqlite(path: Path) -> tuple[int | None, set[str]]:
    """Raise unless the file passes PRAGMA integrity_check; its record count and revisions."""
    try:
        return _read_sqlite(path)
    except sqlite3.DatabaseError as error:
        raise BackupError(f"The copy is not a sound SQLite database: {error}.") from None


def _read_sqlite(path: Path) -> tuple[int | None, set[str]]:
    with contextlib.closing(_sqlite_connect(path, "ro")) as connection:
        problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(
                f"The copy failed SQLite's integrity check: {'; '.join(problems[:5])}"
            )
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        records = (
            connection.execute("SELECT count(*) FROM records").fetchone()[0]
            if "records" in tables
            else None
        )
        revisions = (
            {row[0] for row in connection.execute("SELECT version_num FROM alembic_version")}
            if "alembic_version" in tables
            else set()
        )
    return records, revisions


def _sqlite_target_holds_data(target: Path) -> bool:
    """Whether ``target`` holds a row in a table other than alembic_version. Raises
    BackupError while another connection, of this process or another, has it open: in WAL
    mode every open connection holds a shared lock, so an exclusive lock cannot be had."""
    if not target.exists():
        return False
    try:
        with contextlib.closing(_sqlite_connect(target, "rw", timeout=0)) as connection:
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
            queries = [f"SELECT 1 FROM {_sqlite_identifier(name)} LIMIT 1" for name in tables]  # noqa: S608
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


def _sqlite_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_restore(target: Path, source: Path, replace: bool) -> None:
    if target.exists() and source.resolve() == target.resolve():
        raise BackupError(f"{source} is the database itself: nothing to restore.")
    if any(Path(f"{source}{suffix}").exists() for suffix in ("-wal", "-journal")):
        raise BackupError(
            f"{source} has a write-ahead log or journal beside it: it is a live database or a "
            "copy of one, not a backup. Make a backup of it with `backup create`."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if _sqlite_target_holds_data(target) and not replace:
        raise BackupError(
            f"The database {target} holds data, which a restore replaces entirely. Stop the "
            "service, then run the restore again with --replace."
        )
    temporary = _new_private_file(target)
    try:
        shutil.copyfile(source, temporary)
        try:
            with contextlib.closing(_sqlite_connect(temporary, "rw")) as connection:
                # A single, self-contained file (the service turns WAL on when it opens it).
                connection.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.DatabaseError as error:
            raise BackupError(f"{source} is not a sound SQLite database: {error}.") from None
        _check_sqlite(temporary)
        _take_owner_and_mode(target, temporary)
        _fsync(temporary)
        # Checked again just before: the service may have been started meanwhile.
        _sqlite_target_holds_data(target)
        # A write-ahead log left beside the old file would be replayed into the new one and
        # corrupt it: remove the old file's side files first, then rename.
        for suffix in SQLITE_SIDE_FILES:
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(temporary, target)
        _fsync_folder(target.parent)
    finally:
        temporary.unlink(missing_ok=True)


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


# -- PostgreSQL ------------------------------------------------------------------------------


def libpq_environment(url: str | URL) -> dict[str, str]:
    """The environment for pg_dump and pg_restore to reach the database of a SQLAlchemy URL:
    PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE and the libpq settings in its query. The
    password goes only here, never on a command line (which other users can read)."""
    parsed = make_url(url)
    environment = {
        name: value for name, value in os.environ.items() if name not in LIBPQ_CONNECTION_VARIABLES
    }
    for variable, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", parsed.port),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
    ):
        if value is not None and value != "":
            environment[variable] = str(value)
    for name, value in parsed.query.items():
        variable = LIBPQ_QUERY_VARIABLES.get(name)
        if variable is None or not isinstance(value, str):
            raise BackupError(
                f"The DATABASE_URL parameter {name!r} cannot be passed on to pg_dump and "
                "pg_restore (a single value of a libpq setting is needed)."
            )
        environment[variable] = value
    return environment


def _program_major(path: Path) -> int | None:
    try:
        result = subprocess.run(  # noqa: S603 (an installed PostgreSQL program, no shell)
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s+(\d+)", result.stdout)
    return int(match.group(1)) if match else None


def find_postgres_program(name: str, at_least: int | None = None) -> Path:
    """The newest ``name`` (pg_dump, pg_restore) on PATH or in /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    folders = sorted(
        Path("/").glob(POSTGRES_PROGRAM_FOLDERS.lstrip("/")),
        key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [folder / name for folder in folders if (folder / name).is_file()]
    found = [(major, path) for path in candidates if (major := _program_major(path)) is not None]
    if not found:
        raise BackupError(
            f"{name} was not found on PATH or in {POSTGRES_PROGRAM_FOLDERS}: install the "
            "PostgreSQL client programs (e.g. postgresql-client) or put them on PATH."
        )
    major, path = max(found, key=lambda pair: pair[0])  # the first of the newest
    if at_least is not None and major < at_least:
        raise BackupError(
            f"{name} {major} ({path}) cannot dump a PostgreSQL {at_least} server: install the "
            f"client programs of version {at_least} or later."
        )
    return path


def _run(arguments: list[str], environment: dict[str, str], what: str) -> None:
    result = subprocess.run(  # noqa: S603 (an installed PostgreSQL program, no shell)
        arguments, env=environment, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        message = "\n".join(result.stderr.strip().splitlines()[-10:])
        raise BackupError(f"{what} failed (exit code {result.returncode}):\n{message}")


@contextlib.contextmanager
def _postgres_connection(url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5}, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    except sa.exc.OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise BackupError(f"Cannot reach the PostgreSQL database: {reason}") from None
    finally:
        engine.dispose()


def _postgres_backup(url: str, temporary: Path) -> tuple[int | None, set[str]]:
    environment = libpq_environment(url)
    with _postgres_connection(url) as connection:
        server_major = connection.execute(sa.text("SHOW server_version_num")).scalar_one()
        pg_dump = find_postgres_program("pg_dump", at_least=int(server_major) // 10000)
        connection.rollback()
        # One snapshot for the count and for pg_dump: the count is exactly what the file holds.
        with connection.begin():
            connection.execute(
                sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            )
            snapshot = connection.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            records = _count_records(connection)
            revisions = set()
            if sa.inspect(connection).has_table("alembic_version"):
                revisions = set(
                    connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
                )
            _run(
                [
                    str(pg_dump),
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    "--lock-wait-timeout=60s",
                    "--no-password",
                    f"--file={temporary}",
                ],
                environment,
                "pg_dump",
            )
    # The archive's table of contents reads back: the file is whole.
    _run(
        [str(find_postgres_program("pg_restore")), "--list", str(temporary)],
        environment,
        "Checking the archive (pg_restore --list)",
    )
    return records, revisions


def _libpq_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _postgres_restore(url: str, source: Path, replace: bool) -> None:
    environment = libpq_environment(url)
    pg_restore = find_postgres_program("pg_restore")
    _run([str(pg_restore), "--list", str(source)], environment, f"Reading {source}")
    with _postgres_connection(url) as connection:
        database = connection.execute(sa.text("SELECT current_database()")).scalar_one()
        others = connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        ).scalar_one()
        if others:
            raise BackupError(
                f"{others} other session(s) are connected to the database {database!r}: stop "
                "the service (and any other client) before restoring."
            )
        tables = connection.execute(
            sa.text(
                "SELECT n.nspname, c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', "
                "'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
            )
        ).all()
        holds_data = any(
            connection.execute(
                sa.select(sa.exists().select_from(sa.table(name, schema=schema)))
            ).scalar_one()
            for schema, name in tables
            if name != "alembic_version"
        )
    if holds_data and not replace:
        raise BackupError(
            f"The database {database!r} holds data, which a restore replaces. Stop the "
            "service, then run the restore again with --replace (or restore into an empty "
            "database)."
        )
    arguments = [str(pg_restore), "--no-owner", "--single-transaction", "--no-password"]
    if tables:
        # Drop what the archive holds before creating it again; all in the one transaction,
        # so a failure leaves the database as it was.
        arguments += ["--clean", "--if-exists"]
    arguments += [f"--dbname=dbname={_libpq_quote(database)}", str(source)]
    _run(arguments, environment, "pg_restore")
