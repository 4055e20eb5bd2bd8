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
    # No example: Swagger UI would send it with every Execute, and one fixed key turns every
    # other request into a 422 and a repeated one into a replay. The /docs page fills in a
    # fresh key instead (service.docs).
    "description": (
        "Optional; makes a retry safe. Send a new key, such as a fresh UUID, with each new "
        "request, and the same key again only when you retry that request (after a timeout or "
        "a lost answer). The same key with the same body returns the first result (201, with "
        "Idempotent-Replayed: true) without storing a second record; the same key with another "
        "body is a 422 (idempotency-key-reused); the key of an erased record is a 410 (nothing "
        "stored again). Keys are per tenant. On the /docs page, leave this field empty: the "
        "page sends a fresh UUID with each Execute (see it in the curl line). Type a key in "
        "only to try a retry."
    ),
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


# The FHIR form of a report body, documented beside the JSON form that @blp.arguments gives.
FHIR_REPORT_BODY = {
    "content": {
        FHIR_MEDIA_TYPE: {
            **FHIR_RESPONSES["QuestionnaireResponse"][FHIR_MEDIA_TYPE],
            "examples": examples.QUESTIONNAIRE_RESPONSE_EXAMPLES,
        }
    }
}


# Said only of the FHIR body, not as the operation's query parameters: with a JSON body they
# are a 422, and a generated client would offer them beside every JSON call.
FHIR_QUERY_PARAMETERS = (
    "With a QuestionnaireResponse body only, two query parameters set what a JSON body says "
    'in its own fields: `store=false` assesses without storing (200), as `"store": false` '
    "does, and `rules_version` pins a rules version ("
    + ", ".join(f"`{version}`" for version in RULES_VERSIONS)
    + "). With a JSON body, any query parameter is a 422."
)
# Said of the JSON report in both request bodies, as the spec marks those keys nullable.
REPORT_NULLS = (
    "In the JSON report, an optional answer, a whole section or `rules_version` sent as null "
    'means "not asked" (unknown, never "no"), exactly as if it were left out.'
)
ASSESS_BODY_DESCRIPTION = (
    "The symptom report, with whom it is about and whether to store it; or a FHIR "
    "QuestionnaireResponse to GET /v1/questionnaire (the subject as an identifier).\n\n"
    + FHIR_QUERY_PARAMETERS
    + "\n\n"
    + REPORT_NULLS
)
ESCALATION_BODY_DESCRIPTION = (
    "The symptom report; or a FHIR QuestionnaireResponse to GET /v1/questionnaire (its subject "
    "is not needed: nothing is stored). With a QuestionnaireResponse body only, the query "
    "parameter `rules_version` pins a rules version; with a JSON body, any query parameter is "
    "a 422.\n\n" + REPORT_NULLS
)


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
