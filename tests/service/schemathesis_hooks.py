"""schemathesis hooks for the property-based run (loaded through SCHEMATHESIS_HOOKS).

An Idempotency-Key is one request's key: schemathesis reuses its example key with other bodies,
which this service rightly refuses with 422 (tests/service/test_records.py covers that). Each
generated request with a well-formed key gets a fresh one, so that the check that valid data
is accepted stays strict on the writing endpoints. Malformed keys are left as generated: their
refusal is part of what is checked.
"""

from __future__ import annotations

import uuid

import schemathesis

from schemas.records import IDEMPOTENCY_KEY

HEADER = "idempotency-key"


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    for name, value in list((case.headers or {}).items()):
        if name.lower() == HEADER and isinstance(value, str) and IDEMPOTENCY_KEY.match(value):
            case.headers[name] = str(uuid.uuid4())
