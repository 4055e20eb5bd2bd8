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

- ``operations``: create and restore, whichever the database;
- ``sqlite``, ``postgres``: how each kind of database is backed up and restored;
- ``files``: new files made private, flushed, and named without overwriting;
- ``outcome``: what a backup or restore reports, and its error.

This is the package's front door: the rest of the service imports from ``service.backup``.
"""

from __future__ import annotations

from service.backup.operations import create_backup, restore_backup, store_kind
from service.backup.outcome import BackupError, Outcome
from service.backup.postgres import find_postgres_program, libpq_environment

__all__ = [
    "BackupError",
    "Outcome",
    "create_backup",
    "find_postgres_program",
    "libpq_environment",
    "restore_backup",
    "store_kind",
]
