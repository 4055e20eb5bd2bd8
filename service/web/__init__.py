"""The HTTP edge: JSON in and out, and one error shape for everything.

Every error leaves as RFC 9457 problem details (``application/problem+json``) with ``type``,
``title``, ``status``, ``detail``, the ``request_id``, and for validation errors an ``errors``
map keyed by field path. Domain errors from the rules core are translated here; nothing below
this package knows about HTTP.

- ``negotiation``: whether a client speaks JSON or FHIR, and answers in its media type;
- ``problems``: problem details, their types, and the default detail of each status;
- ``errors``: every exception the service answers, and its problem, in one table;
- ``bodies``: request bodies held to the size limit, and JSON parsed strictly;
- ``documentation``: what views say about themselves in the OpenAPI document;
- ``openapi``: the Api extension, and the document's post-processing.

Routes and the other modules of the service import from here, not from the modules.
Which hooks run around a view, in which order, is ``service.pipeline``'s.
"""

from __future__ import annotations

from service.web.bodies import Blueprint, JSONParser, Request, StreamedBody
from service.web.documentation import (
    FHIR_RESOURCES,
    FHIR_RESPONSES,
    RESPONSE_HEADERS,
    RULES_RESPONSE_HEADERS,
    V1_ERRORS,
    documented,
    fhir_doc,
    fhir_schema,
    problem_responses,
)
from service.web.errors import (
    ERROR_HANDLERS,
    FhirInputError,
    MalformedIdempotencyKey,
    StoredButUnanswered,
    http_problem,
    register_error_handlers,
)
from service.web.negotiation import (
    RESPONSE_MEDIA_TYPES,
    fhir_outcome,
    fhir_response,
    json_bytes_response,
    json_response,
    require_fhir,
    sends_fhir,
    speaks_fhir,
    wants_fhir,
)
from service.web.openapi import PoplitealApi, finish_spec, spec_kwargs
from service.web.problems import (
    IDEMPOTENCY_KEY_ERASED_PROBLEM,
    IDEMPOTENCY_KEY_REUSED_PROBLEM,
    PROBLEM_MEDIA_TYPE,
    RATE_LIMITED_PROBLEM,
    RETRY_AFTER,
    SCHEMA_BEHIND_PROBLEM,
    STATUS_DETAILS,
    STORAGE_UNAVAILABLE_PROBLEM,
    UNKNOWN_CODE_PROBLEM,
    UNKNOWN_VERSION_PROBLEM,
    VALIDATION_PROBLEM,
    flatten_errors,
    problem,
    problem_body,
    stored_but_unanswered_detail,
)

__all__ = [
    "ERROR_HANDLERS",
    "FHIR_RESOURCES",
    "FHIR_RESPONSES",
    "IDEMPOTENCY_KEY_ERASED_PROBLEM",
    "IDEMPOTENCY_KEY_REUSED_PROBLEM",
    "PROBLEM_MEDIA_TYPE",
    "RATE_LIMITED_PROBLEM",
    "RESPONSE_HEADERS",
    "RESPONSE_MEDIA_TYPES",
    "RETRY_AFTER",
    "RULES_RESPONSE_HEADERS",
    "SCHEMA_BEHIND_PROBLEM",
    "STATUS_DETAILS",
    "STORAGE_UNAVAILABLE_PROBLEM",
    "UNKNOWN_CODE_PROBLEM",
    "UNKNOWN_VERSION_PROBLEM",
    "V1_ERRORS",
    "VALIDATION_PROBLEM",
    "Blueprint",
    "FhirInputError",
    "JSONParser",
    "MalformedIdempotencyKey",
    "PoplitealApi",
    "Request",
    "StoredButUnanswered",
    "StreamedBody",
    "documented",
    "fhir_doc",
    "fhir_outcome",
    "fhir_response",
    "fhir_schema",
    "finish_spec",
    "flatten_errors",
    "http_problem",
    "json_bytes_response",
    "json_response",
    "problem",
    "problem_body",
    "problem_responses",
    "register_error_handlers",
    "require_fhir",
    "sends_fhir",
    "speaks_fhir",
    "spec_kwargs",
    "stored_but_unanswered_detail",
    "wants_fhir",
]
