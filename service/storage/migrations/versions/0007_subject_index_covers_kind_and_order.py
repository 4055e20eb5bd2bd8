"""The subject index covers the record kind and the listing's whole order

A listing by subject filtered on ``kind`` and sorted on ``(created_at, id)`` after reading the
subject's rows: with ``kind`` and ``id`` in the index, it reads them in order and stops at the
page size.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OLD = "ix_records_tenant_subject_created"
NEW = "ix_records_tenant_subject_kind_created"


def upgrade() -> None:
    op.create_index(
        NEW,
        "records",
        ["tenant_id", "subject_system", "subject_value", "kind", "created_at", "id"],
    )
    op.drop_index(OLD, table_name="records")


def downgrade() -> None:
    op.create_index(OLD, "records", ["tenant_id", "subject_system", "subject_value", "created_at"])
    op.drop_index(NEW, table_name="records")
