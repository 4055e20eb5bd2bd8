"""Assessment, escalation check and exercise prescriptions."""

from __future__ import annotations

from flask import g, request

from schemas.report import PrescriptionRequestSchema
from schemas.responses import (
    AssessmentRecordSchema,
    AssessmentSchema,
    EscalationSchema,
    PrescriptionRecordSchema,
    PrescriptionSchema,
)
from service import examples, response_examples
from service.api.assessment_docs import (
    ASSESS_BODY_DESCRIPTION,
    ESCALATION_BODY_DESCRIPTION,
    FHIR_REPORT_BODY,
    IDEMPOTENCY_PARAMETER,
    LOCATION_HEADERS,
    PRESCRIPTION_BODY,
    example,
    example_evaluator,
)
from service.evaluation import (
    ASSESS_REQUEST,
    REPORT,
    REPORT_PARSER,
    assess_report,
    escalation_of,
    evaluator_for,
    refuse_query_parameters,
)
from service.observability import (
    observe_assessment,
    observe_escalation_check,
    observe_triage_level,
)
from service.record_creation import (
    assessment_record,
    created,
    created_json,
    idempotency_key,
    split_assess_request,
    store,
    storing_enabled,
    subject_from,
)
from service.records_as_json import (
    assessment_json,
    assessment_path,
    prescription_path,
    render_prescription,
)
from service.state import state
from service.storage import ASSESSMENT, EXERCISE_PRESCRIPTION, AssessmentNotFound, NewRecord
from service.web import (
    RULES_RESPONSE_HEADERS,
    V1_ERRORS,
    Blueprint,
    StoredButUnanswered,
    documented,
    json_response,
    problem_responses,
)

blp = Blueprint(
    "assessment",
    __name__,
    url_prefix="/v1",
    description="Triage a symptom report, screen it for red flags, and prescribe exercise.",
)

# The report bodies of /assess and /escalation-check go through the fast checker (JSON) or the
# FHIR intake; every other body is parsed as on any blueprint.
blp.ARGUMENTS_PARSER = REPORT_PARSER

# Schema instances, built once: a schema class passed here would be rebuilt on every request.
PRESCRIPTION_REQUEST = PrescriptionRequestSchema()


@blp.route("/assess", methods=["POST"])
@blp.arguments(
    ASSESS_REQUEST, description=ASSESS_BODY_DESCRIPTION, examples=examples.REPORT_EXAMPLES
)
@blp.doc(requestBody=FHIR_REPORT_BODY, parameters=[IDEMPOTENCY_PARAMETER])
# The views return finished Responses (orjson), which @blp.response passes through undumped.
@blp.response(
    201,
    AssessmentRecordSchema,
    description="Stored: the assessment with its id, its plan's link and the report.",
    example=response_examples.STORED_ASSESSMENT,
    headers=LOCATION_HEADERS,
)
@blp.alt_response(
    200,
    schema=AssessmentSchema,
    description='With "store": false (or storage turned off): the assessment; nothing kept.',
    example=example("assess", examples.SELF_CARE_TECHNIQUE),
    headers=RULES_RESPONSE_HEADERS,
)
@problem_responses(blp, 400, 413, 415, 410, 422, *V1_ERRORS)
def assess(body: dict):
    """Assess a symptom report

    Triage level and red flags, likely causes with their evidence, advice, an exercise plan,
    the questions still worth asking, and the trace of the rules that fired. An absent field
    means "not asked": unanswered red-flag questions make `triage.complete` false and appear
    first in `missing_information`.

    The assessment is stored (201, `Location`) with its plan as an exercise prescription,
    unless the request says `"store": false` (200, nothing written). Send an `Idempotency-Key`
    to make retries safe.

    A FHIR `QuestionnaireResponse` (`Content-Type: application/fhir+json`) gives exactly the
    result of the equivalent JSON report; its errors are `OperationOutcome`s naming the item.
    """
    key = idempotency_key()
    store_asked, subject, report = split_assess_request(body)
    keep = store_asked and storing_enabled()
    sent, assessment = assess_report(report)
    observe_assessment(assessment)
    if not keep:
        return json_response(assessment)

    stored, replayed = store(assessment_record(sent, assessment, subject), key)
    location = assessment_path(stored.id)
    try:
        return created_json(assessment_json(stored), location, replayed)
    except Exception as error:  # stored: the 500 says where, as a retry would store it again
        raise StoredButUnanswered(location) from error


