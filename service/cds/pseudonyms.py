"""Pseudonymous subjects for what EHRs send through CDS Hooks.

A prefetched Patient carries real identifiers (a national number, a medical record number).
Popliteal never stores them: each becomes a keyed hash (HMAC-SHA-256 with a per-deployment
secret) of its ``system|value``, under one namespace, so that the same patient is found again
on the next call and nobody without the secret can go from a stored value back to the person.
Rotating the secret makes earlier records unreachable by patient (they can still be listed and
erased by id); see SECURITY.md.
"""

from __future__ import annotations

import hashlib
import hmac

from service.storage import Subject

PSEUDONYM_SYSTEM = "urn:popliteal:cds-patient"
MIN_SECRET_LENGTH = 32


class Pseudonymizer:
    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the secret must have at least {MIN_SECRET_LENGTH} characters")
        self._key = secret.encode()

    def subject(self, real: Subject) -> Subject:
        """The stored stand-in for a real identifier: the same for the same identifier."""
        digest = hmac.new(self._key, f"{real.system}|{real.value}".encode(), hashlib.sha256)
        return Subject(PSEUDONYM_SYSTEM, digest.hexdigest())
