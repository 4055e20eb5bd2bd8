"""The HTTP edge: JSON in and out, and one error shape for everything.

Every error leaves as RFC 9457 problem details (``application/problem+json``) with ``type``,
``title``, ``status``, ``detail``, the ``request_id``, and for validation errors an ``errors``
map keyed by field path. Domain errors from the rules core are translated here; nothing below
this module knows about HTTP.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from flask import Flask, Response, current_app, g, has_request_context, request
from flask import Request as FlaskRequest
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from sqlalchemy.exc import SQLAlchemyError
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import get_input_stream

from rules import UnknownCode, UnknownRulesVersion
from schemas.fhir import FHIR_MEDIA_TYPE
from schemas.fhir.outcome import operation_outcome
from schemas.responses import ProblemSchema
from service.observability import observe_database_error
from service.storage import (
    IdempotencyKeyErased,
    IdempotencyKeyReused,
    PartOfAssessment,
    StorageUnavailable,
)
from service.storage.database import SchemaBehind, StorageFull, StorageMisconfigured
from service.storage.records import AssessmentNotFound, InvalidCursor

log = logging.getLogger("popliteal")

PROBLEM_MEDIA_TYPE = "application/problem+json"
VALIDATION_PROBLEM = "urn:popliteal:problem:validation-error"
UNKNOWN_VERSION_PROBLEM = "urn:popliteal:problem:unknown-rules-version"
UNKNOWN_CODE_PROBLEM = "urn:popliteal:problem:unknown-code"
STORAGE_UNAVAILABLE_PROBLEM = "urn:popliteal:problem:storage-unavailable"
SCHEMA_BEHIND_PROBLEM = "urn:popliteal:problem:schema-behind"
MIGRATE_COMMAND = "flask --app service.wsgi db upgrade"
IDEMPOTENCY_KEY_REUSED_PROBLEM = "urn:popliteal:problem:idempotency-key-reused"
IDEMPOTENCY_KEY_ERASED_PROBLEM = "urn:popliteal:problem:idempotency-key-erased"
RATE_LIMITED_PROBLEM = "urn:popliteal:problem:rate-limited"

_DETAILS = {
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


class MalformedIdempotencyKey(Exception):
    """An Idempotency-Key header that is not 1-255 visible ASCII characters."""


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None):
    """Serialise with orjson: several times faster than the standard library on large bodies."""
    return current_app.response_class(
        orjson.dumps(payload), status=status, headers=headers, mimetype="application/json"
    )


# Where an error handler leaves the Retry-After it means, so that the rate limiter's own
# (set on every answer it counts) cannot replace it.
RETRY_AFTER = "retry_after"


def bearer_token() -> str:
    """The credential of an ``Authorization: Bearer <credential>`` header; "" for any other
    scheme, so that a key or token sent another way is never looked at."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


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


RESPONSE_MEDIA_TYPES = ("application/json", FHIR_MEDIA_TYPE)
FHIR_RESOURCES = (
    "Bundle",
    "CarePlan",
    "OperationOutcome",
    "Questionnaire",
    "QuestionnaireResponse",
)
FHIR_RESPONSES = {
    name: {FHIR_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/Fhir{name}"}}}
    for name in FHIR_RESOURCES
}


def fhir_doc(resource: str, description: str) -> dict[str, Any]:
    """blp.doc arguments for an operation that answers one FHIR resource."""
    return {"responses": {"200": {"description": description, "content": FHIR_RESPONSES[resource]}}}


def fhir_schema(name: str) -> dict[str, Any]:
    """A FHIR resource in the spec: its type, and where its full definition is. The R4
    definitions themselves are the contract; the tests validate every resource against them."""
    return {
        "type": "object",
        "description": f"A FHIR R4 {name} resource: https://hl7.org/fhir/R4/{name.lower()}.html",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {
                "type": "string",
                "enum": [name],
                "description": "The FHIR resource type.",
            }
        },
        "additionalProperties": True,
    }


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


