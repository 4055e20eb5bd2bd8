"""The reassess command (`popliteal reassess`, or `flask --app service.wsgi reassess`): every
stored assessment of a tenant evaluated again under a rules version, and a report of what
changes (written as it goes, in JSON or JSON Lines). Stores nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

import click
import orjson
from flask.cli import with_appcontext

from rules.difference import assessment_difference
from service.records_as_json import timestamp
from service.state import state
from service.storage import Record, Storage


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
        page = storage.records.full_page(tenant_id, limit=page_size, cursor=cursor)
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
