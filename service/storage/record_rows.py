"""How records are read back from rows: the columns selected, a row made a record (an
assessment's plan rebuilt from its assessment's answer, whether the plan has a row of its own or
is held by its assessment's), and the cursors of pages."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from service.storage.answers import plan_of
from service.storage.driver_statements import DriverStatement
from service.storage.inline_plans import plan_request
from service.storage.packing import unpack
from service.storage.record_types import (
    EXERCISE_PRESCRIPTION,
    InvalidCursor,
    Record,
    RecordSummary,
    Subject,
)
from service.storage.tables import records

# An assessment's plan is read from its assessment's answer: the full columns carry the
# assessment's answer along (an outer join on the primary key; nothing for other records).
_assessment = records.alias("assessment_of_plan")

SUMMARY_COLUMNS = (
    records.c.id,
    records.c.kind,
    records.c.created_at,
    records.c.request_id,
    records.c.rules_version,
    records.c.subject_system,
    records.c.subject_value,
    records.c.triage_level,
    records.c.assessment_id,
    records.c.plan_id,
    records.c.reassessment_of,
)
_FULL = (
    *SUMMARY_COLUMNS,
    records.c.request,
    records.c.request_packed,
    records.c.response,
    records.c.answer,
    _assessment.c.response.label("assessment_response"),
    _assessment.c.answer.label("assessment_answer"),
)


# SELECT of whole records, each with its assessment's answer when it is a plan. Built once:
# building a SELECT and its WHERE clause costs more CPU than SQLite takes to run it.
SELECT_FULL = sa.select(*_FULL).select_from(
    records.outerjoin(
        _assessment,
        sa.and_(
            _assessment.c.id == records.c.assessment_id,
            _assessment.c.plan_id == records.c.id,
        ),
    )
)


# A record is looked up by its primary key alone and its tenant compared on the row it returns
# (``owned_by``). With the tenant in the WHERE clause, PostgreSQL planned the lookup on an
# index that begins with tenant_id (the Idempotency-Key's) while the table had no statistics
# yet; a prepared statement kept that plan, and every lookup read all of the tenant's rows (the
# benchmark measured 5 ms of PostgreSQL CPU per GET after 10,000 records).
_BY_ID = SELECT_FULL.add_columns(records.c.tenant_id).where(
    records.c.id == sa.bindparam("record_id")
)
# Run on the driver's cursor: a GET of a record is the service's most frequent read.
RECORD_BY_ID = DriverStatement(_BY_ID)
RECORD_OF_KIND_BY_ID = DriverStatement(_BY_ID.where(records.c.kind == sa.bindparam("kind")))


def owned_by(row, tenant_id: int) -> bool:
    """Whether a row found by id is the tenant's: another tenant's record is, to this tenant,
    one that does not exist."""
    return row is not None and row.tenant_id == tenant_id


def _subject(row) -> Subject | None:
    if row.subject_system is None:
        return None
    return Subject(row.subject_system, row.subject_value)


def _head(row) -> tuple:
    """The fields a summary and a whole record share, in their order."""
    return (
        row.id,
        row.kind,
        row.created_at,
        row.request_id,
        row.rules_version,
        _subject(row),
        row.triage_level,
        row.assessment_id,
        row.plan_id,
        row.reassessment_of,
    )


def _answer_json(answer: bytes | None, response: Any) -> bytes | None:
    """A row's answer as JSON bytes: compressed (since 0008) or JSON (before); None for a plan
    read from its assessment's."""
    if answer is not None:
        return unpack(answer)
    if response is not None:
        return orjson.dumps(response)
    return None


def _plan_head(row) -> tuple:
    """The summary fields of the plan an assessment's row holds (``inline_plans``)."""
    return (
        row.plan_id,
        EXERCISE_PRESCRIPTION,
        row.created_at,
        row.request_id,
        row.rules_version,
        _subject(row),
        row.triage_level,
        row.id,
        None,
        None,
    )


def _plan_answer(assessment_answer: bytes | None, record_id: str) -> bytes:
    if assessment_answer is None:
        raise ValueError(f"record {record_id} holds no answer")  # never: not stored so
    return orjson.dumps(plan_of(orjson.loads(assessment_answer)))


def record_from_row(row) -> Record:
    answer = _answer_json(row.answer, row.response)
    if answer is None:  # a plan with a row of its own, stored before plans were held
        assessment = _answer_json(row.assessment_answer, row.assessment_response)
        answer = _plan_answer(assessment, row.id)
    return Record(*_head(row), _request(row.request_packed, row.request), answer)


def held_plan_from_row(row) -> Record:
    """The plan an assessment's row holds, as the record it is."""
    answer = _plan_answer(_answer_json(row.answer, row.response), row.id)
    return Record(*_plan_head(row), plan_request(row.id), answer)


def _request(packed: bytes | None, request: Any) -> Any:
    """What a record was sent: packed (since 0009) or JSON (before)."""
    return request if packed is None else orjson.loads(unpack(packed))


def summary_from_row(row) -> RecordSummary:
    return RecordSummary(*_head(row))


def encode_cursor(created_at: datetime, record_id: str) -> str:
    raw = orjson.dumps([created_at.isoformat(), record_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, record_id = orjson.loads(raw)
        when = datetime.fromisoformat(created)
        if when.tzinfo is None or not isinstance(record_id, str):
            raise ValueError
        return when.astimezone(UTC), record_id  # a time before year 1 in UTC overflows here
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidCursor("This cursor was not issued by this service.") from None
