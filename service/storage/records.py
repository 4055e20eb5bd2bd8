"""Stored assessments and exercise prescriptions: append-only, per tenant, erasable.

Every query is scoped to one tenant: a record of another tenant is indistinguishable from one
that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import exc

from service.storage.answers import is_plan_of, pack, plan_of, unpack
from service.storage.connections import Connections
from service.storage.errors import translate_unavailable
from service.storage.keys import hash_key
from service.storage.tables import cds_feedback, erased_idempotency_keys, erasures, records

ASSESSMENT = "assessment"
EXERCISE_PRESCRIPTION = "exercise_prescription"
KINDS = (ASSESSMENT, EXERCISE_PRESCRIPTION)


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was first used with another request (method, path or body)."""


class IdempotencyKeyErased(Exception):
    """The Idempotency-Key belonged to a record that was erased: a retry must not store the
    erased data again."""


class PartOfAssessment(Exception):
    """The prescription is an assessment's plan: it is erased with the assessment."""

    def __init__(self, assessment_id: str) -> None:
        super().__init__(assessment_id)
        self.assessment_id = assessment_id


class AssessmentNotFound(Exception):
    """The tenant has no assessment with this id (never had, or it was erased): the one a
    prescription or a reassessment was to be made from."""

    def __init__(self, assessment_id: str) -> None:
        super().__init__(assessment_id)
        self.assessment_id = assessment_id


class InvalidCursor(ValueError):
    """A pagination cursor this service did not issue."""


