"""CDS Hooks 2.0: discovery, the patient-view service, and feedback on its cards.

A call reads the patient's latest QuestionnaireResponse to our Questionnaire from the prefetch
and assesses it (stored, once per response: a chart opened again replays the same record), or
else takes the patient's latest stored assessment (``service.cds_intake``). With neither, 412,
as the specification asks. The answer is one card: the triage as its indicator, red flags and
possible causes in its detail, and the exercise plan as a CarePlan the clinician can accept
(``service.cds_cards``).
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import current_app, g, request
from marshmallow import ValidationError

from schemas.cds_hooks import FeedbackRequestSchema, HookRequestSchema
from schemas.fhir import QUESTIONNAIRE_URL
from service import examples
from service.auth import bearer_token
from service.cds_auth import CdsAuthenticationError, CdsCaller
from service.cds_cards import card
from service.cds_intake import (
    HookRequestError,
    IntakeEnteredInError,
    assess_intake,
    latest_intake,
    latest_stored,
    patient_subjects,
)
from service.observability import observe_rate_limit
from service.state import state
from service.storage import ASSESSMENT, EXERCISE_PRESCRIPTION, Feedback, Principal
from service.web import RATE_LIMITED_PROBLEM, Blueprint, flatten_errors, json_response, problem

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


class CdsFailureBudgetSpent(Exception):
    """Too many failed authentications from one address: a token that verifies with keys
    already fetched is still accepted; others answer 429, and fetch nothing."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(retry_after)


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


def _authenticate(service_id: str) -> CdsCaller:
    budget = state().cds_budget
    address = request.remote_addr or "unknown"
    over_budget = budget is not None and budget.exhausted(address)
    try:
        caller = _verify(service_id, may_fetch=not over_budget)
    except CdsAuthenticationError:
        if budget is None:
            raise
        budget.spend(address)
        if over_budget:
            raise CdsFailureBudgetSpent(budget.retry_after(address)) from None
        raise
    tenant_id = state().storage.cds.tenant_id(caller.client.tenant)
    # Records made by a CDS client belong to its tenant; no API key is involved.
    g.principal = Principal(key_id=None, tenant_id=tenant_id, tenant=caller.client.tenant)
    return caller


def _verify(service_id: str, may_fetch: bool) -> CdsCaller:
    token = bearer_token()
    if not token:
        raise CdsAuthenticationError("Send the CDS client's JWT: Authorization: Bearer <jwt>.")
    caller, expires = state().cds_verifier.verify(token, service_id, may_fetch)
    if not state().storage.cds.use_token(caller.client.issuer, caller.jti, expires):
        raise CdsAuthenticationError("This token (jti) has been used before.")
    return caller


def _json_body(schema) -> dict[str, Any]:
    try:
        body = orjson.loads(request.get_data(cache=True))
    except orjson.JSONDecodeError:
        raise HookRequestError("The request body is not valid JSON.") from None
    try:
        return schema.load(body)
    except ValidationError as error:
        raise HookRequestError(
            "The request does not follow the CDS Hooks 2.0 request shape.",
            flatten_errors(error.messages),
        ) from None


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
                    }
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
    _authenticate(service_id)
    body = _json_body(HOOK_REQUEST)
    try:
        intake = latest_intake(body.get("prefetch") or {})
    except IntakeEnteredInError:
        # Not falling back on a stored assessment: it may have been made from that response.
        return problem(
            412,
            "The patient's intake QuestionnaireResponse was entered in error: nothing to assess "
            "until it is answered again.",
        )
    subjects = patient_subjects(body, intake)
    if intake is not None:
        record = assess_intake(intake, subjects[0] if subjects else None)
    else:
        record = latest_stored(subjects)
        if record is None:
            return problem(
                412,
                "Nothing to assess: prefetch the patient's latest QuestionnaireResponse to "
                f"{QUESTIONNAIRE_URL} (prefetch key 'intake'), or store an assessment for the "
                "patient.",
            )
    g.rules_version = record.rules_version
    plan = state().storage.records.get(g.principal.tenant_id, EXERCISE_PRESCRIPTION, record.plan_id)
    return json_response({"cards": [card(record, plan, body["context"]["patientId"])]})


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
    caller = _authenticate(service_id)
    body = _json_body(FEEDBACK_REQUEST)
    records = state().storage.records
    unknown = [
        item["card"]
        for item in body["feedback"]
        if records.get(g.principal.tenant_id, ASSESSMENT, item["card"]) is None
    ]
    if unknown:
        return problem(
            404,
            "No card of this service has this uuid for your organisation: " + ", ".join(unknown),
        )
    state().storage.cds.record_feedback(
        g.principal.tenant_id,
        caller.client.issuer,
        service_id,
        [
            Feedback(
                item["card"],
                item["outcome"],
                item.get("acceptedSuggestions", []),
                item.get("overrideReason"),
                item["outcomeTimestamp"],
            )
            for item in body["feedback"]
        ],
    )
    return current_app.response_class(status=200)
