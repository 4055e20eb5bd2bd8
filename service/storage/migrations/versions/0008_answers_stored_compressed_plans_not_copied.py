"""Answers stored as their compressed JSON bytes; an assessment's plan no longer a copy

``records.answer`` holds what a record answered: its JSON bytes exactly as given, compressed
(service.storage.packing); ``response`` is then JSON null. An assessment's plan record keeps
its row (its id, its links, its erasure with the assessment) but neither form: its answer is
read from the assessment's.

The upgrade converts every row: a plan whose stored answer is exactly the one read from its
assessment's loses the copy; every other answer is compressed into ``answer``. The downgrade
puts every answer back into ``response`` as JSON, the plans' among them. Rows go a batch at a
time, in id order.

On PostgreSQL the compressed bytes are not compressed a second time (STORAGE EXTERNAL).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import zlib

import orjson
import sqlalchemy as sa
from alembic import op

from service.storage.answers import is_plan_of, plan_of
from service.storage.packing import ZLIB, unpack


def _pack(answer_json: bytes) -> bytes:
    """An answer as this revision stored it (zlib, level 1): fixed here, whatever the service
    packs new answers with later (service.storage.packing reads every encoding)."""
    return ZLIB + zlib.compress(answer_json, 1)


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 500

records = sa.table(
    "records",
    sa.column("id", sa.String),
    sa.column("kind", sa.String),
    sa.column("assessment_id", sa.String),
    sa.column("plan_id", sa.String),
    sa.column("response", sa.JSON),
    sa.column("answer", sa.LargeBinary),
)
parent = records.alias("parent")


def _batches(query: sa.Select):
    """The rows of query (whose first column is records.id), BATCH at a time in id order."""
    bind = op.get_bind()
    last = ""
    while True:
        rows = bind.execute(
            query.where(records.c.id > last).order_by(records.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _set(values: list[dict]) -> None:
    if values:
        op.get_bind().execute(
            sa.update(records)
            .where(records.c.id == sa.bindparam("b_id"))
            .values(response=sa.bindparam("b_response"), answer=sa.bindparam("b_answer")),
            values,
        )


def _plans():
    """Plans with their assessment's stored form: (id, response, answer, assessment's
    response, assessment's answer)."""
    return sa.select(
        records.c.id,
        records.c.response,
        records.c.answer,
        parent.c.response.label("assessment_response"),
        parent.c.answer.label("assessment_answer"),
    ).join(
        parent,
        sa.and_(parent.c.id == records.c.assessment_id, parent.c.plan_id == records.c.id),
    )


def upgrade() -> None:
    op.add_column("records", sa.Column("answer", sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE records ALTER COLUMN answer SET STORAGE EXTERNAL")
    # Plans first, while their assessments' answers are still JSON.
    for rows in _batches(_plans()):
        _set(
            [
                {"b_id": row.id, "b_response": None, "b_answer": None}
                for row in rows
                if row.answer is None
                and row.response is not None
                and row.assessment_response is not None
                and is_plan_of(row.response, row.assessment_response)
            ]
        )
    query = sa.select(records.c.id, records.c.response).where(records.c.answer.is_(None))
    for rows in _batches(query):
        _set(
            [
                {"b_id": row.id, "b_response": None, "b_answer": _pack(orjson.dumps(row.response))}
                for row in rows
                if row.response is not None
            ]
        )


def downgrade() -> None:
    # Plans first, while their assessments' answers are still compressed.
    for rows in _batches(_plans()):
        values = []
        for row in rows:
            if row.answer is not None or row.response is not None:
                continue
            if row.assessment_answer is not None:
                assessment = orjson.loads(unpack(row.assessment_answer))
            else:
                assessment = row.assessment_response
            values.append({"b_id": row.id, "b_response": plan_of(assessment), "b_answer": None})
        _set(values)
    query = sa.select(records.c.id, records.c.answer).where(records.c.answer.is_not(None))
    for rows in _batches(query):
        _set(
            [
                {"b_id": row.id, "b_response": orjson.loads(unpack(row.answer)), "b_answer": None}
                for row in rows
            ]
        )
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE records DROP COLUMN answer")
    else:
        op.drop_column("records", "answer")