def new_record_id() -> str:
    """A UUIDv7 (RFC 9562): random enough not to be guessed, and ordered by creation time, so
    new rows land at the end of the primary-key index instead of all over it."""
    milliseconds = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = (milliseconds & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((random_bits >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= random_bits & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


@dataclass(frozen=True, slots=True)
class Subject:
    system: str
    value: str


@dataclass(slots=True)
class NewRecord:
    """A record about to be stored. ``id`` is chosen before the insert so that an assessment
    and its plan can point at each other in one statement."""

    kind: str
    rules_version: str
    request: dict[str, Any]
    response: dict[str, Any]
    subject: Subject | None = None
    triage_level: str | None = None
    assessment_id: str | None = None
    plan_id: str | None = None
    reassessment_of: str | None = None
    id: str = field(default_factory=new_record_id)


@dataclass(frozen=True, slots=True)
class RecordSummary:
    id: str
    kind: str
    created_at: datetime
    request_id: str
    rules_version: str
    subject: Subject | None
    triage_level: str | None
    assessment_id: str | None
    plan_id: str | None
    # For a reassessment: the assessment whose report it re-evaluated.
    reassessment_of: str | None


@dataclass(frozen=True, slots=True)
class Record(RecordSummary):
    """A summary with what was asked and what was answered: ``response_json`` is the answer's
    JSON bytes exactly as they were given; ``response`` the same, decoded when first read."""

    request: dict[str, Any]
    response_json: bytes
    _decoded: list = field(default_factory=list, compare=False, repr=False)

    @property
    def response(self) -> dict[str, Any]:
        if not self._decoded:
            self._decoded.append(orjson.loads(self.response_json))
        return self._decoded[0]


@dataclass(frozen=True, slots=True)
class RecordPage:
    items: list[RecordSummary]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class FullRecordPage:
    items: list[Record]
    next_cursor: str | None


# An assessment's plan is read from its assessment's answer: the full columns carry the
# assessment's answer along (an outer join on the primary key; nothing for other records).
_assessment = records.alias("assessment_of_plan")

_FULL = (
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
    records.c.request,
    records.c.response,
    records.c.answer,
    _assessment.c.response.label("assessment_response"),
    _assessment.c.answer.label("assessment_answer"),
)
_SUMMARY = _FULL[:-5]


def _select_full():
    """SELECT of whole records, each with its assessment's answer when it is a plan."""
    return sa.select(*_FULL).select_from(
        records.outerjoin(
            _assessment,
            sa.and_(
                _assessment.c.id == records.c.assessment_id,
                _assessment.c.plan_id == records.c.id,
            ),
        )
    )


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


def _record(row) -> Record:
    answer = _answer_json(row.answer, row.response)
    if answer is None:
        assessment = _answer_json(row.assessment_answer, row.assessment_response)
        if assessment is None:
            raise ValueError(f"record {row.id} holds no answer")  # never: not stored so
        answer = orjson.dumps(plan_of(orjson.loads(assessment)))
    return Record(*_head(row), row.request, answer)


def _summary(row) -> RecordSummary:
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
        new_records: Sequence[NewRecord],
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[list[Record], bool]:
        """Store records in one INSERT statement (all or none); the first is the one the client
        asked for.

        With an idempotency key, a key already used with the same fingerprint returns the
        records stored then, and ``True`` (a replay); with another fingerprint it raises
        IdempotencyKeyReused. Two concurrent requests with one key store one set of records:
        the unique index on (tenant, key) makes the second insert wait for the first and fail.
        """
        now = datetime.now(UTC)
        answers = [orjson.dumps(record.response) for record in new_records]
        plans = _plans_among(new_records)
        rows = [
            {
                "id": record.id,
                "tenant_id": tenant_id,
                "api_key_id": api_key_id,
                "kind": record.kind,
                "assessment_id": record.assessment_id,
                "plan_id": record.plan_id,
                "reassessment_of": record.reassessment_of,
                "created_at": now,
                "request_id": request_id,
                "rules_version": record.rules_version,
                "subject_system": record.subject.system if record.subject else None,
                "subject_value": record.subject.value if record.subject else None,
                "triage_level": record.triage_level,
                "request": record.request,
                # The answer's JSON bytes compressed; nothing for a plan, read from its
                # assessment's answer.
                "response": None,
                "answer": None if record.id in plans else pack(answer),
                "idempotency_key": idempotency_key if index == 0 else None,
                "request_fingerprint": fingerprint if index == 0 else None,
            }
            for index, (record, answer) in enumerate(zip(new_records, answers, strict=True))
        ]
        # One INSERT statement for all the rows, whatever their number.
        insert, parameters = _INSERT, rows
        # Two attempts: the second only when the record a key pointed to was erased between
        # our insert failing and our reading it, which frees the key.
        for attempt in range(2):
            try:
                if idempotency_key is None:
                    # One statement, committed on its own (autocommit): one round trip, no
                    # BEGIN and COMMIT around it, and durable before the client hears of it.
                    with self._storage.reading() as connection:
                        # The pool's check of a connection that sat idle can leave it in a
                        # transaction, in which autocommit cannot be set: end it (when there
                        # is none, as is usual, this costs nothing, not even a round trip).
                        connection.connection.dbapi_connection.rollback()
                        connection.execution_options(isolation_level="AUTOCOMMIT")
                        connection.execute(insert, parameters).all()
                else:
                    with self._storage.transaction() as connection:
                        _refuse_erased_key(connection, tenant_id, idempotency_key)
                        connection.execute(insert, parameters).all()
                break
            except exc.IntegrityError:
                outcome = self._after_conflict(tenant_id, new_records, idempotency_key, fingerprint)
                if isinstance(outcome, list):
                    return outcome, True
                if outcome is not _TRY_AGAIN or attempt == 1:
                    raise  # a constraint this code does not expect to break: a defect
        return [
            Record(
                row["id"],
                row["kind"],
                now,
                request_id,
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
        ], False

    def _after_conflict(
        self,
        tenant_id: int,
        new_records: Sequence[NewRecord],
        idempotency_key: str | None,
        fingerprint: str | None,
    ) -> list[Record] | object | None:
        """Why an insert broke a constraint: the records stored under the same idempotency key
        (a replay); IdempotencyKeyReused; AssessmentNotFound; _TRY_AGAIN when the key's record
        was erased meanwhile, freeing the key; None when none of these explains it."""
        if idempotency_key is not None:
            first = self._by_idempotency_key(tenant_id, idempotency_key)
            if first is not None:
                if first.request_fingerprint != fingerprint:
                    raise IdempotencyKeyReused(idempotency_key) from None
                stored = self._get_by_id(tenant_id, first.id)
                if stored is None:
                    return _TRY_AGAIN
                plan = stored.plan_id and self._get_by_id(tenant_id, stored.plan_id)
                return [stored, *([plan] if plan else [])]
        # The assessment a prescription or a reassessment is made from was erased meanwhile.
        own_ids = {record.id for record in new_records}
        for record in new_records:
            for source in (record.assessment_id, record.reassessment_of):
                if source and source not in own_ids and self._get_by_id(tenant_id, source) is None:
                    raise AssessmentNotFound(source) from None
        # With a key, its record may have been erased between the insert and the lookup.
        return _TRY_AGAIN if idempotency_key is not None else None

    def _by_idempotency_key(self, tenant_id: int, key: str):
        with self._storage.reading() as connection:
            return connection.execute(
                sa.select(records.c.id, records.c.request_fingerprint).where(
                    records.c.tenant_id == tenant_id, records.c.idempotency_key == key
                )
            ).first()

    def _get_by_id(self, tenant_id: int, record_id: str) -> Record | None:
        with self._storage.reading() as connection:
            row = connection.execute(
                _select_full().where(records.c.tenant_id == tenant_id, records.c.id == record_id)
            ).first()
        return _record(row) if row else None

    @translate_unavailable
    def get(self, tenant_id: int, kind: str, record_id: str) -> Record | None:
        with self._storage.reading() as connection:
            row = connection.execute(
                _select_full().where(
                    records.c.tenant_id == tenant_id,
                    records.c.kind == kind,
                    records.c.id == record_id,
                )
            ).first()
        return _record(row) if row else None

    @translate_unavailable
    def page(
        self,
        tenant_id: int,
        kind: str,
        *,
        limit: int,
        cursor: str | None = None,
        subject: Subject | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> RecordPage:
        """The tenant's records of one kind, newest first, ``limit`` at a time."""
        items, next_cursor = self._page(
            sa.select(*_SUMMARY),
            _summary,
            tenant_id,
            kind,
            limit=limit,
            cursor=cursor,
            subject=subject,
            created_after=created_after,
            created_before=created_before,
        )
        return RecordPage(items, next_cursor)

    @translate_unavailable
    def full_page(
        self, tenant_id: int, kind: str, *, limit: int, cursor: str | None = None
    ) -> FullRecordPage:
        """As ``page``, with each record's request and response: for walking through all of a
        tenant's records a page at a time, never all of them in memory."""
        items, next_cursor = self._page(
            _select_full(), _record, tenant_id, kind, limit=limit, cursor=cursor
        )
        return FullRecordPage(items, next_cursor)

    def _page(
        self,
        select: sa.Select,
        make: Callable[[Any], RecordSummary],
        tenant_id: int,
        kind: str,
        *,
        limit: int,
        cursor: str | None = None,
        subject: Subject | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> tuple[list, str | None]:
        query = select.where(records.c.tenant_id == tenant_id, records.c.kind == kind)
        if subject is not None:
            query = query.where(
                records.c.subject_system == subject.system,
                records.c.subject_value == subject.value,
            )
        if created_after is not None:
            query = query.where(records.c.created_at >= created_after)
        if created_before is not None:
            query = query.where(records.c.created_at < created_before)
        if cursor is not None:
            last_created, last_id = decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    records.c.created_at < last_created,
                    sa.and_(records.c.created_at == last_created, records.c.id < last_id),
                )
            )
        query = query.order_by(records.c.created_at.desc(), records.c.id.desc()).limit(limit + 1)
        with self._storage.reading() as connection:
            rows = connection.execute(query).all()
        items = [make(row) for row in rows[:limit]]
        more = len(rows) > limit
        return items, (
            encode_cursor(items[-1].created_at, items[-1].id) if more and items else None
        )

    @translate_unavailable
    def erase(self, tenant_id: int, api_key_id: int | None, kind: str, record_id: str) -> bool:
        """Delete a record for real, with everything derived from it: an assessment's plan,
        the prescriptions made from it, its reassessments, and theirs in turn.

        False when the tenant has no such record. A prescription that is an assessment's plan
        raises PartOfAssessment: erasing the assessment erases it. (The foreign keys cascade
        too, so a reassessment stored while its original is being erased cannot outlive it.)
        """
        with self._storage.transaction() as connection:
            row = connection.execute(
                sa.select(records.c.id, records.c.assessment_id).where(
                    records.c.tenant_id == tenant_id,
                    records.c.kind == kind,
                    records.c.id == record_id,
                )
            ).first()
            if row is None:
                return False
            if row.assessment_id is not None:
                raise PartOfAssessment(row.assessment_id)
            derived = _derived_from(connection, tenant_id, record_id)
            _remember_erased_keys(connection, tenant_id, [record_id, *derived])
            _erase_feedback(connection, tenant_id, [record_id, *derived])
            for chunk in _chunks(derived):
                connection.execute(
                    sa.delete(records).where(
                        records.c.tenant_id == tenant_id, records.c.id.in_(chunk)
                    )
                )
            connection.execute(
                sa.delete(records).where(
                    records.c.tenant_id == tenant_id, records.c.id == record_id
                )
            )
            connection.execute(
                sa.insert(erasures).values(
                    tenant_id=tenant_id,
                    api_key_id=api_key_id,
                    record_id=record_id,
                    kind=kind,
                    records_erased=1 + len(derived),
                    erased_at=datetime.now(UTC),
                )
            )
        self._storage.scrub_after_erasure()
        return True


# Several rows in one INSERT ... VALUES (...), (...) statement: given a list of rows and
# RETURNING, SQLAlchemy sends them as one such statement ("insertmanyvalues"), compiled once and
# cached (a statement built with .values(rows) is compiled anew each time, which costs more
# than the insert itself).
_INSERT = sa.insert(records).returning(records.c.id)


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


# Ids per IN (...) list: well under every database's limit on bound parameters.
_IN_LIST_SIZE = 500


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[start : start + _IN_LIST_SIZE] for start in range(0, len(ids), _IN_LIST_SIZE)]


def _derived_from(connection, tenant_id: int, record_id: str) -> list[str]:
    """The ids of every record derived from this one, at any depth: prescriptions made from
    it (its plan among them) and reassessments of it, then those derived from these."""
    found: list[str] = []
    seen = {record_id}
    frontier = [record_id]
    while frontier:
        children: list[str] = []
        for chunk in _chunks(frontier):
            children += connection.execute(
                sa.select(records.c.id).where(
                    records.c.tenant_id == tenant_id,
                    sa.or_(
                        records.c.assessment_id.in_(chunk),
                        records.c.reassessment_of.in_(chunk),
                    ),
                )
            ).scalars()
        frontier = [child for child in dict.fromkeys(children) if child not in seen]
        seen.update(frontier)
        found += frontier
    return found


def _refuse_erased_key(connection, tenant_id: int, key: str) -> None:
    erased = connection.execute(
        sa.select(erased_idempotency_keys.c.erased_at).where(
            erased_idempotency_keys.c.tenant_id == tenant_id,
            erased_idempotency_keys.c.key_hash == hash_key(key),
        )
    ).first()
    if erased is not None:
        raise IdempotencyKeyErased()


def _remember_erased_keys(connection, tenant_id: int, record_ids: list[str]) -> None:
    """Keep the hashes of the Idempotency-Keys of records about to be erased."""
    keys: list[str] = []
    for chunk in _chunks(record_ids):
        keys += connection.execute(
            sa.select(records.c.idempotency_key).where(
                records.c.tenant_id == tenant_id,
                records.c.id.in_(chunk),
                records.c.idempotency_key.is_not(None),
            )
        ).scalars()
    if keys:
        now = datetime.now(UTC)
        connection.execute(
            sa.insert(erased_idempotency_keys),
            [{"tenant_id": tenant_id, "key_hash": hash_key(key), "erased_at": now} for key in keys],
        )


def _erase_feedback(connection, tenant_id: int, record_ids: list[str]) -> None:
    """CDS feedback on the cards of erased records: a card's id is its assessment's id, and
    feedback can carry a clinician's comment about the patient."""
    for chunk in _chunks(record_ids):
        connection.execute(
            sa.delete(cds_feedback).where(
                cds_feedback.c.tenant_id == tenant_id, cds_feedback.c.card_id.in_(chunk)
            )
        )
