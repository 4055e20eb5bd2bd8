"""Persistence for Popliteal: tenants, API keys and stored records, on SQLAlchemy Core.

No Flask here: the HTTP layer calls these functions and translates their errors. Every database
failure that means "the database cannot be reached right now" leaves as ``StorageUnavailable``,
so that the service can answer 503 and recover by itself when the database returns.
"""

from __future__ import annotations

from service.storage.database import Storage, StorageUnavailable
from service.storage.keys import ApiKeyInfo, Principal
from service.storage.records import (
    IdempotencyKeyErased,
    IdempotencyKeyReused,
    NewRecord,
    PartOfAssessment,
    Record,
    RecordPage,
    RecordSummary,
)

__all__ = [
    "ApiKeyInfo",
    "IdempotencyKeyErased",
    "IdempotencyKeyReused",
    "NewRecord",
    "PartOfAssessment",
    "Principal",
    "Record",
    "RecordPage",
    "RecordSummary",
    "Storage",
    "StorageUnavailable",
]
