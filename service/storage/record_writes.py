"""How new records become rows, and the one statement that stores them.

A stored assessment is one INSERT committed on its own (autocommit): no BEGIN and COMMIT
around it, so one round trip, and durable before the client hears of it. With an
Idempotency-Key the same statement also refuses a key whose record was erased: it inserts
nothing when the key's hash is among the erased keys, so the check costs no round trip of its
own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

import orjson
import sqlalchemy as sa

from service.storage.answers import is_plan_of
from service.storage.driver_statements import DriverStatement
from service.storage.keys import hash_key
from service.storage.packing import pack_answer, pack_request
from service.storage.record_types import NewRecord, Record
from service.storage.tables import erased_idempotency_keys, records

_COLUMNS = tuple(column.name for column in records.c)


def _row_parameters(row_count: int) -> list[dict[str, sa.BindParameter]]:
    return [
        {
            column.name: sa.bindparam(f"{column.name}_{index}", type_=column.type)
            for column in records.c
        }
        for index in range(row_count)
    ]


@cache
def _insert(row_count: int) -> DriverStatement:
    """INSERT ... VALUES (...), (...) RETURNING id, one statement per number of rows (an
    assessment and its plan are two), compiled once each."""
    return DriverStatement(
        sa.insert(records).values(_row_parameters(row_count)).returning(records.c.id)
    )


@cache
def _insert_unless_erased(row_count: int) -> DriverStatement:
    """INSERT ... SELECT the rows WHERE the key is not among the erased ones."""
    key_not_erased = ~sa.exists().where(
        erased_idempotency_keys.c.tenant_id == sa.bindparam("erased_tenant_id"),
        erased_idempotency_keys.c.key_hash == sa.bindparam("erased_key_hash"),
    )
    selects = [sa.select(*row.values()).where(key_not_erased) for row in _row_parameters(row_count)]
    source = selects[0] if row_count == 1 else sa.union_all(*selects)
    return DriverStatement(sa.insert(records).from_select(_COLUMNS, source).returning(records.c.id))


def insert_statement(
    rows: list[dict[str, Any]], tenant_id: int, idempotency_key: str | None
) -> tuple[DriverStatement, dict[str, Any]]:
    """The statement storing these rows, with its parameters."""
    parameters = {
        f"{name}_{index}": value for index, row in enumerate(rows) for name, value in row.items()
    }
    if idempotency_key is None:
        return _insert(len(rows)), parameters
    parameters["erased_tenant_id"] = tenant_id
    parameters["erased_key_hash"] = hash_key(idempotency_key)
    return _insert_unless_erased(len(rows)), parameters


def rows_for(
    new_records: Sequence[NewRecord],
    answers: list[bytes],
    *,
    tenant_id: int,
    api_key_id: int | None,
    request_id: str,
    created_at: datetime,
    idempotency_key: str | None,
    fingerprint: str | None,
) -> list[dict[str, Any]]:
    """One row per record; the key and fingerprint go on the first, the one asked for."""
    plans = _plans_among(new_records)
    return [
        {
            "id": record.id,
            "tenant_id": tenant_id,
            "api_key_id": api_key_id,
            "kind": record.kind,
            "assessment_id": record.assessment_id,
            "plan_id": record.plan_id,
            "reassessment_of": record.reassessment_of,
            "created_at": created_at,
            "request_id": request_id,
            "rules_version": record.rules_version,
            "subject_system": record.subject.system if record.subject else None,
            "subject_value": record.subject.value if record.subject else None,
            "triage_level": record.triage_level,
            # The report's JSON bytes packed; JSON null in the column of the older form.
            "request": None,
            "request_packed": pack_request(orjson.dumps(record.request)),
            # The answer's JSON bytes compressed; nothing for a plan, read from its
            # assessment's answer.
            "response": None,
            "answer": None if record.id in plans else pack_answer(answer),
            "idempotency_key": idempotency_key if index == 0 else None,
            "request_fingerprint": fingerprint if index == 0 else None,
        }
        for index, (record, answer) in enumerate(zip(new_records, answers, strict=True))
    ]


def answers_of(new_records: Sequence[NewRecord]) -> list[bytes]:
    return [orjson.dumps(record.response) for record in new_records]


def stored(
    rows: list[dict[str, Any]], new_records: Sequence[NewRecord], answers: list[bytes]
) -> list[Record]:
    """The records as stored, without reading them back."""
    return [
        Record(
            row["id"],
            row["kind"],
            row["created_at"],
            row["request_id"],
            row["rules_version"],
            record.subject,
            row["triage_level"],
            row["assessment_id"],
            row["plan_id"],
            row["reassessment_of"],
            record.request,
            answer,
            [record.response],
        )
        for row, record, answer in zip(rows, new_records, answers, strict=True)
    ]


def _plans_among(new_records: Sequence[NewRecord]) -> set[str]:
    """The ids of the records that are the plan of an assessment stored with them, whose answer
    is exactly the one read from the assessment's: they are stored without a copy of it."""
    by_id = {record.id: record for record in new_records}
    plans = set()
    for record in new_records:
        source = by_id.get(record.assessment_id or "")
        if source is None or source.plan_id != record.id:
            continue
        if is_plan_of(record.response, source.response):
            plans.add(record.id)
    return plans
