"""The Api extension, and the OpenAPI document: what marshmallow and flask-smorest leave out is
said here, once, after every blueprint is registered (``finish_spec``)."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from flask_smorest import Api

from rules import RulesLibrary
from schemas.fhir import FHIR_MEDIA_TYPE
from schemas.report import (
    AssessmentPrescriptionRequestSchema,
    ConditionsPrescriptionRequestSchema,
    ReportPrescriptionRequestSchema,
    strict_schema_names,
)
from schemas.responses import ProblemSchema
from service.logs import REQUEST_ID
from service.web.bodies import Request
from service.web.documentation import FHIR_RESOURCES, FHIR_RESPONSES, fhir_schema
from service.web.errors import http_problem
from service.web.negotiation import FORMAT_JSON
from service.web.problems import PROBLEM_MEDIA_TYPE
from service.web.spec_types import name_the_types

HTTP_METHODS = frozenset(("get", "put", "post", "delete", "options", "head", "patch", "trace"))

# Operations that answer FHIR as well as JSON, by content negotiation (Accept).
FHIR_ALTERNATIVES = {
    ("/v1/assessments/{assessment_id}", "get"): "Bundle",
    ("/v1/exercise-prescriptions/{prescription_id}", "get"): "CarePlan",
}

NOT_ACCEPTABLE = (
    "Accept or _format asks for a FHIR version other than R4 (fhirVersion 4.0 or 4.0.1) or a "
    "format other than JSON; the detail says what is served."
)
FORMAT_PARAMETER = {
    "in": "query",
    "name": "_format",
    "required": False,
    "description": "FHIR's _format (https://hl7.org/fhir/R4/http.html#parameters): the FHIR "
    "answer, whatever Accept says. Only JSON is served; a fhirVersion parameter "
    "(application/fhir+json; fhirVersion=4.0) may name R4. Anything else is a 406.",
    "schema": {"type": "string", "enum": list(FORMAT_JSON), "example": "json"},
}

# Every request may name itself: the id is echoed in the response, the logs and a stored record.
# (Documented on every operation, it is also what a generated client offers as an argument.)
# The shape is said in words, not as a pattern: a value of another shape is not refused but
# replaced, and a pattern would promise a refusal.
REQUEST_ID_PARAMETER = {
    "in": "header",
    "name": "X-Request-ID",
    "required": False,
    "schema": {"type": "string"},
    "description": "Your id for this request, for tracing: echoed in the X-Request-ID "
    "response header, written in the logs and, for a stored record, in its request_id. It "
    f"must match {REQUEST_ID.pattern}; any other value is replaced by a new id.",
}
# Bodies parsed in the view (not by @blp.arguments), documented by reference. (The report
# bodies of /v1/assess and /v1/escalation-check come from their @blp.arguments.)
BODY_SCHEMAS = (
    ("AssessmentPrescriptionRequest", AssessmentPrescriptionRequestSchema),
    ("ReportPrescriptionRequest", ReportPrescriptionRequestSchema),
    ("ConditionsPrescriptionRequest", ConditionsPrescriptionRequestSchema),
)

SECURITY_SCHEMES = {
    # Swagger UI shows these descriptions as Markdown that allows HTML: an angle-bracketed
    # placeholder would vanish as an unknown tag, so none is used.
    "cdsClientJwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "**CDS Hooks only: for EHR CDS clients calling /cds-services.** Not "
        "an API key, and not needed for /v1. The EHR sends a JWT it signed itself (ES384 or "
        "RS384) as a configured CDS client: iss on the allow-list, aud this service "
        "endpoint, exp within five minutes, a new jti each call (CDS Hooks 2.0).",
    },
    # Every /v1 operation needs an API key; health, readiness and the docs do not. Swagger UI
    # shows an Authorize button for this scheme. It comes last: Swagger UI's Authorize dialog
    # focuses the last scheme's field, and that is where a person pastes the key printed for
    # them.
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "**API key: for every /v1 endpoint, the FHIR ones included.** Paste "
        "the key alone; Swagger UI sends it as `Authorization: Bearer` followed by the key, "
        "as any client must. **Getting a key:** `./scripts/run` prints one the first time it "
        "starts (shown only that once); `flask --app service.wsgi keys create --tenant NAME` "
        "makes more. Keys are per tenant: a tenant sees only its own records.",
    },
}


class PoplitealApi(Api):
    """flask-smorest's Api with problem+json errors, on an app whose requests are ``Request``."""

    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app, *, spec_kwargs=None):
        # Every body is read through Request.stream, whichever view or parser reads it.
        app.request_class = Request
        super().init_app(app, spec_kwargs=spec_kwargs)

    def handle_http_exception(self, error):
        return http_problem(error)


