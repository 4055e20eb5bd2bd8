"""Every exception the service answers, with the problem it answers: one table.

Domain errors from the rules core and the storage are translated here; nothing below the web
package knows about HTTP. ``ERROR_HANDLERS`` lists them, most specific first where one is a
kind of another (Flask picks the handler of the closest class). HTTP errors (werkzeug's 404
and 405, the 400 and 422 of the arguments parser, the rate limit's 429) are answered by
``http_problem``, which the Api extension calls for every HTTPException.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from rules import UnknownCode, UnknownRulesVersion
from service.observability import observe_database_error
from service.state import state
from service.storage import (
    AssessmentNotFound,
    IdempotencyKeyErased,
    IdempotencyKeyReused,
    InvalidCursor,
    PartOfAssessment,
    SchemaBehind,
    StorageFull,
    StorageMisconfigured,
    StorageUnavailable,
)
from service.web.negotiation import fhir_outcome
from service.web.problems import (
    IDEMPOTENCY_KEY_ERASED_PROBLEM,
    IDEMPOTENCY_KEY_REUSED_PROBLEM,
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
    stored_but_unanswered_detail,
)

log = logging.getLogger("popliteal")

MIGRATE_COMMAND = "flask --app service.wsgi db upgrade"


class MalformedIdempotencyKey(Exception):
    """An Idempotency-Key header that is not 1-255 visible ASCII characters."""


class StoredButUnanswered(Exception):
    """A record was stored, and its answer then failed: a 500 that says where the record is
    (service.web.problems.stored_but_unanswered_detail)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class FhirInputError(Exception):
    """A FHIR request that cannot be used; answered with an OperationOutcome."""

    def __init__(self, status: int, detail: str, errors: dict[str, list[str]] | None = None):
        self.status = status
        self.detail = detail
        self.errors = errors
        super().__init__(detail)


# -- The rules core ------------------------------------------------------------------------------


def unknown_rules_version(error: UnknownRulesVersion) -> Response:
    return problem(
        422,
        str(error),
        type_=UNKNOWN_VERSION_PROBLEM,
        title="Unknown rules version",
        errors={"rules_version": [f"Available: {', '.join(error.available)}."]},
    )


def unknown_code(error: UnknownCode) -> Response:
    return problem(
        422,
        str(error),
        type_=UNKNOWN_CODE_PROBLEM,
        title=f"Unknown {error.kind}",
        errors={"conditions": [f"Unknown {error.kind} code {error.code!r}."]},
    )


# -- The database: 503 with Retry-After, whatever the cause -------------------------------------


def _storage_retry_after() -> dict[str, str]:
    """Counts the failure and says when to retry. The process stays up and the pool reconnects
    by itself when the database returns."""
    observe_database_error("unavailable")
    seconds = str(current_app.config["STORAGE_RETRY_AFTER_SECONDS"])
    return {"Retry-After": g.setdefault(RETRY_AFTER, seconds)}


def _where() -> str:
    return f"{request.method} {request.path}"


def schema_behind(error: SchemaBehind) -> Response:
    # A deployment fault, not an outage: the operators must act. No stack trace.
    headers = _storage_retry_after()
    log.error(
        "database schema behind the code on %s: %s; run `%s`", _where(), error, MIGRATE_COMMAND
    )
    return problem(
        503,
        "The service's database is not migrated to this version of the service: its "
        f"operators must run the migrations (`{MIGRATE_COMMAND}`). Nothing was written; "
        "retry after the Retry-After header's seconds.",
        type_=SCHEMA_BEHIND_PROBLEM,
        title="Database schema behind",
        headers=headers,
    )


def storage_fault(error: StorageFull | StorageMisconfigured) -> Response:
    """A full disk or a refused database name or user: logged as an error naming the database."""
    headers = _storage_retry_after()
    described = state().storage.describe()
    log.error("database %s on %s: %s: %s", error.reason, _where(), described, error)
    detail = (
        "The service's database is out of space. Nothing was written; retry after the "
        "Retry-After header's seconds."
        if isinstance(error, StorageFull)
        else None
    )
    return problem(
        503, detail, type_=STORAGE_UNAVAILABLE_PROBLEM, title="Storage unavailable", headers=headers
    )


def storage_unreachable(error: StorageUnavailable) -> Response:
    headers = _storage_retry_after()
    log.warning("database unreachable on %s: %s", _where(), error)
    return problem(
        503, type_=STORAGE_UNAVAILABLE_PROBLEM, title="Storage unavailable", headers=headers
    )


# -- Records and requests ------------------------------------------------------------------------


def idempotency_key_reused(error: IdempotencyKeyReused) -> Response:
    return problem(
        422,
        "This Idempotency-Key was first used with a different request. Use a new key for a "
        "new request; resend the same body to get the first result again.",
        type_=IDEMPOTENCY_KEY_REUSED_PROBLEM,
        title="Idempotency-Key reused",
        errors={"Idempotency-Key": ["Already used with a different request."]},
    )