@blp.route("/escalation-check", methods=["POST"])
@blp.arguments(REPORT, description=ESCALATION_BODY_DESCRIPTION, examples=examples.REPORT_EXAMPLES)
@blp.doc(requestBody=FHIR_REPORT_BODY)
@blp.response(
    200,
    EscalationSchema,
    description="The red-flag screen; it always agrees with POST /v1/assess.",
    example=example("escalation_check", examples.POSSIBLE_DVT),
    headers=RULES_RESPONSE_HEADERS,
)
@problem_responses(blp, 400, 413, 415, 422, *V1_ERRORS)
def escalation_check(report: dict):
    """Screen a report for red flags

    The fast check a fitness app runs before or during a stretching session: the triage level,
    whether to escalate and to stop stretching, the red flags, and the red-flag questions still
    unanswered. Same report as POST /v1/assess (without `store` or `subject`: nothing is ever
    stored here), and the same answer on every input.

    A FHIR `QuestionnaireResponse` (`Content-Type: application/fhir+json`) gives exactly the
    result of the equivalent JSON report.
    """
    _, check = escalation_of(evaluator_for, report)
    observe_escalation_check(check)
    return json_response(check)


@blp.route("/exercise-prescriptions", methods=["POST"])
@documented(
    problem_responses(blp, 400, 413, 415, 410, 422, *V1_ERRORS),
    blp.doc(
        requestBody=PRESCRIPTION_BODY,
        parameters=[IDEMPOTENCY_PARAMETER],
    ),
    blp.response(
        201,
        PrescriptionRecordSchema,
        description="Stored: the prescription with its id and the request it was made from.",
        example=response_examples.CREATED_PRESCRIPTION,
        headers=LOCATION_HEADERS,
    ),
    blp.alt_response(
        200,
        schema=PrescriptionSchema,
        description='With "store": false (or storage turned off): the prescription; nothing kept.',
        headers=RULES_RESPONSE_HEADERS,
        example=example_evaluator().prescribe_for_conditions(
            **examples.PRESCRIPTION_EXAMPLES["from_conditions"]["value"]
        ),
    ),
)
def prescribe():
    """Prescribe an exercise plan

    From a symptom report (the plan POST /v1/assess would give, with its triage), from
    conditions already identified, typically by a clinician (codes from GET /v1/conditions, the
    main one first), or from a stored assessment (`assessment_id`: its report, under its rules
    version unless `rules_version` says otherwise). The plan is dosed, lists what was excluded
    and why, and is withheld when a red flag or a likely tear means exercise must wait.

    Stored (201, `Location`) unless `"store": false`. Send an `Idempotency-Key` to make retries
    safe.
    """
    key = idempotency_key()
    refuse_query_parameters()
    # Parsed here rather than with @blp.arguments so that the documented body can be a oneOf
    # of its forms; the parser and its errors are the same.
    body = blp.ARGUMENTS_PARSER.parse(PRESCRIPTION_REQUEST, request, location="json")
    keep = body.pop("store", True) and storing_enabled()
    subject = subject_from(body.pop("subject", None))
    assessment_id = None
    if "report" in body:
        sent, prescription = _prescription_from_report(body)
    elif "conditions" in body:
        sent, prescription = _prescription_from_conditions(body)
    else:
        sent = dict(body)
        source = _stored_assessment(body["assessment_id"])
        prescription = _prescription_from_stored(source, body.get("rules_version"))
        assessment_id, subject = source.id, source.subject
    triage = prescription.get("triage")
    observe_triage_level(triage["level"] if triage else None)
    if not keep:
        return json_response(prescription)

    record = NewRecord(
        EXERCISE_PRESCRIPTION,
        prescription["rules_version"],
        sent,
        prescription,
        subject,
        triage["level"] if triage else None,
        assessment_id=assessment_id,
    )
    stored, replayed = store(record, key)
    return created(render_prescription(stored), prescription_path(stored.id), replayed)


def _prescription_from_report(body: dict) -> tuple[dict, dict]:
    sent = {"report": dict(body["report"])}
    report = body["report"]
    evaluator = evaluator_for(report.pop("rules_version", None))
    return sent, evaluator.prescribe_for_report(report)


def _prescription_from_conditions(body: dict) -> tuple[dict, dict]:
    sent = dict(body)
    evaluator = evaluator_for(body.get("rules_version"))
    prescription = evaluator.prescribe_for_conditions(
        body["conditions"], body["pain_intensity"], body.get("profile")
    )
    return sent, prescription


def _stored_assessment(assessment_id: str):
    source = state().storage.records.get(g.principal.tenant_id, ASSESSMENT, assessment_id)
    if source is None:
        raise AssessmentNotFound(assessment_id)
    return source


def _prescription_from_stored(source, rules_version: str | None) -> dict:
    """From a stored assessment's report, under its rules version unless the request pins one."""
    report = dict(source.request)
    report.pop("rules_version", None)
    evaluator = evaluator_for(rules_version or source.rules_version)
    return evaluator.prescribe_for_report(report)
