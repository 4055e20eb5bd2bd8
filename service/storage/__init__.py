"""Persistence for Popliteal: tenants, API keys and stored records, on SQLAlchemy Core.

No Flask here: the HTTP layer calls these functions and translates their errors. Every database
failure that means "the database cannot be reached right now" leaves as ``StorageUnavailable``,
so that the service can answer 503 and recover by itself when the database returns.

This is the package's front door: the rest of the service imports from ``service.storage``,
never from its modules (the tests of the storage itself may).
"""

from __future__ import annotations

from service.storage.cds import Feedback
from service.storage.database import Storage, alembic_config
from service.storage.errors import (
    SchemaBehind,
    StorageFull,
    StorageMisconfigured,
    StorageUnavailable,
)
from service.storage.inline_plans import COUNT_RECORDS, plan_id_for
from service.storage.key_format import KeyChecker, KeyShape, is_legacy_shaped
from service.storage.keys import ApiKeyInfo, ApiKeyStore, Principal, hash_key
from service.storage.records import (
    ASSESSMENT,
    EXERCISE_PRESCRIPTION,
    AssessmentNotFound,
    IdempotencyKeyErased,
    IdempotencyKeyReused,
    InvalidCursor,
    NewRecord,
    PartOfAssessment,
    Record,
    RecordPage,
    RecordStore,
    RecordSummary,
    Subject,
)
from service.storage.tables import RECORD_ID_LENGTH

__all__ = [
    "ASSESSMENT",
    "COUNT_RECORDS",
    "EXERCISE_PRESCRIPTION",
    "RECORD_ID_LENGTH",
    "ApiKeyInfo",
    "ApiKeyStore",
    "AssessmentNotFound",
    "Feedback",
    "IdempotencyKeyErased",
    "IdempotencyKeyReused",
    "InvalidCursor",
    "KeyChecker",
    "KeyShape",
    "NewRecord",
    "PartOfAssessment",
    "Principal",
    "Record",
    "RecordPage",
    "RecordStore",
    "RecordSummary",
    "SchemaBehind",
    "Storage",
    "StorageFull",
    "StorageMisconfigured",
    "StorageUnavailable",
    "Subject",
    "alembic_config",
    "hash_key",
    "is_legacy_shaped",
    "plan_id_for",
]
