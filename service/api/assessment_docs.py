"""What the evaluation endpoints document besides their schemas: the request bodies (JSON, and
a FHIR QuestionnaireResponse), the Idempotency-Key parameter, the headers of a stored result and
the examples, computed by the shipped rules."""

from __future__ import annotations

from schemas.fhir import FHIR_MEDIA_TYPE
from schemas.report import RULES_VERSIONS
from service import examples
from service.evaluation import SHIPPED_RULES
from service.record_creation import IDEMPOTENCY_HEADER
from service.web import FHIR_RESPONSES, RULES_RESPONSE_HEADERS

IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": IDEMPOTENCY_HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "description": (
        "Makes a retry safe: the same key with the same body returns the first result (201, "
        "with Idempotent-Replayed: true) without storing a second record; the same key with "
        "another body is a 422; the key of an erased record is a 410 (nothing stored again). "
        "Keys are per tenant."
    ),
    "example": "5f1c7d3e-8a4b-4c2d-9e6f-0a1b2c3d4e5f",
}
LOCATION_HEADERS = {
    **RULES_RESPONSE_HEADERS,
    "Location": {"description": "The stored record.", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "true when this is the stored result of an earlier request with the "
        "same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def report_body_doc(schema_name: str, description: str, fhir: bool = False) -> dict:
    content = {
        "application/json": {
            "schema": {"$ref": f"#/components/schemas/{schema_name}"},
            "examples": examples.REPORT_EXAMPLES,
        }
    }
    if fhir:
        content[FHIR_MEDIA_TYPE] = {
            **FHIR_RESPONSES["QuestionnaireResponse"][FHIR_MEDIA_TYPE],
            "examples": examples.QUESTIONNAIRE_RESPONSE_EXAMPLES,
        }
    return {"required": True, "description": description, "content": content}


FHIR_QUERY_PARAMETERS = [
    {
        "in": "query",
        "name": "store",
        "required": False,
        "schema": {"type": "string", "enum": ["true", "false"]},
        "description": 'Only with a QuestionnaireResponse body: "false" assesses without '
        'storing (200), as "store": false does in JSON. A JSON body takes it in the body.',
    },
    {
        "in": "query",
        "name": "rules_version",
        "required": False,
        "schema": {"type": "string", "enum": list(RULES_VERSIONS)},
        "description": "Only with a QuestionnaireResponse body: pin a rules version.",
    },
]


def example_evaluator():
    return SHIPPED_RULES.get()


def example(method: str, value: dict) -> dict:
    return getattr(example_evaluator(), method)(value)


# POST /v1/exercise-prescriptions: parsed in the view, so that its documented body can be a
# oneOf of its forms.
PRESCRIPTION_BODY = {
    "required": True,
    "description": (
        "A symptom report, conditions already identified with the pain, or a stored assessment."
    ),
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/ReportPrescriptionRequest"},
                    {"$ref": "#/components/schemas/ConditionsPrescriptionRequest"},
                    {"$ref": "#/components/schemas/AssessmentPrescriptionRequest"},
                ]
            },
            "examples": examples.PRESCRIPTION_EXAMPLES,
        }
    },
}
