"""Problem details (RFC 9457): their types, the default detail of each status, and the answer.

Every error leaves as ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail``, the ``request_id``, and for validation errors an ``errors`` map keyed by field
path; to a client that speaks FHIR, as an OperationOutcome saying the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from flask import Response, current_app, g

from service.web.negotiation import fhir_outcome, speaks_fhir

PROBLEM_MEDIA_TYPE = "application/problem+json"
VALIDATION_PROBLEM = "urn:popliteal:problem:validation-error"
UNKNOWN_VERSION_PROBLEM = "urn:popliteal:problem:unknown-rules-version"
UNKNOWN_CODE_PROBLEM = "urn:popliteal:problem:unknown-code"
STORAGE_UNAVAILABLE_PROBLEM = "urn:popliteal:problem:storage-unavailable"
SCHEMA_BEHIND_PROBLEM = "urn:popliteal:problem:schema-behind"
IDEMPOTENCY_KEY_REUSED_PROBLEM = "urn:popliteal:problem:idempotency-key-reused"
IDEMPOTENCY_KEY_ERASED_PROBLEM = "urn:popliteal:problem:idempotency-key-erased"
RATE_LIMITED_PROBLEM = "urn:popliteal:problem:rate-limited"

# The detail of a status when the answer gives none of its own; also what the spec says each
# documented error status means.
STATUS_DETAILS = {
    400: "The request body is not valid JSON.",
    401: "Send a valid API key: Authorization: Bearer <key>.",
    404: "There is nothing at this address.",
    405: "This address does not accept this method; see the Allow header.",
    413: "The request body is larger than this service accepts.",
    409: "The request conflicts with the state of the resource.",
    410: (
        "The Idempotency-Key belonged to a record that has been erased; nothing was stored. "
        "Send a new key to store a new record."
    ),
    415: "Send the body as JSON with Content-Type: application/json.",
    422: "The request is well-formed JSON but some fields are invalid; see errors.",
    429: "Too many requests for this API key; retry after the Retry-After header's seconds.",
    500: "Something went wrong on our side. The request had no effect; it is safe to retry.",
    503: (
        "The service cannot reach its database. Nothing was written; retry after the "
        "Retry-After header's seconds."
    ),
}

# Where an error handler leaves the Retry-After it means, so that the rate limiter's own
# (set on every answer it counts) cannot replace it.
RETRY_AFTER = "retry_after"


def stored_but_unanswered_detail(location: str | None) -> str:
    """The 500's detail when a record was stored and its answer then failed: sending the request
    again would store it again (unless it carries the same Idempotency-Key)."""
    where = f"at {location}" if location else "(list your records to find it)"
    return (
        f"The record was stored {where}, but its answer could not be made. Read it rather than "
        "send the request again, which would store it again unless it carries the same "
        "Idempotency-Key."
    )


def status_detail(status: int) -> str:
    return STATUS_DETAILS.get(status) or HTTPStatus(status).description


def problem_body(
    status: int,
    detail: str | None,
    request_id: str | None,
    *,
    type_: str = "about:blank",
    title: str | None = None,
) -> dict[str, Any]:
    """A problem's JSON (RFC 9457): for ``problem``, and for the fast path, which has no Flask
    context."""
    return {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or status_detail(status),
        "request_id": request_id or "",
    }


def problem(
    status: int,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = problem_body(status, detail, getattr(g, "request_id", None), type_=type_, title=title)
    if errors:
        body["errors"] = dict(errors)
    if speaks_fhir():
        return fhir_outcome(status, body["detail"], errors, headers=headers)
    return current_app.response_class(
        orjson.dumps(body), status=status, headers=headers, mimetype=PROBLEM_MEDIA_TYPE
    )


# Keys of webargs' locations: they name where a field was, not the field.
_LOCATIONS = ("json", "query", "view_args", "path", "headers")


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """{"json": {"pain": {"intensity": ["..."]}}} -> {"pain.intensity": ["..."]}."""
    if isinstance(messages, list | tuple):
        return _flatten_list(messages, prefix)
    if not isinstance(messages, Mapping):
        return {prefix or "body": [str(messages)]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        _merge(flat, flatten_errors(value, _field_path(prefix, key)))
    return flat


def _flatten_list(messages: list | tuple, prefix: str) -> dict[str, list[str]]:
    """Messages (strings) for the field at ``prefix``, and the errors of nested items."""
    flat: dict[str, list[str]] = {}
    texts = [m for m in messages if isinstance(m, str)]
    if texts:
        flat[prefix or "body"] = texts
    for item in messages:
        if not isinstance(item, str):
            _merge(flat, flatten_errors(item, prefix))
    return flat


def _field_path(prefix: str, key: Any) -> str:
    """The path of ``key`` under ``prefix``; marshmallow's ``_schema`` (an error of the object
    itself) and webargs' location keys add nothing to it."""
    if not prefix and key in _LOCATIONS:
        return ""
    if key == "_schema":
        return prefix
    return f"{prefix}.{key}" if prefix else str(key)


def _merge(flat: dict[str, list[str]], more: dict[str, list[str]]) -> None:
    for path, texts in more.items():
        flat.setdefault(path, []).extend(texts)
