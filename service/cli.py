"""Command-line tools: migrations, API keys, and reassessing stored records after a release.

flask --app service.wsgi db upgrade
flask --app service.wsgi keys create --tenant acme-fitness --label "production backend"
flask --app service.wsgi keys list [--tenant acme-fitness]
flask --app service.wsgi keys revoke 3
flask --app service.wsgi reassess --tenant acme-fitness --rules-version 2.0.0 \
    [--output report.json] [--format json|jsonl] [--changed-only]
flask --app service.wsgi backup create /backups/popliteal-2026-05-01.backup
flask --app service.wsgi backup restore /backups/popliteal-2026-05-01.backup [--replace]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import orjson
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from rules.difference import assessment_difference
from service.backup import BackupError, Outcome, create_backup, restore_backup
from service.records import timestamp
from service.state import state
from service.storage import ASSESSMENT, Record, Storage

db = AppGroup("db", help="Database migrations.")
keys = AppGroup("keys", help="API keys: create, list, revoke.")
backup = AppGroup("backup", help="Backups: create one while the service runs, restore one.")


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
        click.echo("API keys exist already; none created. (flask keys create --tenant NAME)")
        return
    click.echo("")
    click.echo("First start: a development API key was created. It is shown only this once.")
    click.echo("Authorise in /docs (Authorize button) or send: Authorization: Bearer <key>")
    click.echo(f"    {key}")
    click.echo("")


class _JsonReport:
    """One JSON document, written as it goes: {"tenant", "rules_version", "changed_only",
    "records": [...], "summary": {...}}."""

    def __init__(self, out: IO[str], head: dict[str, Any]) -> None:
        self._out = out
        self._first = True
        out.write(orjson.dumps(head).decode()[:-1] + ',"records":[')

    def record(self, entry: dict[str, Any]) -> None:
        self._out.write(("\n" if self._first else ",\n") + orjson.dumps(entry).decode())
        self._first = False

    def finish(self, summary: dict[str, int]) -> None:
        self._out.write('\n],"summary":' + orjson.dumps(summary).decode() + "}\n")


class _JsonLinesReport:
    """JSON Lines: one record a line, then a last line with the summary."""

    def __init__(self, out: IO[str], head: dict[str, Any]) -> None:
        self._out = out
        self._head = head

    def record(self, entry: dict[str, Any]) -> None:
        self._out.write(orjson.dumps(entry).decode() + "\n")

    def finish(self, summary: dict[str, int]) -> None:
        self._out.write(orjson.dumps({**self._head, "summary": summary}).decode() + "\n")


def _entry(record: Record, rules_version: str) -> dict[str, Any]:
    subject = record.subject
    return {
        "id": record.id,
        "subject": None if subject is None else {"system": subject.system, "value": subject.value},
        "created_at": timestamp(record),
        "rules_versions": {"original": record.rules_version, "reassessed": rules_version},
    }


@click.command("reassess")
@click.option("--tenant", required=True, help="The tenant whose stored assessments to read.")
@click.option("--rules-version", required=True, help="The rules version to evaluate them under.")
@click.option(
    "--output",
    default="-",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The report file (- for standard output); written whole or not at all.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "jsonl"]),
    default="json",
    show_default=True,
    help="One JSON document, or JSON Lines (a record a line, then the summary).",
)
@click.option(
    "--changed-only",
    is_flag=True,
    help="List only the records whose triage changed (level, red flags, stop stretching); "
    "the summary still counts every record.",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 1000),
    default=200,
    show_default=True,
    help="Records read from the database at a time.",
)
@with_appcontext
def reassess(
    tenant: str,
    rules_version: str,
    output: str,
    output_format: str,
    changed_only: bool,
    page_size: int,
) -> None:
    """Evaluate every stored assessment of a tenant again under a rules version and report
    what changes. Stores nothing.

    For each record: its id, subject (as stored), creation time, both rules versions, whether
    the triage changed (level, red flags, stop stretching) and the difference; then a summary:
    records read, triage changed, level raised, level lowered, and stored reports the report
    checks no longer accept (listed with their errors, never skipped silently).
    """
    library = state().rules
    if rules_version not in library.versions:
        raise click.BadParameter(
            f"{rules_version!r} is not an available rules version: {', '.join(library.versions)}.",
            param_hint="--rules-version",
        )
    storage = state().storage
    tenant_id = storage.keys.tenant_id(tenant.strip())
    if tenant_id is None:
        raise click.ClickException(f"No tenant named {tenant!r}.")

    counts = Counter(records_read=0, changed=0, level_raised=0, level_lowered=0, not_reassessable=0)
    head = {"tenant": tenant.strip(), "rules_version": rules_version, "changed_only": changed_only}
    with click.open_file(output, "w", encoding="utf-8", atomic=output != "-") as out:
        report = (_JsonReport if output_format == "json" else _JsonLinesReport)(out, head)
        for record in _stored_assessments(storage, tenant_id, page_size):
            entry = _reassessed(record, rules_version, counts)
            # A report that cannot be reassessed is always listed, never skipped silently.
            if "errors" in entry or entry["triage_changed"] or not changed_only:
                report.record(entry)
        summary = dict(counts)
        report.finish(summary)
    click.echo(
        f"{summary['records_read']} assessments of {tenant.strip()!r} reassessed under "
        f"{rules_version}: triage changed in {summary['changed']} (level raised "
        f"{summary['level_raised']}, lowered {summary['level_lowered']}); "
        f"{summary['not_reassessable']} stored reports no longer valid. Nothing was stored.",
        err=True,
    )


def _stored_assessments(storage: Storage, tenant_id: int, page_size: int) -> Iterator[Record]:
    """Every stored assessment of a tenant, a page at a time."""
    cursor = None
    while True:
        page = storage.records.full_page(tenant_id, ASSESSMENT, limit=page_size, cursor=cursor)
        yield from page.items
        cursor = page.next_cursor
        if cursor is None:
            return


def _reassessed(record: Record, rules_version: str, counts: Counter) -> dict[str, Any]:
    """A record's entry in the report, counted: its difference under ``rules_version``, or the
    errors that keep its stored report from being reassessed (always listed)."""
    # Imported here: the route modules are imported when an app is made, not with this one.
    from service.api.reassessments import StoredReportInvalid, reassess_record

    counts["records_read"] += 1
    try:
        _, assessment = reassess_record(record, rules_version)
    except StoredReportInvalid as error:
        counts["not_reassessable"] += 1
        return {**_entry(record, rules_version), "errors": error.errors}
    difference = assessment_difference(record.response, assessment)
    if difference["triage_changed"]:
        counts["changed"] += 1
    direction = difference["level"]["direction"]
    if direction != "unchanged":
        counts[f"level_{direction}"] += 1
    return {
        **_entry(record, rules_version),
        "triage_changed": difference["triage_changed"],
        "difference": difference,
    }


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
            "empty": "The backup holds no migrated database: run db upgrade before starting.",
            "behind": f"Migrations are behind (this code expects {expected}): run "
            "`flask --app service.wsgi db upgrade` before starting the service.",
            "unknown": f"The database is at a revision this code does not know (it expects "
            f"{expected}): a newer release made the backup; run that release.",
        }[outcome.migrations]
    )


def register_commands(app: Flask) -> None:
    app.cli.add_command(db)
    app.cli.add_command(keys)
    app.cli.add_command(reassess)
    app.cli.add_command(backup)
