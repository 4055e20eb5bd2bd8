"""The database tables: tenants, their API keys, and the records (assessments and exercise
prescriptions) that clients stored.

Records are append-only: nothing updates one, and the only way one changes is erasure, which
deletes it. Times are stored in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    column,
    false,
)
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so that migrations can refer to them on every database.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every database (SQLite has no time zones: it stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _partial_index(name: str, optional: str, *columns: str) -> Index:
    """An index of the rows whose ``optional`` column is not NULL, on either database."""
    condition = column(optional).isnot(None)
    return Index(name, *columns, postgresql_where=condition, sqlite_where=condition)


RECORD_ID_LENGTH = 36
IDEMPOTENCY_KEY_LENGTH = 255
SUBJECT_PART_LENGTH = 255

tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False, index=True),
    # SHA-256 of the whole key. Keys carry 256 random bits, so a fast unsalted hash is safe
    # (no dictionary to try) and lets a request be authorised with one indexed lookup.
    Column("key_hash", String(64), nullable=False, unique=True),
    # The first characters of the key, to recognise it in listings; not enough to use it.
    Column("prefix", String(16), nullable=False),
    Column("label", String(100), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    # False for keys made before keys carried a check (service.storage.key_format): only those
    # make the service look up a key it could not check offline.
    Column("checked", Boolean, nullable=False, server_default=false()),
)

# Per-deployment secrets the service makes for itself on its first migration (today the key
# that checks API keys offline). Not credentials: see service.storage.key_format.
deployment_secrets = Table(
    "deployment_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

records = Table(
    "records",
    metadata,
    Column("id", String(RECORD_ID_LENGTH), primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("api_key_id", Integer, ForeignKey("api_keys.id"), nullable=True),
    # "assessment" or "exercise_prescription".
    Column("kind", String(32), nullable=False),
    # For a prescription made from an assessment: that assessment (erased with it).
    Column(
        "assessment_id",
        String(RECORD_ID_LENGTH),
        ForeignKey("records.id", ondelete="CASCADE"),
        nullable=True,
    ),
    # For an assessment: its plan's id. Since 0011 the plan has no row: this row holds it
    # (service.storage.inline_plans); before, the prescription row holding the plan.
    Column("plan_id", String(RECORD_ID_LENGTH), nullable=True),
    # For an assessment that re-evaluated a stored one under another rules version: that one.
    # Derived from its report, so erased with it.
    Column(
        "reassessment_of",
        String(RECORD_ID_LENGTH),
        ForeignKey("records.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("created_at", UTCDateTime, nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("rules_version", String(32), nullable=False),
    Column("subject_system", String(SUBJECT_PART_LENGTH), nullable=True),
    Column("subject_value", String(SUBJECT_PART_LENGTH), nullable=True),
    Column("triage_level", String(32), nullable=True),
    # What was sent is in one of two forms: ``request_packed``, its JSON bytes packed with a
    # dictionary (service.storage.packing), ``request`` then JSON null (every record stored
    # since revision 0009); or ``request`` as JSON (before).
    Column("request", JSON, nullable=False),
    # What was answered is in one of three forms (service.storage.records reads all three):
    # - ``answer``: the answer's JSON bytes as given, compressed (service.storage.packing);
    #   ``response`` is then JSON null. Every record stored since revision 0008;
    # - neither: an assessment's plan, which is part of the assessment's answer and read from
    #   it (never a second copy);
    # - ``response``: the answer as JSON, the form before 0008 (0008 converts these rows).
    Column("response", JSON, nullable=False),
    Column("answer", LargeBinary, nullable=True),
    Column("request_packed", LargeBinary, nullable=True),
    Column("idempotency_key", String(IDEMPOTENCY_KEY_LENGTH), nullable=True),
    # SHA-256 of the method, path and canonical body the key was first used with.
    Column("request_fingerprint", String(64), nullable=True),
    UniqueConstraint("tenant_id", "idempotency_key"),
    Index("ix_records_tenant_kind_created", "tenant_id", "kind", "created_at", "id"),
    # The indexes below serve lookups of a value in a column most rows leave empty: each holds
    # only the rows with a value (0010), so that storing a record writes no entry it does not
    # need. ``column = value`` implies the condition: both databases use them for it.
    # A subject's records of one kind, newest first, as the listing pages them: every
    # condition and the whole order are in the index (no filter, no sort).
    _partial_index(
        "ix_records_tenant_subject_kind_created",
        "subject_system",
        "tenant_id",
        "subject_system",
        "subject_value",
        "kind",
        "created_at",
        "id",
    ),
    # A prescription's assessment (the cascade of an erasure looks up children this way).
    _partial_index("ix_records_assessment_id", "assessment_id", "assessment_id"),
    _partial_index("ix_records_reassessment_of", "reassessment_of", "reassessment_of"),
)

# What was erased, when, and by which key: proof that an erasure request was carried out,
# holding nothing of the record itself.
erasures = Table(
    "erasures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("api_key_id", Integer, ForeignKey("api_keys.id"), nullable=True),
    Column("record_id", String(RECORD_ID_LENGTH), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("records_erased", Integer, nullable=False),
    Column("erased_at", UTCDateTime, nullable=False),
)

# The Idempotency-Keys of erased records, as hashes (a key says nothing of the record, but it is
# the client's text): a retry with such a key is refused as erased instead of storing the
# erased data again.
erased_idempotency_keys = Table(
    "erased_idempotency_keys",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id"), primary_key=True),
    Column("key_hash", String(64), primary_key=True),
    Column("erased_at", UTCDateTime, nullable=False),
)

# CDS Hooks: the ids (jti) of client tokens already used, kept until the token expires, so a
# captured token cannot be replayed; and what clinicians did with the cards.
cds_token_uses = Table(
    "cds_token_uses",
    metadata,
    Column("issuer", String(255), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

cds_feedback = Table(
    "cds_feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False, index=True),
    Column("issuer", String(255), nullable=False),
    Column("service_id", String(100), nullable=False),
    Column("card_id", String(RECORD_ID_LENGTH), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", JSON, nullable=False),
    Column("override_reason", JSON, nullable=True),
    Column("outcome_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)
