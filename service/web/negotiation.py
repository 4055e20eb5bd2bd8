"""Content negotiation: whether a client speaks plain JSON or FHIR, and answers in its type.

A client that sent FHIR, asked for FHIR (Accept), or called a FHIR-only address gets FHIR back,
its errors included (OperationOutcomes rather than problem details).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from flask import current_app, g, has_request_context, request

from schemas.fhir import FHIR_MEDIA_TYPE
from schemas.fhir.outcome import operation_outcome

RESPONSE_MEDIA_TYPES = ("application/json", FHIR_MEDIA_TYPE)


def speaks_fhir() -> bool:
    """Whether this request's client speaks FHIR: it sent FHIR, asked for FHIR (Accept), or
    called a FHIR-only address. Its errors are then OperationOutcomes, not problem details."""
    if not has_request_context():
        return False
    path = request.path
    if path.endswith("/fhir") or path == "/v1/questionnaire":
        return True
    if request.mimetype == FHIR_MEDIA_TYPE:
        return True
    return request.accept_mimetypes.best_match(RESPONSE_MEDIA_TYPES) == FHIR_MEDIA_TYPE


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None):
    """Serialise with orjson: several times faster than the standard library on large bodies."""
    return current_app.response_class(
        orjson.dumps(payload), status=status, headers=headers, mimetype="application/json"
    )


def fhir_response(resource: Any, status: int = 200, headers: Mapping[str, str] | None = None):
    return current_app.response_class(
        orjson.dumps(resource), status=status, headers=headers, mimetype=FHIR_MEDIA_TYPE
    )


def fhir_outcome(
    status: int,
    detail: str,
    errors: Mapping[str, list[str]] | None = None,
    *,
    linked_items: bool = False,
    headers: Mapping[str, str] | None = None,
):
    outcome = operation_outcome(
        status, detail, errors, getattr(g, "request_id", None), linked_items=linked_items
    )
    return fhir_response(outcome, status, headers)
