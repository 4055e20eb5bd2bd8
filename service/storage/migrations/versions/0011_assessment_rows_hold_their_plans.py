"""An assessment's row holds its plan

Since 0011 a stored assessment is one row: its plan, an exercise prescription in the API, has
no row of its own. Its id is the assessment's with the UUID's version digit 8 instead of 7, and
everything in it is read from the assessment's row (service.storage.inline_plans). Plans stored
before keep their rows and their ids, and read as they did: the upgrade rewrites none of them.

Releases before 0011 know only plans with rows. So the downgrade gives each plan an
assessment's row holds a row of its own, as those releases stored it (same id, the
assessment's time, request id, version, subject and level, a request naming the assessment,
its answer read from the assessment's), a batch at a time in id order; the upgrade deletes
those rows again (a plan's row whose id has an 8 there and whose assessment's row holds it:
no other row has such an id), so that no plan is stored twice.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

from service.storage.packing import pack_request

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH = 500

records = sa.table(
    "records",
    *(
        sa.column(name, sa.String)
        for name in (
            "id",
            "kind",
            "assessment_id",
            "plan_id",
            "reassessment_of",
            "request_id",
            "rules_version",
            "subject_system",
            "subject_value",
            "triage_level",
            "idempotency_key",
            "request_fingerprint",
        )
    ),
    sa.column("tenant_id", sa.Integer),
    sa.column("api_key_id", sa.Integer),
    # Aware, as the service writes it: a naive value would pass through the session's zone.
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("request", sa.JSON),
    sa.column("response", sa.JSON),
    sa.column("answer", sa.LargeBinary),
    sa.column("request_packed", sa.LargeBinary),
)

# The version digit of a UUID's text form is its 15th character (SQL counts from 1).
_PLAN_ID = sa.func.substr(records.c.plan_id, 15, 1) == "8"
_OWN_ID = sa.func.substr(records.c.id, 15, 1) == "8"
_SHARED = (
    "tenant_id",
    "api_key_id",
    "created_at",
    "request_id",
    "rules_version",
    "subject_system",
    "subject_value",
    "triage_level",
)


def upgrade() -> None:
    holder = records.alias("holder")
    made_going_down = sa.exists().where(
        holder.c.id == records.c.assessment_id,
        holder.c.kind == "assessment",
        holder.c.plan_id == records.c.id,
    )
    op.execute(
        sa.delete(records).where(
            records.c.kind == "exercise_prescription",
            _OWN_ID,
            records.c.answer.is_(None),
            made_going_down,
        )
    )


def downgrade() -> None:
    bind = op.get_bind()
    query = sa.select(records.c.id, records.c.plan_id, *(records.c[name] for name in _SHARED))
    query = query.where(records.c.kind == "assessment", _PLAN_ID)
    last = ""
    while rows := bind.execute(
        query.where(records.c.id > last).order_by(records.c.id).limit(BATCH)
    ).all():
        bind.execute(sa.insert(records), [_plan_row(row) for row in rows])
        last = rows[-1].id


def _plan_row(assessment) -> dict:
    """A plan's row as 0010 stored it: its answer none, read from its assessment's."""
    request = orjson.dumps({"assessment_id": assessment.id})
    return {
        **{name: getattr(assessment, name) for name in _SHARED},
        "id": assessment.plan_id,
        "kind": "exercise_prescription",
        "assessment_id": assessment.id,
        "plan_id": None,
        "reassessment_of": None,
        "request": None,
        "request_packed": pack_request(request),
        "response": None,
        "answer": None,
        "idempotency_key": None,
        "request_fingerprint": None,
    }
