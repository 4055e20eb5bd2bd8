"""Requests stored as their packed JSON bytes

``records.request_packed`` holds what a record was sent, as JSON bytes packed with a dictionary
(service.storage.packing); ``request`` is then JSON null. Rows stored before keep their request
as JSON, read as it was: the upgrade adds the column and rewrites nothing. The downgrade puts
every packed request back into ``request`` as JSON, and every answer packed with a dictionary
back into zlib (the only encoding releases before 0009 read), a batch of rows at a time in id
order.

On PostgreSQL the packed bytes are not compressed a second time (STORAGE EXTERNAL).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import zlib

import orjson
import sqlalchemy as sa
from alembic import op

from service.storage.packing import ZLIB, unpack

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 500

records = sa.table(
    "records",
    sa.column("id", sa.String),
    sa.column("request", sa.JSON),
    sa.column("request_packed", sa.LargeBinary),
    sa.column("answer", sa.LargeBinary),
)


def upgrade() -> None:
    op.add_column("records", sa.Column("request_packed", sa.LargeBinary(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE records ALTER COLUMN request_packed SET STORAGE EXTERNAL")


def _rewrite(column: sa.ColumnClause, condition, values) -> None:
    """Set ``column`` of the rows matching ``condition``, to ``values(row)``, a batch at a time."""
    bind = op.get_bind()
    query = sa.select(records.c.id, column).where(condition)
    last = ""
    while rows := bind.execute(
        query.where(records.c.id > last).order_by(records.c.id).limit(BATCH)
    ).all():
        bind.execute(
            sa.update(records).where(records.c.id == sa.bindparam("b_id")),
            [{"b_id": row.id, **values(row)} for row in rows],
        )
        last = rows[-1].id


def downgrade() -> None:
    _rewrite(
        records.c.request_packed,
        records.c.request_packed.is_not(None),
        lambda row: {"request": orjson.loads(unpack(row.request_packed)), "request_packed": None},
    )
    # Answers packed with a dictionary, as 0008 stored answers: zlib, level 1.
    _rewrite(
        records.c.answer,
        sa.and_(records.c.answer.is_not(None), sa.func.substr(records.c.answer, 1, 1) != ZLIB),
        lambda row: {"answer": ZLIB + zlib.compress(unpack(row.answer), 1)},
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE records DROP COLUMN request_packed")
    else:
        op.drop_column("records", "request_packed")
