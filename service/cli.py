"""Command-line tools: migrations and API keys.

flask --app service.wsgi db upgrade
flask --app service.wsgi keys create --tenant acme-fitness --label "production backend"
flask --app service.wsgi keys list [--tenant acme-fitness]
flask --app service.wsgi keys revoke 3
"""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from service.storage import Storage

db = AppGroup("db", help="Database migrations.")
keys = AppGroup("keys", help="API keys: create, list, revoke.")


def _storage() -> Storage:
    return current_app.extensions["popliteal"]["storage"]


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations (creates the tables on a new database)."""
    _storage().upgrade(revision)
    click.echo(f"Database at {sorted(_storage().current_revisions())} (wanted {revision}).")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert the migrations down to REVISION ("base" drops every table)."""
    _storage().downgrade(revision)
    click.echo(f"Database at {sorted(_storage().current_revisions()) or 'base'}.")


@db.command("current")
def db_current() -> None:
    """Show the database's revision and the one this code expects."""
    storage = _storage()
    click.echo(f"database: {sorted(storage.current_revisions()) or 'base (empty)'}")
    click.echo(f"expected: {sorted(storage.expected_revisions())}")


@keys.command("create")
@click.option("--tenant", required=True, help="The tenant's name; created if new.")
@click.option("--label", default="", help="What the key is for (shown in listings).")
def keys_create(tenant: str, label: str) -> None:
    """Create a key. It is shown once: only its hash is stored."""
    key, info = _storage().keys.create(tenant.strip(), label)
    click.echo(f"API key {info.id} for tenant {info.tenant!r} (shown once, keep it secret):")
    click.echo(key)


@keys.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
def keys_list(tenant: str | None) -> None:
    """List keys (id, tenant, prefix, label, created, revoked); never the keys themselves."""
    for info in _storage().keys.list(tenant):
        revoked = info.revoked_at.isoformat(timespec="seconds") if info.revoked_at else "-"
        click.echo(
            f"{info.id}\t{info.tenant}\t{info.prefix}…\t{info.label or '-'}\t"
            f"{info.created_at.isoformat(timespec='seconds')}\trevoked: {revoked}"
        )


@keys.command("revoke")
@click.argument("key_id", type=int)
def keys_revoke(key_id: int) -> None:
    """Revoke a key by its id (from keys list). Takes effect within the key cache time."""
    if not _storage().keys.revoke(key_id):
        raise click.ClickException(f"No active key with id {key_id}.")
    click.echo(f"Key {key_id} revoked.")


@keys.command("ensure-dev")
def keys_ensure_development() -> None:
    """On a database with no keys yet, create one for the 'development' tenant and print it."""
    key = _storage().keys.ensure_development_key()
    if key is None:
        click.echo("API keys exist already; none created. (flask keys create --tenant NAME)")
        return
    click.echo("")
    click.echo("First start: a development API key was created. It is shown only this once.")
    click.echo("Authorise in /docs (Authorize button) or send: Authorization: Bearer <key>")
    click.echo(f"    {key}")
    click.echo("")


def register_commands(app: Flask) -> None:
    app.cli.add_command(db)
    app.cli.add_command(keys)
