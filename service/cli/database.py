"""flask db: apply, revert and show the database migrations."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from service.state import state

db = AppGroup("db", help="Database migrations.")


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations (creates the tables on a new database)."""
    state().storage.upgrade(revision)
    click.echo(f"Database at {sorted(state().storage.current_revisions())} (wanted {revision}).")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert the migrations down to REVISION ("base" drops every table)."""
    state().storage.downgrade(revision)
    click.echo(f"Database at {sorted(state().storage.current_revisions()) or 'base'}.")


@db.command("current")
def db_current() -> None:
    """Show the database's revision and the one this code expects."""
    storage = state().storage
    click.echo(f"database: {sorted(storage.current_revisions()) or 'base (empty)'}")
    click.echo(f"expected: {sorted(storage.expected_revisions())}")
