"""Requests stored as their packed JSON bytes

``records.request_packed`` holds what a record was sent, as JSON bytes packed with a dictionary
(service.storage.packing); ``request`` is then JSON null. Rows stored before keep their request
as JSON, read as it was: the upgrade adds the column and rewrites nothing. The downgrade puts
every packed request back into ``request`` as JSON, a batch of rows at a time in id order.

On PostgreSQL the packed bytes are not compressed a second time (STORAGE EXTERNAL).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

from service.storage.packing import unpack

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
)


def upgrade() -> None:
    op.add_column("records", sa.Column("request_packed", sa.LargeBinary(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE records ALTER COLUMN request_packed SET STORAGE EXTERNAL")


def downgrade() -> None:
    bind = op.get_bind()
    packed = sa.select(records.c.id, records.c.request_packed).where(
        records.c.request_packed.is_not(None)
    )
    last = ""
    while rows := bind.execute(
        packed.where(records.c.id > last).order_by(records.c.id).limit(BATCH)
    ).all():
        bind.execute(
            sa.update(records)
            .where(records.c.id == sa.bindparam("b_id"))
            .values(request=sa.bindparam("b_request"), request_packed=None),
            [
                {"b_id": row.id, "b_request": orjson.loads(unpack(row.request_packed))}
                for row in rows
            ],
        )
        last = rows[-1].id
    if bind.dialect.name == "sqlite":
        op.execute("ALTER TABLE records DROP COLUMN request_packed")
    else:
        op.drop_column("records", "request_packed")