def problem(
    status: int,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or _DETAILS.get(status) or HTTPStatus(status).description,
        "request_id": getattr(g, "request_id", None) or "",
    }
    if errors:
        body["errors"] = dict(errors)
    if speaks_fhir():
        return fhir_outcome(status, body["detail"], errors, headers=headers)
    return current_app.response_class(
        orjson.dumps(body), status=status, headers=headers, mimetype=PROBLEM_MEDIA_TYPE
    )


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """{"json": {"pain": {"intensity": ["..."]}}} -> {"pain.intensity": ["..."]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if not prefix and key in ("json", "query", "view_args", "path", "headers"):
                name = ""
            elif key == "_schema":
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            for path, texts in flatten_errors(value, name).items():
                flat.setdefault(path, []).extend(texts)
    elif isinstance(messages, list | tuple):
        texts = [m for m in messages if isinstance(m, str)]
        if texts:
            flat[prefix or "body"] = texts
        for item in messages:
            if not isinstance(item, str):
                for path, more in flatten_errors(item, prefix).items():
                    flat.setdefault(path, []).extend(more)
    else:
        flat[prefix or "body"] = [str(messages)]
    return flat


UNREADABLE_BODY = (
    "The request body could not be read: its chunked transfer coding is malformed (a chunk "
    "size that is not hexadecimal, a chunk without its CRLF, no last chunk) or it ended early."
)


def _unreadable(error: Exception) -> bool:
    """Whether reading the body failed because of what the client sent (or did not send).

    The development server signals a bad chunk or a disconnect with OSError; gunicorn raises
    NoMoreData (an OSError) or a ParseException such as InvalidChunkSize. A ParseException
    can only come from gunicorn's own wsgi.input, so gunicorn's module is already loaded
    whenever one is raised: it is looked up, never imported here."""
    if isinstance(error, OSError):
        return True
    gunicorn_errors = sys.modules.get("gunicorn.http.errors")
    return gunicorn_errors is not None and isinstance(error, gunicorn_errors.ParseException)


class StreamedBody(io.RawIOBase):
    """A body without Content-Length (Transfer-Encoding: chunked), as the server decodes it,
    refused with a 413 once it is longer than ``limit`` and with a 400 when it cannot be read.

    werkzeug would read such a body only up to MAX_CONTENT_LENGTH and stop there without
    looking further, handing the app the first ``limit`` bytes of a longer body as if they
    were all of it; and it turns only an OSError or ValueError of the server's input into a 400,
    so gunicorn's InvalidChunkSize and ChunkMissingTerminator were 500s."""

    def __init__(self, stream, limit: int | None) -> None:
        super().__init__()
        self._stream = stream
        self._limit = limit
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = len(buffer)
        if self._limit is not None:
            # One byte past the limit is enough to know that the body is too large.
            size = min(size, self._limit + 1 - self._read)
        try:
            data = self._stream.read(size)
        except Exception as error:
            if not _unreadable(error):
                raise
            raise BadRequest(UNREADABLE_BODY) from None
        got = len(data)
        buffer[:got] = data
        self._read += got
        if self._limit is not None and self._read > self._limit:
            raise RequestEntityTooLarge()
        return got


class Request(FlaskRequest):
    """Flask's request, with a chunked body held to the same limit as any other."""

    @cached_property
    def stream(self):
        if self.shallow:
            raise RuntimeError("This request was created with shallow=True: no body to read.")
        # A Content-Length body is werkzeug's: refused at once when over the limit, and read
        # to its length. Without one, the server must say it ends the body (gunicorn and the
        # development server do, for chunked bodies); otherwise werkzeug reads nothing.
        if self.content_length is None and "wsgi.input_terminated" in self.environ:
            return StreamedBody(self.environ["wsgi.input"], self.max_content_length)
        return get_input_stream(self.environ, max_content_length=self.max_content_length)


