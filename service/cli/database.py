"""The db commands (`popliteal db …`, or `flask --app service.wsgi db …`): apply, revert and
show the database migrations, and say in words where the database stands."""

from __future__ import annotations

import click
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask.cli import AppGroup

from service.cli.typed import typed_command
from service.state import state
from service.storage import alembic_config

db = AppGroup("db", help="Database migrations.")


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations (creates the tables on a new database)."""
    state().storage.upgrade(revision)
    click.echo(schema_status())


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert the migrations down to REVISION ("base" drops every table)."""
    state().storage.downgrade(revision)
    click.echo(schema_status())


@db.command("current")
def db_current() -> None:
    """Say whether the database is up to date, behind or ahead of this code."""
    click.echo(schema_status())


def schema_status() -> str:
    """Where the database stands against this code's migrations, in words, with what to do."""
    storage = state().storage
    current, expected = storage.current_revisions(), storage.expected_revisions()
    newest = _listed(expected)
    if current == expected:
        return f"The database is up to date: at revision {newest}, the newest this code has."
    migrate = typed_command("db upgrade")
    if not current:
        return (
            "The database is empty: no migration has been applied (this code's newest "
            f"revision is {newest}). Create its tables with: {migrate}"
        )
    script = ScriptDirectory.from_config(alembic_config())
    unknown = {revision for revision in current if not _known(script, revision)}
    if unknown:
        return (
            f"The database is ahead of this code: it is at revision {_listed(unknown)}, which "
            f"this code does not know (its newest is {newest}). A newer release migrated it: "
            f"run that release, or use it to go back (db downgrade {newest}) first."
        )
    pending = len(list(script.iterate_revisions(tuple(expected), tuple(current))))
    return (
        f"The database is behind: at revision {_listed(current)}, while this code's newest is "
        f"{newest} ({pending} migration{'s' if pending != 1 else ''} to apply). "
        f"Migrate it with: {migrate}"
    )


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _listed(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions))
