"""How new records become rows, and the one statement that stores them.

A stored assessment is one INSERT committed on its own (autocommit): no BEGIN and COMMIT
around it, so one round trip, and durable before the client hears of it. With an
Idempotency-Key the same statement also refuses a key whose record was erased: it inserts
nothing when the key's hash is among the erased keys, so the check costs no round trip of its
own.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa

from service.storage.driver_statements import DriverStatement
from service.storage.keys import hash_key
from service.storage.packing import pack_answer, pack_request
from service.storage.record_types import NewRecord, Record
from service.storage.tables import erased_idempotency_keys, records

_COLUMNS = tuple(records.c)
_NAMES = tuple(column.name for column in _COLUMNS)
# Each column's name, and whether None there is SQL NULL (not so in a JSON column: JSON null).
_NONE_IS_SQL_NULL = tuple((c.name, not isinstance(c.type, sa.JSON)) for c in _COLUMNS)


def _values(nulls: tuple[bool, ...]) -> list[sa.ColumnElement]:
    """The row's values: NULL written in the statement for the columns left empty (no
    parameter for the driver and the database to handle), a parameter for the others. The
    NULL is typed: PostgreSQL takes an untyped one in a SELECT's list for text."""
    return [
        sa.cast(sa.null(), column.type) if null else sa.bindparam(column.name, type_=column.type)
        for column, null in zip(_COLUMNS, nulls, strict=True)
    ]


# Which columns a record leaves empty depends on which optional values its request has: a few
# combinations. The bound keeps odd callers in check.
@lru_cache(maxsize=64)
def _insert(nulls: tuple[bool, ...]) -> DriverStatement:
    """INSERT ... VALUES (...) RETURNING id, compiled once per set of empty columns."""
    row = dict(zip(_COLUMNS, _values(nulls), strict=True))
    return DriverStatement(sa.insert(records).values(row).returning(records.c.id))


@lru_cache(maxsize=64)
def _insert_unless_erased(nulls: tuple[bool, ...]) -> DriverStatement:
    """INSERT ... SELECT the row WHERE the key is not among the erased ones."""
    key_not_erased = ~sa.exists().where(
        erased_idempotency_keys.c.tenant_id == sa.bindparam("erased_tenant_id"),
        erased_idempotency_keys.c.key_hash == sa.bindparam("erased_key_hash"),
    )
    source = sa.select(*_values(nulls)).where(key_not_erased)
    return DriverStatement(sa.insert(records).from_select(_NAMES, source).returning(records.c.id))


def insert_statement(
    row: dict[str, Any], tenant_id: int, idempotency_key: str | None
) -> tuple[DriverStatement, dict[str, Any]]:
    """The statement storing this row, with its parameters."""
    # Comprehensions over precomputed names: this runs for every stored record.
    nulls = tuple([row[name] is None and sql_null for name, sql_null in _NONE_IS_SQL_NULL])
    parameters = {name: row[name] for name, null in zip(_NAMES, nulls, strict=True) if not null}
    if idempotency_key is None:
        return _insert(nulls), parameters
    parameters["erased_tenant_id"] = tenant_id
    parameters["erased_key_hash"] = hash_key(idempotency_key)
    return _insert_unless_erased(nulls), parameters


def row_for(
    record: NewRecord,
    answer: bytes,
    *,
    tenant_id: int,
    api_key_id: int | None,
    request_id: str,
    created_at: datetime,
    idempotency_key: str | None,
    fingerprint: str | None,
) -> dict[str, Any]:
    """A record's row. An assessment's holds its plan too (``inline_plans``): the plan has
    no row of its own."""
    return {
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
        # The answer's JSON bytes compressed; JSON null in the column of the older form.
        "response": None,
        "answer": pack_answer(answer),
        "idempotency_key": idempotency_key,
        "request_fingerprint": fingerprint,
    }


def stored_record(row: dict[str, Any], record: NewRecord, answer: bytes) -> Record:
    """The record as stored, without reading it back."""
    return Record(
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
