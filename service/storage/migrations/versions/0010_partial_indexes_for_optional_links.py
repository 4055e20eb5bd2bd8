"""Indexes on optional columns hold only the rows that have a value

Three of the records indexes serve lookups by a column most rows leave empty: ``assessment_id``
(set on a plan or a prescription only), ``reassessment_of`` (set on a reassessment only) and the
subject's (set when a client names who the record is about). Every lookup through them asks
for a value, never for NULL, so their empty rows were never read through them, yet each stored
assessment wrote them: an assessment and its plan without a subject wrote 12 index entries,
5 of them empty ones in these three indexes. Each is now partial (``WHERE column IS NOT
NULL``), on PostgreSQL and SQLite alike, and such an assessment writes 7. Both databases use a
partial index for a condition ``column = value``, which implies it; the foreign keys' cascades
look up children that way.

The upgrade rebuilds each index as a partial one, and the downgrade as a full one again; no
row is rewritten.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Index name -> its columns, and the column whose NULL rows a partial index leaves out.
INDEXES = {
    "ix_records_assessment_id": (["assessment_id"], "assessment_id"),
    "ix_records_reassessment_of": (["reassessment_of"], "reassessment_of"),
    "ix_records_tenant_subject_kind_created": (
        ["tenant_id", "subject_system", "subject_value", "kind", "created_at", "id"],
        "subject_system",
    ),
}


def _rebuild(partial: bool) -> None:
    # In the migration's transaction: no other session sees the table without the index (on
    # PostgreSQL, writes wait for the build, as for any CREATE INDEX that is not CONCURRENTLY).
    for name, (columns, optional) in INDEXES.items():
        where = {}
        if partial:
            condition = sa.column(optional).isnot(None)
            where = {"postgresql_where": condition, "sqlite_where": condition}
        op.drop_index(name, table_name="records")
        op.create_index(name, "records", columns, **where)


def upgrade() -> None:
    _rebuild(partial=True)


def downgrade() -> None:
    _rebuild(partial=False)
