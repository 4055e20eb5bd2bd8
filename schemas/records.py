"""Request schemas for stored records: the subject a record is about, the storage opt-out,
and the query that lists records.

The subject is pseudonymous by construction: a system (whose identifiers these are) and an
opaque value that identifies a person only to the client that holds the key to it. Spaces and
most punctuation are refused, so a name typed into the value is refused too.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from schemas.fields import StrictBoolean, StrictSchema, StrictString

# An absolute URI (FHIR Identifier.system): printable ASCII without spaces or "|" (the list
# filter's separator).
SUBJECT_SYSTEM_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*:[!-{}~]+$"
SUBJECT_SYSTEM_MAX = 255
# An opaque identifier: letters, digits and a few separators; never a name with spaces.
SUBJECT_VALUE_PATTERN = r"^[A-Za-z0-9._:/#~+=@-]+$"
SUBJECT_VALUE_MAX = 128
# "system|value", as the list filter takes it.
SUBJECT_FILTER_PATTERN = SUBJECT_SYSTEM_PATTERN[:-1] + r"\|" + SUBJECT_VALUE_PATTERN[1:]
# Cursors are base64url text issued by this service.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
CURSOR_MAX = 200
RECORD_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"

_SYSTEM = re.compile(SUBJECT_SYSTEM_PATTERN[:-1] + r"\Z")
_VALUE = re.compile(SUBJECT_VALUE_PATTERN[:-1] + r"\Z")
_RECORD_ID = re.compile(RECORD_ID_PATTERN[:-1] + r"\Z")
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN[:-1] + r"\Z")


def is_subject_system(value: object) -> bool:
    return type(value) is str and len(value) <= SUBJECT_SYSTEM_MAX and bool(_SYSTEM.match(value))


def is_subject_value(value: object) -> bool:
    return type(value) is str and len(value) <= SUBJECT_VALUE_MAX and bool(_VALUE.match(value))


def is_record_id(value: object) -> bool:
    return type(value) is str and bool(_RECORD_ID.match(value))


def _check(predicate, message: str):
    # Whole-string matches (\Z): marshmallow's Regexp would let a trailing newline through.
    def validator(value: str) -> None:
        if not predicate(value):
            raise ValidationError(message)

    return validator


def in_utc_range(value: datetime) -> None:
    """A time that exists in UTC (0001-01-01T00:00+14:00 does not: it is before year 1)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError("This time is out of range once converted to UTC.") from None


# A date alone, in a time filter: the start of that day in UTC.
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_ZONED_TIME = fields.AwareDateTime()
TIME_OR_DAY_FORMS = (
    "a time with its zone, as 2026-12-01T09:30:00Z or 2026-12-01T10:30:00+01:00, or a date "
    "alone, as 2026-12-01 (the start of that day, UTC)"
)


class TimeOrDay(fields.Field):
    """An ISO 8601 time with its zone, or a date alone, read as the start of that day in UTC.
    A time without a zone stays refused: which day it falls on would be a guess."""

    default_error_messages = {"invalid": f"Not a time: give {TIME_OR_DAY_FORMS}."}

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if _DAY.match(value):
            try:
                day = date.fromisoformat(value)
            except ValueError:
                raise self.make_error("invalid") from None
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        try:
            return _ZONED_TIME.deserialize(value)
        except ValidationError:
            raise self.make_error("invalid") from None


def time_or_day_metadata(description: str) -> dict:
    """The spec's view of a TimeOrDay: a date-time or a date."""
    return {
        "description": description,
        "type": "string",
        "anyOf": [{"format": "date-time"}, {"format": "date"}],
        "example": "2026-12-01",
    }


class SubjectSchema(StrictSchema):
    """Who the record is about, as a pseudonymous identifier the client supplies (FHIR
    Identifier: system and value). Never a name or any directly identifying detail: it is how
    an EHR later finds this person's records (GET /v1/assessments?subject=system|value)."""

    system = StrictString(
        required=True,
        validate=_check(is_subject_system, "Must be an absolute URI without spaces or '|'."),
        metadata={
            "description": "The namespace of the identifier: an absolute URI.",
            "pattern": SUBJECT_SYSTEM_PATTERN,
            "maxLength": SUBJECT_SYSTEM_MAX,
            "example": "https://fitness.example/member-ids",
        },
    )
    value = StrictString(
        required=True,
        validate=_check(
            is_subject_value,
            f"Must be an opaque identifier of at most {SUBJECT_VALUE_MAX} characters: letters, "
            "digits and ._:/#~+=@- only (no spaces, never a name).",
        ),
        metadata={
            "description": "The pseudonymous identifier within that namespace.",
            "pattern": SUBJECT_VALUE_PATTERN,
            "maxLength": SUBJECT_VALUE_MAX,
            "example": "m-4f9c2a",
        },
    )


def subject_field() -> fields.Field:
    return fields.Nested(SubjectSchema(), metadata={"description": SubjectSchema.__doc__})


def store_field(what: str) -> fields.Field:
    return StrictBoolean(
        metadata={
            "description": (
                f"Keep a record of the {what} (the default): the answer is 201 with its id and "
                "Location. false: 200, and nothing is written."
            ),
            "example": True,
        }
    )


def record_id_field(description: str, required: bool = False) -> fields.Field:
    return StrictString(
        required=required,
        validate=_check(is_record_id, "Not a record id."),
        metadata={"description": description, "pattern": RECORD_ID_PATTERN},
    )


class RecordListQuerySchema(Schema):
    """Query parameters of a record listing (query strings are text: numbers are parsed)."""

    subject = fields.String(
        validate=validate.Length(max=SUBJECT_SYSTEM_MAX + 1 + SUBJECT_VALUE_MAX),
        metadata={
            "description": "Only records about this subject, as system|value.",
            "pattern": SUBJECT_FILTER_PATTERN,
            "example": "https://fitness.example/member-ids|m-4f9c2a",
        },
    )
    created_after = TimeOrDay(
        validate=in_utc_range,
        metadata=time_or_day_metadata(
            "Only records created at or after this time: ISO 8601 with its zone "
            "(2026-12-01T09:30:00Z, 2026-12-01T10:30:00+01:00), or a date alone "
            "(2026-12-01), which means the start of that day in UTC: records of that day and "
            "later."
        ),
    )
    created_before = TimeOrDay(
        validate=in_utc_range,
        metadata=time_or_day_metadata(
            "Only records created before this time: ISO 8601 with its zone "
            "(2026-12-01T09:30:00Z), or a date alone (2026-12-01), which means the start of "
            "that day in UTC: records of the days before it, not of that day."
        ),
    )
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Records per page (1-100)."},
    )
    cursor = fields.String(
        validate=[
            validate.Length(min=1, max=CURSOR_MAX),
            validate.Regexp(CURSOR_PATTERN[:-1] + r"\Z"),
        ],
        metadata={
            "description": "The next_cursor of the previous page.",
            "pattern": CURSOR_PATTERN,
        },
    )

    @validates_schema
    def coherent(self, data, **kwargs):
        subject = data.get("subject")
        if subject is not None:
            system, bar, value = subject.partition("|")
            if not bar or not is_subject_system(system) or not is_subject_value(value):
                raise ValidationError(
                    "Must be system|value, as in the subject of the stored records.", "subject"
                )

    @post_load
    def split_subject(self, data, **kwargs):
        if "subject" in data:
            system, _, value = data["subject"].partition("|")
            data["subject"] = {"system": system, "value": value}
        return data
