"""Assessment, escalation check and exercise prescriptions."""

from __future__ import annotations

import orjson
from flask import g, request
from flask_smorest import abort

from rules import load_library
from schemas.fast import ASSESS_REQUEST_EXTRA_FIELDS, ReportAcceptor
from schemas.fhir import FHIR_MEDIA_TYPE
from schemas.report import (
    RULES_VERSIONS,
    AssessRequestSchema,
    PrescriptionRequestSchema,
    SymptomReportSchema,
)
from schemas.responses import (
    AssessmentRecordSchema,
    AssessmentSchema,
    EscalationSchema,
    PrescriptionRecordSchema,
    PrescriptionSchema,
)
from service import examples
from service.api import evaluator_for
from service.fhir import assess_request_from_fhir
from service.http import (
    FHIR_RESPONSES,
    RULES_RESPONSE_HEADERS,
    V1_ERRORS,
    Blueprint,
    documented,
    flatten_errors,
    json_response,
    problem_responses,
)
from service.observability import (
    observe_assessment,
    observe_escalation_check,
    observe_triage_level,
)
from service.records import (
    IDEMPOTENCY_HEADER,
    assessment_path,
    assessment_records,
    created,
    idempotency_key,
    prescription_path,
    render_assessment,
    render_prescription,
    storage,
    store,
    storing_enabled,
    subject_from,
)
from service.storage import NewRecord
from service.storage.records import ASSESSMENT, EXERCISE_PRESCRIPTION, AssessmentNotFound

blp = Blueprint(
    "assessment",
    __name__,
    url_prefix="/v1",
    description="Triage a symptom report, screen it for red flags, and prescribe exercise.",
)

# Schema instances, built once: a schema class passed here would be rebuilt on every request.
REPORT = SymptomReportSchema()
ASSESS_REQUEST = AssessRequestSchema()
PRESCRIPTION_REQUEST = PrescriptionRequestSchema()
REPORT_ACCEPTOR = ReportAcceptor(load_library().report_sections, RULES_VERSIONS)
ASSESS_REQUEST_ACCEPTOR = ReportAcceptor(
    load_library().report_sections, RULES_VERSIONS, ASSESS_REQUEST_EXTRA_FIELDS
)

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


def _report_body_doc(schema_name: str, description: str, fhir: bool = False) -> dict:
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


def refuse_query_parameters() -> None:
    """A JSON request's settings (store, rules_version) belong in its body. A query would be
    ambiguous, and silently ignoring ?store=false would store what the client meant not to."""
    if request.args:
        abort(
            422,
            message="Query parameters are only for QuestionnaireResponse bodies (POST /v1/assess); "
            "put store and rules_version in the JSON body.",
            errors={name: ["Not a query parameter here."] for name in request.args},
        )


def parse_body(acceptor: ReportAcceptor, schema) -> dict:
    """The request's body, validated.

    A valid body is accepted by the fast checker (equivalent to the schema, and ten times
    cheaper); anything else goes through the marshmallow schema, which raises the 400 or 422
    with its field-by-field messages.
    """
    refuse_query_parameters()
    data = request.get_data(cache=True)
    if data:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = None
        if body is not None and acceptor.accepts(body):
            return body
    return blp.ARGUMENTS_PARSER.parse(schema, request, location="json")


def _example_evaluator():
    return load_library().get()


def _example(method: str, value: dict) -> dict:
    return getattr(_example_evaluator(), method)(value)


def assess_report(report: dict) -> tuple[dict, dict]:
    """A validated symptom report (without store or subject; its rules_version, if any, pins
    the version) -> what is stored as the request, and the assessment.

    The one evaluation path of POST /v1/assess, of reassessments and of the reassess command,
    so that a stored report re-evaluated under a version gets exactly what POST /v1/assess
    gives that report under that version. Takes rules_version out of ``report``."""
    sent = dict(report)
    evaluator = evaluator_for(report.pop("rules_version", None))
    return sent, evaluator.assess(report)