def spec_kwargs(library: RulesLibrary) -> dict:
    return {
        "info": {
            "description": (
                "Clinical decision support for **pain behind the knee when stretching the "
                "hamstrings**: triage with red flags, likely causes with their evidence, advice, "
                "exercise prescriptions, and the questions still worth asking. Every rule and "
                "number carries a source.\n\n"
                "**Not a diagnosis.** Results are decision support for people and clinicians; "
                "every assessment carries a disclaimer.\n\n"
                "Errors are RFC 9457 problem details (`application/problem+json`). Every "
                "response carries `X-Request-ID`; responses that used the rules carry "
                f"`X-Rules-Version`. Rules versions loaded: {', '.join(library.versions)}."
            ),
            "license": {"name": "Proprietary"},
        },
        "servers": [{"url": "/", "description": "This server"}],
    }


def finish_spec(api: Api) -> None:
    """Say in the spec what marshmallow and flask-smorest leave out. The order of the steps is
    the order of the document's components."""
    spec = api.spec
    _add_fhir_schemas(spec)
    _shared_errors_as_problems(spec)
    _add_body_schemas(spec)
    _refuse_unknown_keys(spec)
    name_the_types(spec)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for path, method, operation in _operations(spec):
        _finish_operation(spec, path, method, operation)


def _add_fhir_schemas(spec: APISpec) -> None:
    for name in FHIR_RESOURCES:
        spec.components.schema(f"Fhir{name}", component=fhir_schema(name))


def _shared_errors_as_problems(spec: APISpec) -> None:
    """Error responses are problem+json, not application/json; to a client that speaks FHIR
    (Accept or Content-Type application/fhir+json), a FHIR OperationOutcome."""
    for response in spec.components.responses.values():
        content = response.get("content")
        if content and "application/json" in content:
            content["application/problem+json"] = content.pop("application/json")
            content.update(FHIR_RESPONSES["OperationOutcome"])


def _add_body_schemas(spec: APISpec) -> None:
    for name, schema in BODY_SCHEMAS:
        spec.components.schema(name, schema=schema)


def _refuse_unknown_keys(spec: APISpec) -> None:
    """Request schemas refuse unknown keys (a misspelt safety field must not pass unnoticed)."""
    strict = strict_schema_names()
    for name, schema in spec.components.schemas.items():
        if name in strict:
            schema["additionalProperties"] = False


def _operations(spec: APISpec):
    for path, operations in spec._paths.items():
        for method, operation in operations.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _finish_operation(spec: APISpec, path: str, method: str, operation: dict[str, Any]) -> None:
    """An operation's key requirement, its request id, its FHIR alternative, and its errors as
    FHIR too."""
    if path.startswith("/v1/"):
        operation["security"] = [{"apiKey": []}]
    operation.setdefault("parameters", []).append(REQUEST_ID_PARAMETER)
    alternative = FHIR_ALTERNATIVES.get((path, method))
    if alternative:
        operation["responses"]["200"]["content"].update(_fhir_alternative(spec, path, alternative))
    if FHIR_MEDIA_TYPE in operation["responses"].get("200", {}).get("content", {}):
        _negotiates_fhir(operation)
    for response in operation.get("responses", {}).values():
        content = response.get("content", {})
        if "application/problem+json" in content:
            content.update(FHIR_RESPONSES["OperationOutcome"])


def _fhir_alternative(spec: APISpec, path: str, resource: str) -> dict[str, Any]:
    """The FHIR answer of a JSON address: as its ``/fhir`` twin documents it, with its example,
    when it has one."""
    twin = spec._paths.get(f"{path}/fhir", {}).get("get")
    if twin is None:
        return FHIR_RESPONSES[resource]
    media_type = next(iter(FHIR_RESPONSES[resource]))
    return {media_type: twin["responses"]["200"]["content"][media_type]}


def _negotiates_fhir(operation: dict[str, Any]) -> None:
    """An operation that answers FHIR takes _format, and refuses another FHIR version or
    format with a 406. (It is answered as a problem, since the client said it cannot read an R4
    OperationOutcome; documented, as every error is, in both shapes.)"""
    operation.setdefault("parameters", []).append(FORMAT_PARAMETER)
    operation["responses"]["406"] = {
        "description": NOT_ACCEPTABLE,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
