"""What the views say about themselves in the OpenAPI document: their error statuses, headers
and FHIR answers, and documentation decorators that cost nothing on the hot routes."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint as SmorestBlueprint

from schemas.fhir import FHIR_MEDIA_TYPE
from schemas.responses import ProblemSchema
from service.web.problems import PROBLEM_MEDIA_TYPE, status_detail

# What every /v1 endpoint can answer: no or a bad key, too many requests, and the database
# unreachable (a key is checked against it, unless verified moments before).
V1_ERRORS = (401, 429, 503)

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


def problem_responses(blp: SmorestBlueprint, *statuses: int):
    """Document error statuses an endpoint can answer, each in the problem+json shape.

    For the spec only, as ``documented`` does: each blp.alt_response would otherwise add a
    wrapper that runs on every request and does nothing but call the view."""

    return documented(
        *(
            blp.alt_response(
                status,
                schema=ProblemSchema,
                content_type=PROBLEM_MEDIA_TYPE,
                description=status_detail(status),
            )
            for status in statuses
        )
    )


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
