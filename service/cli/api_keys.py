"""The keys commands (`popliteal keys …`, or `flask --app service.wsgi keys …`): create, list and
revoke API keys, and the development key of a first start."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from service.cli.typed import typed_command
from service.state import state

CREATE_HINT = "keys create --tenant NAME"

keys = AppGroup("keys", help="API keys: create, list, revoke.")


@keys.command("create")
@click.option("--tenant", required=True, help="The tenant's name; created if new.")
@click.option("--label", default="", help="What the key is for (shown in listings).")
def keys_create(tenant: str, label: str) -> None:
    """Create a key. It is shown once: only its hash is stored."""
    key, info = state().storage.keys.create(tenant.strip(), label)
    click.echo(f"API key {info.id} for tenant {info.tenant!r} (shown once, keep it secret):")
    click.echo(key)


@keys.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
def keys_list(tenant: str | None) -> None:
    """List keys (id, tenant, prefix, label, created, revoked, and "legacy" for a key made
    before keys carried a check: replace it); never the keys themselves."""
    for info in state().storage.keys.list(tenant):
        revoked = info.revoked_at.isoformat(timespec="seconds") if info.revoked_at else "-"
        click.echo(
            f"{info.id}\t{info.tenant}\t{info.prefix}…\t{info.label or '-'}\t"
            f"{info.created_at.isoformat(timespec='seconds')}\trevoked: {revoked}"
            + ("" if info.checked else "\tlegacy")
        )


@keys.command("revoke")
@click.argument("key_id", type=int)
def keys_revoke(key_id: int) -> None:
    """Revoke a key by its id (from keys list). Takes effect within the key cache time."""
    if not state().storage.keys.revoke(key_id):
        raise click.ClickException(f"No active key with id {key_id}.")
    click.echo(f"Key {key_id} revoked.")


@keys.command("ensure-dev")
def keys_ensure_development() -> None:
    """On a database with no keys yet, create one for the 'development' tenant and print it."""
    key = state().storage.keys.ensure_development_key()
    if key is None:
        click.echo("API keys exist already; none created. To create another, run:")
        click.echo(f"    {typed_command(CREATE_HINT)}")
        return
    click.echo("")
    click.echo("First start: a development API key was created. It is shown only this once.")
    click.echo("Authorise in /docs (Authorize button) or send: Authorization: Bearer <key>")
    click.echo(f"    {key}")
    click.echo(f"More keys: {typed_command(CREATE_HINT)}")
    click.echo("")
