"""CDS Hooks 2.0: discovery, the patient-view service, and feedback on its cards.

A call reads the patient's latest QuestionnaireResponse to our Questionnaire from the prefetch
and assesses it (stored, once per response: a chart opened again replays the same record), or
else takes the patient's latest stored assessment (``service.cds.intake``). With neither, 412,
as the specification asks. The answer is one card: the triage as its indicator, red flags and
possible causes in its detail, and the exercise plan as a CarePlan the clinician can accept
(``schemas.cds_hooks.cards``). Only the routes are here, and the problems they answer: the
caller's token is checked by ``service.cds.authentication``, feedback recorded by
``service.cds.feedback``.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g

from schemas.cds_hooks import FeedbackRequestSchema, HookRequestSchema
from schemas.fhir import QUESTIONNAIRE_URL
from service import examples, response_examples
from service.cds.authentication import CdsFailureBudgetSpent, authenticate
from service.cds.cards import cards_for
from service.cds.feedback import UnknownCards, record_feedback
from service.cds.intake import HookRequestError, NothingToAssess, assessment_for, read_request
from service.cds.tokens import CdsAuthenticationError
from service.observability import observe_rate_limit
from service.web import RATE_LIMITED_PROBLEM, Blueprint, json_response, problem

blp = Blueprint(
    "cds_hooks",
    __name__,
    url_prefix="/cds-services",
    description="CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/): discovery, a patient-view "
    "service, and feedback. Service calls need the CDS client's signed JWT.",
)

SERVICE_ID = "popliteal-knee-pain"
INTAKE_PREFETCH = (
    "QuestionnaireResponse?subject=Patient/{{context.patientId}}"
    f"&questionnaire={QUESTIONNAIRE_URL}&status=completed&_sort=-authored&_count=1"
)
SERVICE = {
    "hook": "patient-view",
    "id": SERVICE_ID,
    "title": "Pain behind the knee when stretching the hamstrings",
    "description": (
        "Triage, red flags, possible causes and a dosed exercise plan from the patient's "
        "answers to the Popliteal symptom intake Questionnaire (GET /v1/questionnaire)."
    ),
    "prefetch": {"intake": INTAKE_PREFETCH, "patient": "Patient/{{context.patientId}}"},
    "usageRequirements": (
        "Prefetch the patient's latest QuestionnaireResponse to "
        f"{QUESTIONNAIRE_URL}; without it the latest assessment stored for the patient is "
        "used. Calls are authenticated with a JWT signed ES384 or RS384 by a configured client."
    ),
}
HOOK_REQUEST = HookRequestSchema()
FEEDBACK_REQUEST = FeedbackRequestSchema()


@blp.errorhandler(CdsAuthenticationError)
def _refused(error: CdsAuthenticationError):
    return problem(
        401,
        str(error),
        headers={"WWW-Authenticate": 'Bearer realm="popliteal-cds", error="invalid_token"'},
    )


@blp.errorhandler(CdsFailureBudgetSpent)
def _over_budget(error: CdsFailureBudgetSpent):
    observe_rate_limit("failed_authentication")
    return problem(
        429,
        "Too many requests with a missing or invalid token from this address; retry after the "
        "Retry-After header's seconds.",
        type_=RATE_LIMITED_PROBLEM,
        headers={"Retry-After": str(error.retry_after)},
    )


@blp.errorhandler(HookRequestError)
def _malformed(error: HookRequestError):
    return problem(400, error.detail, errors=error.errors)


@blp.errorhandler(NothingToAssess)
def _nothing_to_assess(error: NothingToAssess):
    return problem(412, str(error))


@blp.errorhandler(UnknownCards)
def _unknown_cards(error: UnknownCards):
    return problem(404, str(error))


def _unknown_service(service_id: str):
    return problem(404, f"There is no CDS service {service_id!r}; see GET /cds-services.")


def _problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


_OBJECT = {"type": "object", "additionalProperties": True}
_COMMON_ERRORS = {
    "400": _problem_doc("The request does not follow the CDS Hooks 2.0 shape; see errors."),
    "401": _problem_doc("No token, or a token that is not valid, trusted, fresh or new."),
    "404": _problem_doc("No such CDS service (or, for feedback, no such card)."),
    "413": _problem_doc("The body is larger than the service accepts."),
    "415": _problem_doc("The body is not application/json."),
    "429": _problem_doc(
        "Too many failed authentications from this address (a token that verifies is still "
        "accepted); retry after Retry-After."
    ),
    "503": _problem_doc("The database is unreachable; retry."),
}
_SECURITY = [{"cdsClientJwt": []}]


@blp.route("", methods=["GET"])
@blp.doc(
    responses={
        "200": {
            "description": "The services: hook, id, title, description, prefetch.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["services"],
                        "properties": {
                            "services": {
                                "type": "array",
                                "items": _OBJECT,
                                "description": "The CDS services offered.",
                            }
                        },
                    },
                    "example": {"services": [SERVICE]},
                }
            },
        }
    }
)
def discovery():
    """CDS Hooks discovery

    The services this CDS service offers, with their hooks and prefetch templates. No token is
    needed to read it.
    """
    return json_response({"services": [SERVICE]})


SERVICE_ID_PARAMETER = [
    {
        "in": "path",
        "name": "service_id",
        "required": True,
        "schema": {"type": "string", "enum": [SERVICE_ID]},
        "description": "A service id from GET /cds-services.",
    }
]


@blp.route("/<string:service_id>", methods=["POST"], parameters=SERVICE_ID_PARAMETER)
@blp.doc(
    security=_SECURITY,
    requestBody={
        "required": True,
        "description": "A CDS Hooks 2.0 request for the patient-view hook.",
        "content": {
            "application/json": {
                "schema": HookRequestSchema,
                "example": examples.CDS_HOOK_REQUEST,
            }
        },
    },
    responses={
        "200": {
            "description": "One card: triage, red flags, possible causes, the plan.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["cards"],
                        "properties": {
                            "cards": {
                                "type": "array",
                                "items": _OBJECT,
                                "description": "CDS Hooks 2.0 cards.",
                            }
                        },
                    },
                    "example": response_examples.CDS_CARDS,
                }
            },
        },
        **_COMMON_ERRORS,
        "412": _problem_doc(
            "Nothing to assess: no QuestionnaireResponse and nothing stored, or every "
            "prefetched response was entered in error."
        ),
    },
)
def call_service(service_id: str):
    """Call the patient-view service

    Answers `cards` for the patient whose chart is open. Needs the CDS client's JWT.
    """
    if service_id != SERVICE_ID:
        return _unknown_service(service_id)
    authenticate(service_id)
    body = read_request(HOOK_REQUEST)
    record = assessment_for(body)
    g.rules_version = record.rules_version
    return json_response({"cards": cards_for(record, body["context"]["patientId"])})


@blp.route("/<string:service_id>/feedback", methods=["POST"], parameters=SERVICE_ID_PARAMETER)
@blp.doc(
    security=_SECURITY,
    requestBody={
        "required": True,
        "description": "CDS Hooks 2.0 feedback on cards this service returned.",
        "content": {
            "application/json": {"schema": FeedbackRequestSchema, "example": examples.CDS_FEEDBACK}
        },
    },
    responses={"200": {"description": "Recorded."}, **_COMMON_ERRORS},
)
def feedback(service_id: str):
    """Feedback on the service's cards

    Records whether each card was accepted (and which suggestions) or overridden (and why).
    Needs the CDS client's JWT.
    """
    if service_id != SERVICE_ID:
        return _unknown_service(service_id)
    caller = authenticate(service_id)
    body = read_request(FEEDBACK_REQUEST)
    record_feedback(caller, service_id, body["feedback"])
    return current_app.response_class(status=200)