@blp.route("/assess", methods=["POST"])
@documented(
    problem_responses(blp, 400, 413, 415, 410, 422, *V1_ERRORS),
    blp.doc(
        requestBody=_report_body_doc(
            "AssessRequest",
            "The symptom report, with whom it is about and whether to store it; or a FHIR "
            "QuestionnaireResponse to GET /v1/questionnaire (the subject as an identifier, "
            "store and rules_version as query parameters).",
            fhir=True,
        ),
        parameters=[IDEMPOTENCY_PARAMETER, *FHIR_QUERY_PARAMETERS],
    ),
    blp.response(
        201,
        AssessmentRecordSchema,
        description="Stored: the assessment with its id, its plan's link and the report.",
        headers=LOCATION_HEADERS,
    ),
    blp.alt_response(
        200,
        schema=AssessmentSchema,
        description='With "store": false (or storage turned off): the assessment; nothing kept.',
        example=_example("assess", examples.SELF_CARE_TECHNIQUE),
        headers=RULES_RESPONSE_HEADERS,
    ),
)
def assess():
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
    if request.mimetype == FHIR_MEDIA_TYPE:
        body = assess_request_from_fhir(ASSESS_REQUEST_ACCEPTOR, ASSESS_REQUEST, flatten_errors)
    else:
        body = parse_body(ASSESS_REQUEST_ACCEPTOR, ASSESS_REQUEST)
    keep = body.pop("store", True) and storing_enabled()
    subject = subject_from(body.pop("subject", None))
    sent, assessment = assess_report(body)
    observe_assessment(assessment)
    if not keep:
        return json_response(assessment)

    stored, replayed = store(assessment_records(sent, assessment, subject), key)
    return created(render_assessment(stored[0]), assessment_path(stored[0].id), replayed)


@blp.route("/escalation-check", methods=["POST"])
@documented(
    problem_responses(blp, 400, 413, 415, 422, *V1_ERRORS),
    blp.doc(requestBody=_report_body_doc("SymptomReport", "The symptom report.")),
    blp.response(
        200,
        EscalationSchema,
        description="The red-flag screen; it always agrees with POST /v1/assess.",
        example=_example("escalation_check", examples.POSSIBLE_DVT),
        headers=RULES_RESPONSE_HEADERS,
    ),
)
def escalation_check():
    """Screen a report for red flags

    The fast check a fitness app runs before or during a stretching session: the triage level,
    whether to escalate and to stop stretching, the red flags, and the red-flag questions still
    unanswered. Same report as POST /v1/assess (without `store` or `subject`: nothing is ever
    stored here), and the same answer on every input.
    """
    report = parse_body(REPORT_ACCEPTOR, REPORT)
    evaluator = evaluator_for(report.pop("rules_version", None))
    check = evaluator.escalation_check(report)
    observe_escalation_check(check)
    return json_response(check)


@blp.route("/exercise-prescriptions", methods=["POST"])
@documented(
    problem_responses(blp, 400, 413, 415, 410, 422, *V1_ERRORS),
    blp.doc(
        requestBody={
            "required": True,
            "description": (
                "A symptom report, conditions already identified with the pain, or a stored "
                "assessment."
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
        },
        parameters=[IDEMPOTENCY_PARAMETER],
    ),
    blp.response(
        201,
        PrescriptionRecordSchema,
        description="Stored: the prescription with its id and the request it was made from.",
        headers=LOCATION_HEADERS,
    ),
    blp.alt_response(
        200,
        schema=PrescriptionSchema,
        description='With "store": false (or storage turned off): the prescription; nothing kept.',
        headers=RULES_RESPONSE_HEADERS,
        example=_example_evaluator().prescribe_for_conditions(
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
        sent = {"report": dict(body["report"])}
        report = body["report"]
        evaluator = evaluator_for(report.pop("rules_version", None))
        prescription = evaluator.prescribe_for_report(report)
    elif "conditions" in body:
        sent = dict(body)
        evaluator = evaluator_for(body.get("rules_version"))
        prescription = evaluator.prescribe_for_conditions(
            body["conditions"], body["pain_intensity"], body.get("profile")
        )
    else:
        sent = dict(body)
        source = storage().records.get(g.principal.tenant_id, ASSESSMENT, body["assessment_id"])
        if source is None:
            raise AssessmentNotFound(body["assessment_id"])
        report = dict(source.request)
        report.pop("rules_version", None)
        evaluator = evaluator_for(body.get("rules_version") or source.rules_version)
        prescription = evaluator.prescribe_for_report(report)
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
    stored, replayed = store([record], key)
    return created(render_prescription(stored[0]), prescription_path(stored[0].id), replayed)
