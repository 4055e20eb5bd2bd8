"""The backup commands (`popliteal backup …`, or `flask --app service.wsgi backup …`): create
a backup while the service runs, restore one with the service stopped."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from service.backup import BackupError, Outcome, create_backup, restore_backup
from service.cli.typed import typed_command
from service.state import state

backup = AppGroup("backup", help="Backups: create one while the service runs, restore one.")


def _describe(outcome: Outcome) -> str:
    records = "no records table" if outcome.records is None else f"{outcome.records} records"
    revisions = ", ".join(sorted(outcome.revisions)) or "none"
    return f"{records}, migrations {revisions}"


@backup.command("create")
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
def backup_create(destination: Path) -> None:
    """Copy the database (DATABASE_URL) into DESTINATION, a new file, while the service runs.

    Consistent under writes: SQLite with VACUUM INTO (one read snapshot; writers go on),
    PostgreSQL with pg_dump --format=custom. The copy is checked (SQLite's integrity check,
    the archive's contents) and only then given its name; an existing file is never replaced.
    """
    try:
        outcome = create_backup(state().storage.url, destination)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Backup written to {outcome.path} ({outcome.size} bytes, {_describe(outcome)}; "
        f"checked) in {outcome.seconds:.1f} s."
    )


@backup.command("restore")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--replace",
    is_flag=True,
    help="Replace a database that holds data (without it, only an empty one is restored into).",
)
def backup_restore(source: Path, replace: bool) -> None:
    """Replace the database (DATABASE_URL) with the backup SOURCE. Stop the service first.

    Refused while another connection uses the database. SQLite: the backup is copied beside
    the database, checked and flushed, the old write-ahead log removed, and the copy renamed
    into place. PostgreSQL: pg_restore --no-owner in one transaction (--clean --if-exists over
    existing tables). Then says whether the migrations are current.
    """
    storage = state().storage
    storage.dispose()  # this process's own connections are not "in use"
    try:
        outcome = restore_backup(storage.url, source, replace=replace)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Restored {outcome.path} in {outcome.seconds:.1f} s: {_describe(outcome)}.")
    expected = ", ".join(sorted(outcome.expected))
    click.echo(
        {
            "current": "Migrations are current: the service can start.",
            "empty": "The backup holds no migrated database: run "
            f"`{typed_command('db upgrade')}` before starting.",
            "behind": f"Migrations are behind (this code expects {expected}): run "
            f"`{typed_command('db upgrade')}` before starting the service.",
            "unknown": f"The database is at a revision this code does not know (it expects "
            f"{expected}): a newer release made the backup; run that release.",
        }[outcome.migrations]
    )