class JSONParser(FlaskParser):
    """Parses request bodies with orjson: strict JSON (no NaN), nesting capped at 1024 levels,
    and any malformed body (bad syntax, bad UTF-8, too deep) is a 400 rather than a crash."""

    def load_json(self, req, schema):
        if not core.is_json(req.mimetype):
            return core.missing
        data = req.get_data(cache=True)
        if not data:
            return core.missing
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            self._handle_invalid_json_error(exc, req)


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = JSONParser()


def documented(*decorators):
    """Apply flask-smorest documentation decorators for the spec only, without their runtime
    wrappers.

    Each of blp.doc, blp.response and blp.alt_response wraps the view in a function that looks
    up the app and re-checks the view for coroutines on every request; on the hot endpoints,
    which parse their own body and return a finished Response, that is pure overhead. The
    decorators are applied to a copy once, and only the documentation they produce
    (``_apidoc``) is kept on the real view.
    """

    def apply(view):
        wrapped = view
        for decorator in reversed(decorators):
            wrapped = decorator(wrapped)
        view._apidoc = wrapped._apidoc
        return view

    return apply


# What every /v1 endpoint can answer: no or a bad key, too many requests, and the database
# unreachable (a key is checked against it, unless verified moments before).
V1_ERRORS = (401, 429, 503)


def problem_responses(blp: SmorestBlueprint, *statuses: int):
    """Document error statuses an endpoint can answer, each in the problem+json shape."""

    def decorate(view):
        for status in statuses:
            view = blp.alt_response(
                status,
                schema=ProblemSchema,
                content_type=PROBLEM_MEDIA_TYPE,
                description=_DETAILS.get(status) or HTTPStatus(status).description,
            )(view)
        return view

    return decorate


RESPONSE_HEADERS = {
    "X-Request-ID": {
        "description": "The request id: the one the client sent, or a new one.",
        "schema": {"type": "string"},
    },
}
RULES_RESPONSE_HEADERS = {
    **RESPONSE_HEADERS,
    "X-Rules-Version": {
        "description": "The rules version that produced the response.",
        "schema": {"type": "string"},
    },
}


class PoplitealApi(Api):
    """flask-smorest's Api with problem+json errors, on an app whose requests are ``Request``."""

    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app, *, spec_kwargs=None):
        # Every body is read through Request.stream, whichever view or parser reads it.
        app.request_class = Request
        super().init_app(app, spec_kwargs=spec_kwargs)

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        headers = dict(data.get("headers") or {})
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            # flask-smorest's own handler drops this header; RFC 9110 requires it on a 405.
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        status = error.code or 500
        if status == 422:
            return problem(
                422,
                data.get("message") or _DETAILS[422],
                type_=VALIDATION_PROBLEM,
                title="Invalid request",
                errors=flatten_errors(data.get("messages") or data.get("errors") or {}),
                headers=headers,
            )
        if status == 400 and "messages" in data:
            return problem(400, _DETAILS[400], headers=headers)
        if status == 429:
            # Flask-Limiter adds Retry-After and the X-RateLimit headers after this.
            return problem(
                429,
                f"{_DETAILS[429]} Limit: {error.description}.",
                type_=RATE_LIMITED_PROBLEM,
                headers=headers,
            )
        if status >= 500:
            log.error("server error %s on %s %s", status, request.method, request.path)
        custom = error.description if error.description != type(error).description else None
        detail = data.get("message") or custom or _DETAILS.get(status) or error.description
        return problem(status, detail, headers=headers)


