"""Stored assessments and exercise prescriptions: append-only, per tenant, erasable.

Every query is scoped to one tenant: a record of another tenant is indistinguishable from one
that does not exist. How rows are written, read and erased lives beside this module
(record_writes, record_rows, erasure); the store holds the queries' order and their errors.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import exc

from service.storage.connections import Connections
from service.storage.erasure import erase_record
from service.storage.errors import translate_unavailable
from service.storage.inline_plans import assessment_id_for, holds_its_plan
from service.storage.record_rows import (
    RECORD_BY_ID,
    RECORD_OF_KIND_BY_ID,
    SELECT_FULL,
    SUMMARY_COLUMNS,
    decode_cursor,
    encode_cursor,
    held_plan_from_row,
    owned_by,
    record_from_row,
    summary_from_row,
)
from service.storage.record_types import (
    ASSESSMENT,
    EXERCISE_PRESCRIPTION,
    KINDS,
    AssessmentNotFound,
    FullRecordPage,
    IdempotencyKeyErased,
    IdempotencyKeyReused,
    InvalidCursor,
    NewRecord,
    PartOfAssessment,
    Record,
    RecordPage,
    RecordSummary,
    Subject,
    new_record_id,
)
from service.storage.record_writes import insert_statement, row_for, stored_record
from service.storage.tables import records

__all__ = [
    "ASSESSMENT",
    "EXERCISE_PRESCRIPTION",
    "KINDS",
    "AssessmentNotFound",
    "FullRecordPage",
    "IdempotencyKeyErased",
    "IdempotencyKeyReused",
    "InvalidCursor",
    "NewRecord",
    "PartOfAssessment",
    "Record",
    "RecordPage",
    "RecordStore",
    "RecordSummary",
    "Subject",
    "new_record_id",
]

_TRY_AGAIN = object()


class RecordStore:
    def __init__(self, storage: Connections) -> None:
        self._storage = storage

    @translate_unavailable
    def create(
        self,
        *,
        tenant_id: int,
        api_key_id: int | None,
        request_id: str,
        new_record: NewRecord,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[Record, bool]:
        """Store a record in one INSERT statement and return it as stored, and whether it is a
        replay. An assessment's row holds its plan (``inline_plans``).

        With an idempotency key, a key already used with the same fingerprint returns the
        record stored then, and ``True`` (a replay); with another fingerprint it raises
        IdempotencyKeyReused; the key of an erased record raises IdempotencyKeyErased. Two
        concurrent requests with one key store one record: the unique index on (tenant, key)
        makes the second insert wait for the first and fail.
        """
        answer = orjson.dumps(new_record.response)
        row = row_for(
            new_record,
            answer,
            tenant_id=tenant_id,
            api_key_id=api_key_id,
            request_id=request_id,
            created_at=datetime.now(UTC),
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        statement, parameters = insert_statement(row, tenant_id, idempotency_key)
        # Two attempts: the second only when the record a key pointed to was erased between
        # our insert failing and our reading it, which frees the key.
        for attempt in range(2):
            try:
                with self._storage.write() as connection:
                    inserted = statement.rows(connection, parameters)
            except exc.IntegrityError:
                outcome = self._after_conflict(tenant_id, new_record, idempotency_key, fingerprint)
                if isinstance(outcome, Record):
                    return outcome, True
                if outcome is not _TRY_AGAIN or attempt == 1:
                    raise  # a constraint this code does not expect to break: a defect
                continue
            if not inserted:  # only the erased-key condition inserts nothing
                raise IdempotencyKeyErased()
            return stored_record(row, new_record, answer), False
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _after_conflict(
        self,
        tenant_id: int,
        new_record: NewRecord,
        idempotency_key: str | None,
        fingerprint: str | None,
    ) -> Record | object | None:
        """Why an insert broke a constraint: the record stored first under the same idempotency
        key (a replay); IdempotencyKeyReused; AssessmentNotFound; _TRY_AGAIN when the key's record
        was erased meanwhile, freeing the key; None when none of these explains it."""
        if idempotency_key is not None:
            first = self._by_idempotency_key(tenant_id, idempotency_key)
            if first is not None:
                if first.request_fingerprint != fingerprint:
                    raise IdempotencyKeyReused(idempotency_key) from None
                replayed = self._get_by_id(tenant_id, first.id)
                return _TRY_AGAIN if replayed is None else replayed
        # The assessment a prescription or a reassessment is made from was erased meanwhile.
        for source in (new_record.assessment_id, new_record.reassessment_of):
            if source and self._get_by_id(tenant_id, source) is None:
                raise AssessmentNotFound(source) from None
        # With a key, its record may have been erased between the insert and the lookup.
        return _TRY_AGAIN if idempotency_key is not None else None

    def _by_idempotency_key(self, tenant_id: int, key: str):
        with self._storage.autocommit() as connection:
            return connection.execute(
                sa.select(records.c.id, records.c.request_fingerprint).where(
                    records.c.tenant_id == tenant_id, records.c.idempotency_key == key
                )
            ).first()

    def _get_by_id(self, tenant_id: int, record_id: str) -> Record | None:
        with self._storage.autocommit() as connection:
            row = RECORD_BY_ID.first(connection, {"record_id": record_id})
        return record_from_row(row) if owned_by(row, tenant_id) else None

    @translate_unavailable
    def get(self, tenant_id: int, kind: str, record_id: str | None) -> Record | None:
        """The tenant's record of this kind and id; None when there is none (or no id)."""
        if record_id is None:  # an assessment stored without a plan links to none
            return None
        holder = assessment_id_for(record_id) if kind == EXERCISE_PRESCRIPTION else None
        if holder is not None:  # a plan held by its assessment's row
            kind, record_id = ASSESSMENT, holder
        with self._storage.autocommit() as connection:
            row = RECORD_OF_KIND_BY_ID.first(connection, {"kind": kind, "record_id": record_id})
        if not owned_by(row, tenant_id):
            return None
        if holder is None:
            return record_from_row(row)
        return held_plan_from_row(row) if holds_its_plan(row) else None

    @translate_unavailable
    def page(
        self,
        tenant_id: int,
        *,
        limit: int,
        cursor: str | None = None,
        subject: Subject | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> RecordPage:
        """The tenant's assessments, newest first, ``limit`` at a time. (Prescriptions are not
        listed: an assessment's plan is reached through its assessment, and its row is its
        assessment's.)"""
        query = sa.select(*SUMMARY_COLUMNS)
        if subject is not None:
            query = query.where(
                records.c.subject_system == subject.system,
                records.c.subject_value == subject.value,
            )
        if created_after is not None:
            query = query.where(records.c.created_at >= created_after)
        if created_before is not None:
            query = query.where(records.c.created_at < created_before)
        items, next_cursor = self._page(query, summary_from_row, tenant_id, limit, cursor)
        return RecordPage(items, next_cursor)

    @translate_unavailable
    def full_page(self, tenant_id: int, *, limit: int, cursor: str | None = None) -> FullRecordPage:
        """As ``page``, with each assessment's request and response: for walking through all
        of a tenant's assessments a page at a time, never all of them in memory."""
        items, next_cursor = self._page(SELECT_FULL, record_from_row, tenant_id, limit, cursor)
        return FullRecordPage(items, next_cursor)

    def _page(
        self,
        query: sa.Select,
        make: Callable[[Any], RecordSummary],
        tenant_id: int,
        limit: int,
        cursor: str | None,
    ) -> tuple[list, str | None]:
        query = query.where(records.c.tenant_id == tenant_id, records.c.kind == ASSESSMENT)
        if cursor is not None:
            last_created, last_id = decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    records.c.created_at < last_created,
                    sa.and_(records.c.created_at == last_created, records.c.id < last_id),
                )
            )
        query = query.order_by(records.c.created_at.desc(), records.c.id.desc()).limit(limit + 1)
        with self._storage.autocommit() as connection:
            rows = connection.execute(query).all()
        items = [make(row) for row in rows[:limit]]
        more = len(rows) > limit
        return items, (
            encode_cursor(items[-1].created_at, items[-1].id) if more and items else None
        )

    @translate_unavailable
    def erase(self, tenant_id: int, api_key_id: int | None, kind: str, record_id: str) -> bool:
        """Delete a record for real, with everything derived from it (see ``erase_record``);
        False when the tenant has no such record."""
        with self._storage.transaction() as connection:
            erased = erase_record(connection, tenant_id, api_key_id, kind, record_id)
        if erased:
            self._storage.scrub_after_erasure()
        return erased
