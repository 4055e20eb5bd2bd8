"""PostgreSQL: a backup is ``pg_dump --format=custom`` from an exported snapshot (in which the
records are counted too), checked by reading its table of contents back; a restore is
``pg_restore`` in one transaction, once no other session uses the database. The connection
reaches pg_dump and pg_restore through libpq's environment only, never their command line."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from service.backup.outcome import BackupError, count_records

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
def _connection(url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5}, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    except sa.exc.OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise BackupError(f"Cannot reach the PostgreSQL database: {reason}") from None
    finally:
        engine.dispose()


def backup(url: str, temporary: Path) -> tuple[int | None, set[str]]:
    environment = libpq_environment(url)
    with _connection(url) as connection:
        server_major = connection.execute(sa.text("SHOW server_version_num")).scalar_one()
        pg_dump = find_postgres_program("pg_dump", at_least=int(server_major) // 10000)
        connection.rollback()
        # One snapshot for the count and for pg_dump: the count is exactly what the file holds.
        with connection.begin():
            connection.execute(
                sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            )
            snapshot = connection.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            records = count_records(connection)
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


def restore(url: str, source: Path, replace: bool) -> None:
    environment = libpq_environment(url)
    pg_restore = find_postgres_program("pg_restore")
    _run([str(pg_restore), "--list", str(source)], environment, f"Reading {source}")
    with _connection(url) as connection:
        database, has_tables, holds_data = _target(connection)
    if holds_data and not replace:
        raise BackupError(
            f"The database {database!r} holds data, which a restore replaces. Stop the "
            "service, then run the restore again with --replace (or restore into an empty "
            "database)."
        )
    arguments = [str(pg_restore), "--no-owner", "--single-transaction", "--no-password"]
    if has_tables:
        # Drop what the archive holds before creating it again; all in the one transaction,
        # so a failure leaves the database as it was.
        arguments += ["--clean", "--if-exists"]
    arguments += [f"--dbname=dbname={_libpq_quote(database)}", str(source)]
    _run(arguments, environment, "pg_restore")


def _target(connection: sa.Connection) -> tuple[str, bool, bool]:
    """The database restored into: its name, whether it has tables, and whether one of them
    (but alembic_version) holds a row. Refused while another session uses it."""
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
    return database, bool(tables), holds_data
