"""What the record store takes and gives: record kinds, records new and stored, pages of them,
and the errors a caller handles."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

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
    """A record about to be stored. ``id`` is chosen before the insert: an assessment's plan's
    id is made from it (service.storage.inline_plans)."""

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
