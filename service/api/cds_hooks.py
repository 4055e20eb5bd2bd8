"""CDS Hooks 2.0: discovery, the patient-view service, and feedback on its cards.

A call reads the patient's latest QuestionnaireResponse to our Questionnaire from the prefetch
and assesses it (stored, once per response: a chart opened again replays the same record), or
else takes the patient's latest stored assessment. With neither, 412, as the specification
asks. The answer is one card: the triage as its indicator, red flags and possible causes in
its detail, and the exercise plan as a CarePlan the clinician can accept.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import current_app, g, request
from marshmallow import ValidationError

from schemas.cds_hooks import FeedbackRequestSchema, HookRequestSchema
from schemas.fhir import QUESTIONNAIRE_URL, date_time_start
from schemas.fhir.questionnaire import QuestionnaireResponseError
from schemas.fhir.resources import triage_level_text, unanswered_red_flag_questions
from service import examples
from service.api.assessment import ASSESS_REQUEST, ASSESS_REQUEST_ACCEPTOR
from service.cds_auth import CdsAuthenticationError, CdsCaller
from service.fhir import care_plan_for, level_text, response_reader
from service.http import (
    RATE_LIMITED_PROBLEM,
    Blueprint,
    bearer_token,
    flatten_errors,
    json_response,
    problem,
)
from service.observability import observe_assessment, observe_rate_limit
from service.records import (
    assessment_path,
    assessment_records,
    prescription_path,
    storage,
    timestamp,
)
from service.storage import Principal
from service.storage.cds import Feedback
from service.storage.records import ASSESSMENT, EXERCISE_PRESCRIPTION, Subject

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
# The card's urgency in the CDS Hooks 2.0 scale (Card attributes, `indicator`: info, warning,
# critical; https://cds-hooks.hl7.org/2.0/#card-attributes): both levels that need care within
# a day are critical, booking a professional is a warning, self-care is information.
INDICATORS = {
    "emergency": "critical",
    "urgent": "critical",
    "see_professional": "warning",
    "self_care": "info",
}
OVERRIDE_REASONS = [
    {"system": "urn:popliteal:fhir:CodeSystem:cds-override", "code": code, "display": display}
    for code, display in (
        ("already-assessed", "The knee has already been assessed by a clinician"),
        ("clinical-judgement", "Clinical judgement differs"),
        ("patient-declined", "The patient declined the exercise plan"),
    )
]
# CDS Hooks 2.0, Card attributes (https://cds-hooks.hl7.org/2.0/#card-attributes): a summary
# is under 140 characters.
SUMMARY_LIMIT = 139
EARLIEST = datetime.min.replace(tzinfo=UTC)
HOOK_REQUEST = HookRequestSchema()
FEEDBACK_REQUEST = FeedbackRequestSchema()


class IntakeEnteredInError(Exception):
    """The prefetched intake holds responses to our Questionnaire, all entered in error."""


class HookRequestError(Exception):
    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None):
        self.detail = detail
        self.errors = errors
        super().__init__(detail)


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


def _verifier():
    return current_app.extensions["popliteal"]["cds_verifier"]


def _authenticate(service_id: str) -> CdsCaller:
    budget = current_app.extensions["popliteal"]["cds_budget"]
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
    tenant_id = storage().cds.tenant_id(caller.client.tenant)
    # Records made by a CDS client belong to its tenant; no API key is involved.
    g.principal = Principal(key_id=None, tenant_id=tenant_id, tenant=caller.client.tenant)
    return caller


def _verify(service_id: str, may_fetch: bool) -> CdsCaller:
    token = bearer_token()
    if not token:
        raise CdsAuthenticationError("Send the CDS client's JWT: Authorization: Bearer <jwt>.")
    caller, expires = _verifier().verify(token, service_id, may_fetch)
    if not storage().cds.use_token(caller.client.issuer, caller.jti, expires):
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


def _intake(prefetch: dict[str, Any]) -> dict[str, Any] | None:
    """The latest QuestionnaireResponse to our Questionnaire in the prefetch, if any."""
    intake = prefetch.get("intake")
    if intake is None:
        return None
    if not isinstance(intake, dict):
        raise HookRequestError("prefetch.intake must be a FHIR resource.")
    if intake.get("resourceType") == "QuestionnaireResponse":
        candidates = [intake]
    elif intake.get("resourceType") == "Bundle":
        candidates = [
            entry.get("resource")
            for entry in intake.get("entry") or []
            if isinstance(entry, dict)
            and isinstance(entry.get("resource"), dict)
            and entry["resource"].get("resourceType") == "QuestionnaireResponse"
        ]
    else:
        raise HookRequestError("prefetch.intake must be a QuestionnaireResponse or a Bundle.")
    ours = [
        r for r in candidates if str(r.get("questionnaire", "")).split("|")[0] == QUESTIONNAIRE_URL
    ]
    # A response entered in error is not the patient's answer: never the one assessed.
    valid = [r for r in ours if r.get("status") != "entered-in-error"]
    if ours and not valid:
        raise IntakeEnteredInError
    return max(valid, key=_authored, default=None)


def _authored(response: dict[str, Any]) -> datetime:
    """When a response was authored, as an instant, so that offsets compare correctly; a
    missing or unreadable date sorts first."""
    return date_time_start(response.get("authored")) or EARLIEST


def _subjects(body: dict[str, Any], intake: dict[str, Any] | None) -> list[Subject]:
    """Who the patient is for our records, most specific first: the response's own subject
    identifier, the Patient's identifiers, and the patient's id on the client's FHIR server,
    each as its keyed-hash pseudonym (service.pseudonyms)."""
    found: list[Subject] = []
    if intake and isinstance(intake.get("subject"), dict):
        identifier = intake["subject"].get("identifier")
        if isinstance(identifier, dict):
            found.append(_subject(identifier))
    patient = (body.get("prefetch") or {}).get("patient")
    if isinstance(patient, dict) and patient.get("resourceType") == "Patient":
        found += [_subject(i) for i in patient.get("identifier") or [] if isinstance(i, dict)]
    if body.get("fhirServer"):
        found.append(
            Subject(f"{body['fhirServer'].rstrip('/')}/Patient", body["context"]["patientId"])
        )
    # Only pseudonyms leave this function: the real identifiers are never stored or logged.
    pseudonymous = current_app.extensions["popliteal"]["pseudonymizer"].subject
    return list(dict.fromkeys(pseudonymous(s) for s in found if s is not None))


def _subject(identifier: dict[str, Any]) -> Subject | None:
    system, value = identifier.get("system"), identifier.get("value")
    if isinstance(system, str) and isinstance(value, str) and 0 < len(system) <= 255:
        return Subject(system, value) if 0 < len(value) <= 255 else None
    return None


def _assess_intake(intake: dict[str, Any], subject: Subject | None):
    response = {key: value for key, value in intake.items() if key != "subject"}
    try:
        report, _ = response_reader().read(response)
    except QuestionnaireResponseError as error:
        raise HookRequestError(
            "prefetch.intake cannot be read as a symptom report.", error.errors
        ) from None
    try:
        report = ASSESS_REQUEST_ACCEPTOR.validated(report, ASSESS_REQUEST)
    except ValidationError as error:
        raise HookRequestError(
            "prefetch.intake has answers that are not valid.", flatten_errors(error.messages)
        ) from None
    evaluator = current_app.extensions["popliteal"]["rules"].get()
    assessment = evaluator.assess(dict(report))
    observe_assessment(assessment)
    # One record per response and patient: opening the chart again replays it.
    fingerprint = hashlib.sha256(
        orjson.dumps([intake, subject and [subject.system, subject.value]],
                     option=orjson.OPT_SORT_KEYS)
    ).hexdigest()  # fmt: skip
    stored, _ = storage().records.create(
        tenant_id=g.principal.tenant_id,
        api_key_id=None,
        request_id=g.request_id,
        new_records=assessment_records(report, assessment, subject),
        idempotency_key=f"cds-hooks:{fingerprint}",
        fingerprint=fingerprint,
    )
    return stored[0]


def _latest_stored(subjects: list[Subject]):
    records = storage().records
    latest = None
    for subject in subjects:
        page = records.page(g.principal.tenant_id, ASSESSMENT, limit=1, subject=subject)
        if page.items and (latest is None or page.items[0].created_at > latest.created_at):
            latest = page.items[0]
    if latest is None:
        return None
    return records.get(g.principal.tenant_id, ASSESSMENT, latest.id)


def _summary(assessment: dict[str, Any], level_text: dict[str, str]) -> str:
    """The level, then what must not be missed, then the leading possible cause: each part
    whole or not at all, so that nothing reads cut off (the detail has everything)."""
    triage = assessment["triage"]
    causes = assessment["likely_causes"]
    summary = f"Knee pain on stretching - {triage_level_text(level_text, triage)}"
    parts = []
    if triage["stop_stretching"]:
        parts.append("stop stretching")
    if not triage["complete"]:
        parts.append("red-flag questions unanswered")
    if causes:
        parts.append(f"possible {causes[0]['name'].lower()}")
    for part in parts:
        if len(summary) + 2 + len(part) <= SUMMARY_LIMIT:
            summary += f"; {part}"
    return summary


def _detail(record, level_text: dict[str, str]) -> str:
    assessment = record.response
    triage = assessment["triage"]
    lines = [
        f"**Triage:** {triage_level_text(level_text, triage)}.",
        "",
        f"Assessed {timestamp(record)} from the patient's answers.",
    ]
    if triage["red_flags"]:
        lines += ["", "**Red flags**"]
        lines += [f"- {flag['message']}" for flag in triage["red_flags"]]
    if triage["stop_stretching"]:
        lines += ["", "**Stop stretching**"]
        lines += [f"- {reason['reason']}" for reason in triage["stop_reasons"]]
    if not triage["complete"]:
        lines += [
            "",
            "**Red-flag questions not answered**, so a more urgent level is not ruled out:",
        ]
        lines += [f"- {question}" for question in unanswered_red_flag_questions(assessment)]
    if assessment["likely_causes"]:
        lines += ["", "**Possible causes** (possibilities, not a diagnosis)"]
        for cause in assessment["likely_causes"]:
            evidence = "; ".join(e["description"] for e in cause["evidence"])
            lines.append(f"- {cause['name']} ({cause['likelihood']} likelihood): {evidence}")
    lines += ["", f"_{assessment['disclaimer']}_"]
    return "\n".join(lines)


def _indicator(triage: dict[str, Any]) -> str:
    indicator = INDICATORS[triage["level"]]
    if not triage["complete"] and indicator == "info":
        # An unfinished red-flag screen is not a routine finding: it needs the clinician to
        # ask the open questions before the advice can be relied on.
        return "warning"
    return indicator


def _card(record, plan, patient_id: str) -> dict[str, Any]:
    assessment = record.response
    base = current_app.config["CDS_BASE_URL"]
    version = record.rules_version
    card: dict[str, Any] = {
        "uuid": record.id,
        "summary": _summary(assessment, level_text(version, short=True)),
        "indicator": _indicator(assessment["triage"]),
        "detail": _detail(record, level_text(version)),
        "source": {
            "label": f"Popliteal clinical decision support (rules {version})",
            "url": f"{base}/v1/rules/{version}",
            "topic": {
                "system": "urn:popliteal:fhir:CodeSystem:cds-topic",
                "code": "knee-pain-on-hamstring-stretch",
                "display": "Pain behind the knee when stretching the hamstrings",
            },
        },
        "overrideReasons": OVERRIDE_REASONS,
        "links": [
            {
                "label": "Assessment (FHIR Bundle)",
                "url": f"{base}{assessment_path(record.id)}/fhir",
                "type": "absolute",
            }
        ],
    }
    if plan is not None:
        care_plan = care_plan_for(plan)
        # In the client's FHIR server the plan belongs to the patient whose chart is open.
        patient = {"reference": f"Patient/{patient_id}"}
        care_plan["subject"] = patient
        for contained in care_plan.get("contained", []):
            contained["subject"] = patient
        care_plan.pop("id", None)  # the client's server assigns its own id
        card["links"].append(
            {
                "label": "Exercise plan (FHIR CarePlan)",
                "url": f"{base}{prescription_path(plan.id)}/fhir",
                "type": "absolute",
            }
        )
        card["suggestions"] = [
            {
                "label": "Add the proposed exercise plan to the chart",
                "uuid": plan.id,
                "isRecommended": care_plan["status"] == "active",
                "actions": [
                    {
                        "type": "create",
                        "description": "Create the exercise plan as a proposed CarePlan.",
                        "resource": care_plan,
                    }
                ],
            }
        ]
        card["selectionBehavior"] = "at-most-one"
    return card


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
        intake = _intake(body.get("prefetch") or {})
    except IntakeEnteredInError:
        # Not falling back on a stored assessment: it may have been made from that response.
        return problem(
            412,
            "The patient's intake QuestionnaireResponse was entered in error: nothing to assess "
            "until it is answered again.",
        )
    subjects = _subjects(body, intake)
    if intake is not None:
        record = _assess_intake(intake, subjects[0] if subjects else None)
    else:
        record = _latest_stored(subjects)
        if record is None:
            return problem(
                412,
                "Nothing to assess: prefetch the patient's latest QuestionnaireResponse to "
                f"{QUESTIONNAIRE_URL} (prefetch key 'intake'), or store an assessment for the "
                "patient.",
            )
    g.rules_version = record.rules_version
    plan = storage().records.get(g.principal.tenant_id, EXERCISE_PRESCRIPTION, record.plan_id)
    return json_response({"cards": [_card(record, plan, body["context"]["patientId"])]})


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
    records = storage().records
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
    storage().cds.record_feedback(
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