def idempotency_key_erased(error: IdempotencyKeyErased) -> Response:
    return problem(
        410,
        "The record this Idempotency-Key stored has been erased, so a retry will not store "
        "it again. Nothing was stored. To store a new record, send a new key.",
        type_=IDEMPOTENCY_KEY_ERASED_PROBLEM,
        title="Record erased",
        errors={"Idempotency-Key": ["Its record has been erased."]},
    )


def malformed_idempotency_key(error: MalformedIdempotencyKey) -> Response:
    return problem(
        400,
        "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice).",
        errors={"Idempotency-Key": ["1 to 255 visible ASCII characters."]},
    )


def part_of_assessment(error: PartOfAssessment) -> Response:
    return problem(
        409,
        "This prescription is the plan of an assessment and is erased with it: "
        f"DELETE /v1/assessments/{error.assessment_id}.",
    )


def assessment_not_found(error: AssessmentNotFound) -> Response:
    return problem(
        422,
        "There is no assessment of yours with this id.",
        title="Invalid request",
        type_=VALIDATION_PROBLEM,
        errors={"assessment_id": ["No assessment of yours has this id."]},
    )


def fhir_input_error(error: FhirInputError) -> Response:
    return fhir_outcome(error.status, error.detail, error.errors, linked_items=True)


def invalid_cursor(error: InvalidCursor) -> Response:
    return problem(
        422, type_=VALIDATION_PROBLEM, title="Invalid request", errors={"cursor": [str(error)]}
    )


# -- HTTP errors ---------------------------------------------------------------------------------


def http_problem(error: HTTPException) -> Response:
    """The problem for an HTTP error, with the headers it carries (and Allow on a 405)."""
    data = getattr(error, "data", None) or {}
    headers = dict(data.get("headers") or {})
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        # flask-smorest's own handler drops this header; RFC 9110 requires it on a 405.
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    status = error.code or 500
    special = _HTTP_PROBLEMS.get(status)
    answer = special(error, data, headers) if special is not None else None
    return answer if answer is not None else _plain_http_problem(error, data, headers, status)


def _bad_json(error: HTTPException, data: dict, headers: dict) -> Response | None:
    # The arguments parser's 400 (its messages say why); werkzeug's own 400s are plain.
    return problem(400, STATUS_DETAILS[400], headers=headers) if "messages" in data else None


def _invalid_fields(error: HTTPException, data: dict, headers: dict) -> Response:
    return problem(
        422,
        data.get("message") or STATUS_DETAILS[422],
        type_=VALIDATION_PROBLEM,
        title="Invalid request",
        errors=flatten_errors(data.get("messages") or data.get("errors") or {}),
        headers=headers,
    )


def _rate_limited(error: HTTPException, data: dict, headers: dict) -> Response:
    # service.limits adds Retry-After and the X-RateLimit headers after this.
    return problem(
        429,
        f"{STATUS_DETAILS[429]} Limit: {error.description}.",
        type_=RATE_LIMITED_PROBLEM,
        headers=headers,
    )


_HTTP_PROBLEMS: dict[int, Callable[[HTTPException, dict, dict], Response | None]] = {
    400: _bad_json,
    422: _invalid_fields,
    429: _rate_limited,
}


def _plain_http_problem(error: HTTPException, data: dict, headers: dict, status: int) -> Response:
    if status >= 500:
        log.error("server error %s on %s %s", status, request.method, request.path)
    custom = error.description if error.description != type(error).description else None
    detail = data.get("message") or custom or STATUS_DETAILS.get(status) or error.description
    return problem(status, detail, headers=headers)


def stored_but_unanswered(error: StoredButUnanswered) -> Response:
    log.error(
        "unhandled error on %s %s after storing %s",
        request.method,
        request.path,
        error.location,
        exc_info=error.__cause__,
    )
    return problem(500, stored_but_unanswered_detail(error.location))


def unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):  # pragma: no cover - routed to the Api handler
        return http_problem(error)
    # The stack trace goes to the log, never to the client.
    if isinstance(error, SQLAlchemyError):
        observe_database_error("unexpected")
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500)


# Every exception the service answers, and how. Flask picks, for an exception, the handler of
# the closest class in its MRO: a StorageFull is a StorageUnavailable, and is answered as full.
ERROR_HANDLERS: tuple[tuple[type[Exception], Callable[[Any], Response]], ...] = (
    (UnknownRulesVersion, unknown_rules_version),
    (UnknownCode, unknown_code),
    (SchemaBehind, schema_behind),
    (StorageFull, storage_fault),
    (StorageMisconfigured, storage_fault),
    (StorageUnavailable, storage_unreachable),
    (IdempotencyKeyReused, idempotency_key_reused),
    (IdempotencyKeyErased, idempotency_key_erased),
    (MalformedIdempotencyKey, malformed_idempotency_key),
    (PartOfAssessment, part_of_assessment),
    (AssessmentNotFound, assessment_not_found),
    (FhirInputError, fhir_input_error),
    (StoredButUnanswered, stored_but_unanswered),
    (InvalidCursor, invalid_cursor),
    (Exception, unexpected),
)


def register_error_handlers(app: Flask) -> None:
    for exception, handler in ERROR_HANDLERS:
        app.register_error_handler(exception, handler)
