"""What a backup or a restore reports (``Outcome``), and why one was refused (``BackupError``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from service.storage import COUNT_RECORDS, alembic_config


class BackupError(Exception):
    """A backup or restore refused or failed. The message says why and what to do; nothing
    was written under the destination's name (a backup) or into the database (a restore)."""


@dataclass(frozen=True)
class Outcome:
    """What a backup holds, or what a restored database now holds."""

    path: Path  # the backup file
    store: str  # "sqlite" or "postgresql"
    records: int | None  # records stored, held plans counted (None: no records table)
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


def expected_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def count_records(connection: sa.Connection) -> int | None:
    if not sa.inspect(connection).has_table("records"):
        return None
    return connection.execute(sa.text(COUNT_RECORDS)).scalar_one()
