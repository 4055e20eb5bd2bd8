"""The Api extension, and the OpenAPI document: what marshmallow and flask-smorest leave out is
said here, once, after every blueprint is registered (``finish_spec``)."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from flask_smorest import Api

from rules import RulesLibrary
from schemas.report import (
    AssessmentPrescriptionRequestSchema,
    AssessRequestSchema,
    ConditionsPrescriptionRequestSchema,
    ReportPrescriptionRequestSchema,
    SymptomReportSchema,
    strict_schema_names,
)
from schemas.responses import ProblemSchema
from service.web.bodies import Request
from service.web.documentation import FHIR_RESOURCES, FHIR_RESPONSES, fhir_schema
from service.web.errors import http_problem

HTTP_METHODS = frozenset(("get", "put", "post", "delete", "options", "head", "patch", "trace"))

# Operations that answer FHIR as well as JSON, by content negotiation (Accept).
FHIR_ALTERNATIVES = {
    ("/v1/assessments/{assessment_id}", "get"): "Bundle",
    ("/v1/exercise-prescriptions/{prescription_id}", "get"): "CarePlan",
}

# Bodies parsed in the view (not by @blp.arguments), documented by reference.
BODY_SCHEMAS = (
    ("SymptomReport", SymptomReportSchema),
    ("AssessRequest", AssessRequestSchema),
    ("AssessmentPrescriptionRequest", AssessmentPrescriptionRequestSchema),
    ("ReportPrescriptionRequest", ReportPrescriptionRequestSchema),
    ("ConditionsPrescriptionRequest", ConditionsPrescriptionRequestSchema),
)

SECURITY_SCHEMES = {
    # Every /v1 operation needs an API key; health, readiness and the docs do not. Swagger UI
    # shows an Authorize button for this scheme.
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: Authorization: Bearer <key>. Create one with "
        "`flask --app service.wsgi keys create --tenant NAME`.",
    },
    "cdsClientJwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "CDS Hooks 2.0: a JWT signed ES384 or RS384 by a configured CDS "
        "client (iss on the allow-list, aud = this service endpoint, exp within five "
        "minutes, a new jti each call).",
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
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for path, method, operation in _operations(spec):
        _finish_operation(path, method, operation)


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


def _finish_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    """An operation's key requirement, its FHIR alternative, and its errors as FHIR too."""
    if path.startswith("/v1/"):
        operation["security"] = [{"apiKey": []}]
    alternative = FHIR_ALTERNATIVES.get((path, method))
    if alternative:
        operation["responses"]["200"]["content"].update(FHIR_RESPONSES[alternative])
    for response in operation.get("responses", {}).values():
        content = response.get("content", {})
        if "application/problem+json" in content:
            content.update(FHIR_RESPONSES["OperationOutcome"])
