"""An assessment's plan, kept in the assessment's own row.

An assessment's plan is an exercise prescription record in the API (its own id, its own
``GET`` and CarePlan, erased with its assessment), but everything it holds follows from its
assessment: the same time, request id, rules version, subject and level; a request that names
the assessment; an answer read from the assessment's answer (``service.storage.answers``). So
storing an assessment writes one row, its own, which holds its plan too
(``service.storage.record_rows`` reads a plan out of it).

Its plan's id is the assessment's own UUID with another version digit: 8 (RFC 9562's version
for UUIDs of an application's own layout) in place of the 7 of ``new_record_id``. Every other
bit is the assessment's, so each id gives the other without a lookup or an index, and a plan's
id still says nothing a client could guess. Plans stored before, as rows of their own with ids
of their own, keep them and are read as they always were; no row's id has an 8 there.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from service.storage.record_types import ASSESSMENT, EXERCISE_PRESCRIPTION
from service.storage.tables import records

_VERSION_AT = 14  # the version digit's index in a UUID's text form (8-4-4-4-12)
_RECORD_VERSION = "7"
_PLAN_VERSION = "8"
_UUID_LENGTH = 36
_HYPHENS_AT = (8, 13, 18, 23)


def _is_plans(column: sa.Column) -> sa.ColumnElement[bool]:
    """Whether the id in this column is a held plan's. (SQL's substr counts from 1.)"""
    return sa.func.substr(column, _VERSION_AT + 1, 1) == _PLAN_VERSION


# The rows of assessments whose plan they hold.
HOLDS_ITS_PLAN = sa.and_(records.c.kind == ASSESSMENT, _is_plans(records.c.plan_id))

# How many records a database holds, each plan an assessment's row holds counted as the record
# it is. On a database taken down to 0010 such a plan also has a row of its own, with the
# plan's id: that row is not counted a second time. Plain SQL that both databases run (a
# backup counts on the driver alone), made once from the conditions above.
_PLAN_ROW = sa.and_(records.c.kind == EXERCISE_PRESCRIPTION, _is_plans(records.c.id))
_COUNTED = sa.case((HOLDS_ITS_PLAN, 1), (_PLAN_ROW, -1), else_=0)
COUNT_RECORDS = str(
    sa.select(sa.func.count() + sa.func.coalesce(sa.func.sum(_COUNTED), 0))
    .select_from(records)
    .compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
)


def _with_version(record_id: str, version: str) -> str:
    return record_id[:_VERSION_AT] + version + record_id[_VERSION_AT + 1 :]


def plan_id_for(assessment_id: str) -> str:
    """The id of the plan an assessment's row holds."""
    if assessment_id[_VERSION_AT] != _RECORD_VERSION:
        raise ValueError(f"not an id of this service's records: {assessment_id!r}")
    return _with_version(assessment_id, _PLAN_VERSION)


def assessment_id_for(plan_id: str | None) -> str | None:
    """The id of the assessment whose row holds this plan; None when the id is not one of a
    plan held so (a record with a row of its own, or no record at all)."""
    if (
        plan_id is None
        or len(plan_id) != _UUID_LENGTH
        or plan_id[_VERSION_AT] != _PLAN_VERSION
        or any(plan_id[index] != "-" for index in _HYPHENS_AT)
    ):
        return None
    return _with_version(plan_id, _RECORD_VERSION)


def holds_its_plan(row) -> bool:
    """Whether an assessment's row (any row of ``records``) holds its plan."""
    return (
        row.kind == ASSESSMENT
        and row.plan_id is not None
        and assessment_id_for(row.plan_id) == row.id
    )


def plan_request(assessment_id: str) -> dict[str, Any]:
    """What a plan held by its assessment was asked with, as a plan stored alone shows it."""
    return {"assessment_id": assessment_id}
