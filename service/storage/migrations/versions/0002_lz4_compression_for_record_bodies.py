"""Compress stored requests and responses with lz4 on PostgreSQL

A stored assessment is some 20 kB of JSON. PostgreSQL compresses such values with pglz by
default; lz4 (PostgreSQL 14 and later) compresses them several times faster for a similar size,
which is most of the cost of storing an assessment. Other databases: nothing to do.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("request", "response")


def _applies() -> bool:
    bind = op.get_bind()
    return bind.dialect.name == "postgresql" and bind.dialect.server_version_info >= (14,)


def upgrade() -> None:
    if _applies():
        for column in COLUMNS:
            op.execute(f"ALTER TABLE records ALTER COLUMN {column} SET COMPRESSION lz4")


def downgrade() -> None:
    if _applies():
        for column in COLUMNS:
            op.execute(f"ALTER TABLE records ALTER COLUMN {column} SET COMPRESSION default")