def register_error_handlers(app: Flask) -> None:
    from service.fhir import FhirInputError  # service.fhir needs this module first

    @app.errorhandler(UnknownRulesVersion)
    def unknown_rules_version(error: UnknownRulesVersion):
        return problem(
            422,
            str(error),
            type_=UNKNOWN_VERSION_PROBLEM,
            title="Unknown rules version",
            errors={"rules_version": [f"Available: {', '.join(error.available)}."]},
        )

    @app.errorhandler(UnknownCode)
    def unknown_code(error: UnknownCode):
        return problem(
            422,
            str(error),
            type_=UNKNOWN_CODE_PROBLEM,
            title=f"Unknown {error.kind}",
            errors={"conditions": [f"Unknown {error.kind} code {error.code!r}."]},
        )

    @app.errorhandler(StorageUnavailable)
    def storage_unavailable(error: StorageUnavailable):
        # The process stays up and the pool reconnects by itself when the database returns.
        observe_database_error("unavailable")
        retry_after = g.setdefault(RETRY_AFTER, str(app.config["STORAGE_RETRY_AFTER_SECONDS"]))
        headers = {"Retry-After": retry_after}
        where = f"{request.method} {request.path}"
        if isinstance(error, SchemaBehind):
            # A deployment fault, not an outage: the operators must act. No stack trace.
            log.error(
                "database schema behind the code on %s: %s; run `%s`", where, error, MIGRATE_COMMAND
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
        if isinstance(error, StorageFull | StorageMisconfigured):
            storage = app.extensions["popliteal"]["storage"]
            log.error("database %s on %s: %s: %s", error.reason, where, storage.describe(), error)
            detail = (
                "The service's database is out of space. Nothing was written; retry after the "
                "Retry-After header's seconds."
                if isinstance(error, StorageFull)
                else None
            )
            return problem(
                503,
                detail,
                type_=STORAGE_UNAVAILABLE_PROBLEM,
                title="Storage unavailable",
                headers=headers,
            )
        log.warning("database unreachable on %s: %s", where, error)
        return problem(
            503,
            type_=STORAGE_UNAVAILABLE_PROBLEM,
            title="Storage unavailable",
            headers=headers,
        )

    @app.errorhandler(IdempotencyKeyReused)
    def idempotency_key_reused(error: IdempotencyKeyReused):
        return problem(
            422,
            "This Idempotency-Key was first used with a different request. Use a new key for a "
            "new request; resend the same body to get the first result again.",
            type_=IDEMPOTENCY_KEY_REUSED_PROBLEM,
            title="Idempotency-Key reused",
            errors={"Idempotency-Key": ["Already used with a different request."]},
        )

    @app.errorhandler(IdempotencyKeyErased)
    def idempotency_key_erased(error: IdempotencyKeyErased):
        return problem(
            410,
            "The record this Idempotency-Key stored has been erased, so a retry will not store "
            "it again. Nothing was stored. To store a new record, send a new key.",
            type_=IDEMPOTENCY_KEY_ERASED_PROBLEM,
            title="Record erased",
            errors={"Idempotency-Key": ["Its record has been erased."]},
        )

    @app.errorhandler(MalformedIdempotencyKey)
    def malformed_idempotency_key(error: MalformedIdempotencyKey):
        return problem(
            400,
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice).",
            errors={"Idempotency-Key": ["1 to 255 visible ASCII characters."]},
        )

    @app.errorhandler(PartOfAssessment)
    def part_of_assessment(error: PartOfAssessment):
        return problem(
            409,
            "This prescription is the plan of an assessment and is erased with it: "
            f"DELETE /v1/assessments/{error.assessment_id}.",
        )

    @app.errorhandler(AssessmentNotFound)
    def assessment_not_found(error: AssessmentNotFound):
        return problem(
            422,
            "There is no assessment of yours with this id.",
            title="Invalid request",
            type_=VALIDATION_PROBLEM,
            errors={"assessment_id": ["No assessment of yours has this id."]},
        )

    @app.errorhandler(FhirInputError)
    def fhir_input_error(error: FhirInputError):
        return fhir_outcome(error.status, error.detail, error.errors, linked_items=True)

    @app.errorhandler(InvalidCursor)
    def invalid_cursor(error: InvalidCursor):
        return problem(
            422,
            type_=VALIDATION_PROBLEM,
            title="Invalid request",
            errors={"cursor": [str(error)]},
        )

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if isinstance(error, HTTPException):  # pragma: no cover - routed to the Api handler
            return app.extensions["popliteal"]["api"].handle_http_exception(error)
        # The stack trace goes to the log, never to the client.
        if isinstance(error, SQLAlchemyError):
            observe_database_error("unexpected")
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500)
