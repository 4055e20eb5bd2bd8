"""Reassessments: an assessment may be a stored one re-evaluated under another rules version

``records.reassessment_of`` names the assessment whose report was re-evaluated; it is erased
with that assessment (ON DELETE CASCADE), as everything derived from an erased record is.

PostgreSQL adds the column, its foreign key and its index in place.

SQLite cannot add a named table-level foreign key to an existing table, so the table is
rebuilt, but not the way Alembic's batch mode rebuilds it: batch mode copies the rows into a
new table whose self-references name ``records``, and with foreign keys enforced, dropping the
old ``records`` deletes its rows first, which cascades into every copied row that refers to
another (an assessment's plan, a prescription made from it). Here the new table refers to
itself by its own name until it is renamed to ``records``, which SQLite then rewrites. The
downgrade rebuilds it the same way without the column: reassessments stay, as plain
assessments.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMN = "reassessment_of"
FOREIGN_KEY = "fk_records_reassessment_of_records"
INDEX = "ix_records_reassessment_of"
NEW_TABLE = "records_rebuilt"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if _sqlite():
        _rebuild_sqlite(with_link=True)
    else:
        op.add_column("records", sa.Column(COLUMN, sa.String(length=36), nullable=True))
        op.create_foreign_key(
            FOREIGN_KEY, "records", "records", [COLUMN], ["id"], ondelete="CASCADE"
        )
    op.create_index(INDEX, "records", [COLUMN], unique=False)


def downgrade() -> None:
    if _sqlite():
        _rebuild_sqlite(with_link=False)
        return
    op.drop_index(INDEX, table_name="records")
    op.drop_constraint(FOREIGN_KEY, "records", type_="foreignkey")
    op.drop_column("records", COLUMN)


# -- SQLite ----------------------------------------------------------------------------------


def _columns_0003() -> list[sa.Column]:
    """The records table's columns as of revision 0003, in their order (new ones each call: a
    column belongs to one table)."""
    return [
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("assessment_id", sa.String(length=36), nullable=True),
        sa.Column("plan_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("rules_version", sa.String(length=32), nullable=False),
        sa.Column("subject_system", sa.String(length=255), nullable=True),
        sa.Column("subject_value", sa.String(length=255), nullable=True),
        sa.Column("triage_level", sa.String(length=32), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=True),
    ]


# Its indexes, which go with the old table.
INDEXES_0003 = (
    ("ix_records_assessment_id", ["assessment_id"]),
    ("ix_records_tenant_kind_created", ["tenant_id", "kind", "created_at", "id"]),
    (
        "ix_records_tenant_subject_created",
        ["tenant_id", "subject_system", "subject_value", "created_at"],
    ),
)


def _records_table(name: str, with_link: bool) -> sa.Table:
    """The records table under ``name``, referring to itself by that name."""
    metadata = sa.MetaData()
    # Stand-ins, so that the foreign keys to them can be rendered.
    sa.Table("tenants", metadata, sa.Column("id", sa.Integer(), primary_key=True))
    sa.Table("api_keys", metadata, sa.Column("id", sa.Integer(), primary_key=True))
    columns = _columns_0003()
    constraints = [
        sa.PrimaryKeyConstraint("id", name="pk_records"),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name="fk_records_api_key_id_api_keys"
        ),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            [f"{name}.id"],
            name="fk_records_assessment_id_records",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_records_tenant_id_tenants"),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name="uq_records_tenant_id_idempotency_key"
        ),
    ]
    if with_link:
        columns.append(sa.Column(COLUMN, sa.String(length=36), nullable=True))
        constraints.append(
            sa.ForeignKeyConstraint([COLUMN], [f"{name}.id"], name=FOREIGN_KEY, ondelete="CASCADE")
        )
    return sa.Table(name, metadata, *columns, *constraints)


def _rebuild_sqlite(with_link: bool) -> None:
    """records rebuilt with or without the link column, its rows and indexes kept (the
    upgrade's index on the new column is created by the caller)."""
    bind = op.get_bind()
    new = _records_table(NEW_TABLE, with_link)
    kept = [column.name for column in _columns_0003()]
    old = sa.table("records", *(sa.column(name) for name in kept))
    op.execute(sa.schema.CreateTable(new).compile(dialect=bind.dialect).string)
    op.execute(sa.insert(new).from_select(kept, sa.select(*old.c)))
    # Only records refers to records: dropping it cascades into nothing else.
    op.execute("DROP TABLE records")
    # SQLite (3.26 and later) rewrites the table's references to itself to the new name.
    op.execute(f"ALTER TABLE {NEW_TABLE} RENAME TO records")
    for index, columns in INDEXES_0003:
        op.create_index(index, "records", columns, unique=False)
