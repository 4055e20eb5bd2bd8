"""Assessment, escalation check and exercise prescriptions."""

from __future__ import annotations

import orjson
from flask import request

from rules import load_library
from schemas.fast import ReportAcceptor
from schemas.report import RULES_VERSIONS, PrescriptionRequestSchema, SymptomReportSchema
from schemas.responses import AssessmentSchema, EscalationSchema, PrescriptionSchema
from service import examples
from service.api import evaluator_for
from service.http import (
    RULES_RESPONSE_HEADERS,
    Blueprint,
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

# Schema instances, built once: a schema class passed here would be rebuilt on every request.
REPORT = SymptomReportSchema()
PRESCRIPTION_REQUEST = PrescriptionRequestSchema()
REPORT_ACCEPTOR = ReportAcceptor(load_library().report_sections, RULES_VERSIONS)

REPORT_BODY_DOC = {
    "required": True,
    "description": "The symptom report.",
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/SymptomReport"},
            "examples": examples.REPORT_EXAMPLES,
        }
    },
}


def parse_report() -> dict:
    """The request's symptom report, validated.

    A valid report is accepted by the fast checker (equivalent to the schema, and ten times
    cheaper); anything else goes through the marshmallow schema, which raises the 400 or 422
    with its field-by-field messages.
    """
    data = request.get_data(cache=True)
    if data:
        try:
            report = orjson.loads(data)
        except orjson.JSONDecodeError:
            report = None
        if report is not None and REPORT_ACCEPTOR.accepts(report):
            return report
    return blp.ARGUMENTS_PARSER.parse(REPORT, request, location="json")


def _example_evaluator():
    return load_library().get()


def _example(method: str, value: dict) -> dict:
    return getattr(_example_evaluator(), method)(value)


@blp.route("/assess", methods=["POST"])
@documented(
    problem_responses(blp, 400, 413, 415, 422),
    blp.doc(requestBody=REPORT_BODY_DOC),
    blp.response(
        200,
        AssessmentSchema,
        description="The assessment: triage, likely causes, advice, exercise plan, open questions.",
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
    """
    report = parse_report()
    evaluator = evaluator_for(report.pop("rules_version", None))
    return json_response(evaluator.assess(report))


@blp.route("/escalation-check", methods=["POST"])
@documented(
    problem_responses(blp, 400, 413, 415, 422),
    blp.doc(requestBody=REPORT_BODY_DOC),
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
    unanswered. Same request body as POST /v1/assess, and the same answer on every input.
    """
    report = parse_report()
    evaluator = evaluator_for(report.pop("rules_version", None))
    return json_response(evaluator.escalation_check(report))


@blp.route("/exercise-prescriptions", methods=["POST"])
@documented(
    problem_responses(blp, 400, 413, 415, 422),
    blp.doc(
        requestBody={
            "required": True,
            "description": "A symptom report, or conditions already identified with the pain.",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/ReportPrescriptionRequest"},
                            {"$ref": "#/components/schemas/ConditionsPrescriptionRequest"},
                        ]
                    },
                    "examples": examples.PRESCRIPTION_EXAMPLES,
                }
            },
        }
    ),
    blp.response(
        200,
        PrescriptionSchema,
        description="The exercise plan (or why there is none), with what was left out and why.",
        headers=RULES_RESPONSE_HEADERS,
        example=_example_evaluator().prescribe_for_conditions(
            **examples.PRESCRIPTION_EXAMPLES["from_conditions"]["value"]
        ),
    ),
)
def prescribe():
    """Prescribe an exercise plan

    From a symptom report (the plan POST /v1/assess would give, with its triage) or from
    conditions already identified, typically by a clinician (codes from GET /v1/conditions, the
    main one first). The plan is dosed, lists what was excluded and why, and is withheld when a
    red flag or a likely tear means exercise must wait.
    """
    # Parsed here rather than with @blp.arguments so that the documented body can be a oneOf
    # of its two forms; the parser and its errors are the same.
    body = blp.ARGUMENTS_PARSER.parse(PRESCRIPTION_REQUEST, request, location="json")
    report = body.get("report")
    if report is not None:
        evaluator = evaluator_for(report.pop("rules_version", None))
        return json_response(evaluator.prescribe_for_report(report))
    evaluator = evaluator_for(body.get("rules_version"))
    return json_response(
        evaluator.prescribe_for_conditions(
            body["conditions"], body["pain_intensity"], body.get("profile")
        )
    )
