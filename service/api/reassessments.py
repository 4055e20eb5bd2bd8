"""Reassessments: a stored assessment's report evaluated again under a chosen rules version,
with what changed. Typically after a rules release, to find the records whose triage moves.

The stored report goes through exactly what POST /v1/assess does with a report (the same
checks, then ``assess_report``), so a reassessment under a version is what POST /v1/assess
would answer for that report under that version.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from rules.difference import assessment_difference
from schemas.reassessments import ReassessmentRequestSchema, ReassessmentSchema
from schemas.report import RULES_VERSIONS
from service import response_examples
from service.api.assessment_docs import IDEMPOTENCY_PARAMETER, LOCATION_HEADERS
from service.api.records import get_record, problem_404
from service.evaluation import REPORT, REPORT_ACCEPTOR, assess_report, refuse_query_parameters
from service.observability import observe_triage_level
from service.record_creation import (
    assessment_record,
    created,
    idempotency_key,
    store,
    storing_enabled,
)
from service.records_as_json import assessment_path
from service.storage import ASSESSMENT, AssessmentNotFound, Record
from service.web import (
    RULES_RESPONSE_HEADERS,
    V1_ERRORS,
    Blueprint,
    flatten_errors,
    json_response,
    problem,
    problem_responses,
)

blp = Blueprint(
    "reassessments",
    __name__,
    url_prefix="/v1",
    description="Evaluate a stored assessment's report again under another rules version, and "
    "see what changes.",
)

REASSESSMENT_REQUEST = ReassessmentRequestSchema()
# What a stored request may hold besides the report: the service's instructions, not answers.
NOT_THE_REPORT = ("rules_version", "store", "subject")
STORED_REPORT_INVALID_PROBLEM = "urn:popliteal:problem:stored-report-invalid"


class StoredReportInvalid(Exception):
    """A stored report that today's report checks refuse (the report vocabulary changed since
    it was stored): it cannot be evaluated as POST /v1/assess would evaluate it."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("the stored report is no longer valid")
        self.errors = errors


def reassess_record(record: Record, rules_version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A stored assessment's report under ``rules_version``: (the request to store with the new
    assessment, the new assessment). Raises StoredReportInvalid."""
    report = {key: value for key, value in record.request.items() if key not in NOT_THE_REPORT}
    try:
        report = REPORT_ACCEPTOR.validated(report, REPORT)
    except ValidationError as error:
        raise StoredReportInvalid(flatten_errors(error.messages, "report")) from None
    return assess_report({**report, "rules_version": rules_version})


def reassessment(
    original: Record, assessment: dict[str, Any], reassessment_id: str | None = None
) -> dict[str, Any]:
    """The answer: both assessments, their difference, and the links."""
    links = {"original": assessment_path(original.id)}
    if reassessment_id is not None:
        links["reassessment"] = assessment_path(reassessment_id)
    return {
        "assessment_id": original.id,
        "reassessment_id": reassessment_id,
        "original": {"rules_version": original.rules_version, "assessment": original.response},
        "reassessed": {"rules_version": assessment["rules_version"], "assessment": assessment},
        "difference": assessment_difference(original.response, assessment),
        "links": links,
    }


@blp.route("/assessments/<string:assessment_id>/reassessments", methods=["POST"])
@blp.arguments(
    REASSESSMENT_REQUEST,
    examples={
        "compare": {
            "summary": "Compare under the newest rules; nothing stored",
            "value": {"rules_version": RULES_VERSIONS[-1]},
        },
        "store": {
            "summary": "Compare, and keep the new result linked to the original",
            "value": {"rules_version": RULES_VERSIONS[-1], "store": True},
        },
    },
)
@blp.response(
    200,
    ReassessmentSchema,
    description="Both assessments and their difference; nothing written.",
    headers=RULES_RESPONSE_HEADERS,
    example=reassessment(response_examples.ORIGINAL_RECORD, response_examples.REASSESSED),
)
@blp.alt_response(
    201,
    schema=ReassessmentSchema,
    description="With store: true, the same, and the new assessment was stored (Location), "
    "with its plan, the original's subject and links.reassessment_of.",
    headers=LOCATION_HEADERS,
    example=reassessment(
        response_examples.ORIGINAL_RECORD,
        response_examples.REASSESSED,
        response_examples.REASSESSMENT_ID,
    ),
)
@blp.doc(parameters=[IDEMPOTENCY_PARAMETER])
@problem_responses(blp, 400, 404, 409, 410, 413, 415, 422, *V1_ERRORS)
def reassess(body, assessment_id):
    """Reassess a stored assessment under another rules version

    Takes the report a stored assessment of yours was given for and evaluates it again, as
    `POST /v1/assess` would today under `rules_version`; answers the original and the new
    assessment with a `difference`: the triage level and which way it moved, stop
    stretching, completeness, red flags, likely causes and the leading one, the plan's status
    and exercises, and advice, by code; `triage_changed` and `changed` sum it up.

    Nothing is written unless `"store": true`: then the new assessment is stored (201,
    `Location`) with its plan, the original's subject and `links.reassessment_of`, and is
    erased with the original. Send an `Idempotency-Key` to make such a retry safe.

    Another tenant's id, an erased one and an unknown one are 404. A stored report that the
    report checks no longer accept (the report vocabulary changed) is a 409 naming its fields.
    The response's `X-Rules-Version` is the version reassessed under.
    """
    key = idempotency_key()
    refuse_query_parameters()
    original = get_record(ASSESSMENT, assessment_id)
    if original is None:
        return problem_404()
    try:
        sent, assessment = reassess_record(original, body["rules_version"])
    except StoredReportInvalid as error:
        return problem(
            409,
            "The report stored with this assessment is no longer accepted by the report "
            "checks, so it cannot be evaluated as POST /v1/assess would; see errors.",
            type_=STORED_REPORT_INVALID_PROBLEM,
            title="Stored report no longer valid",
            errors=error.errors,
        )
    # The log line carries the new level, as for POST /v1/assess; the assessment counters do
    # not count reassessments, which are not new assessments of anyone.
    observe_triage_level(assessment["triage"]["level"])
    if not (body["store"] and storing_enabled()):
        return json_response(reassessment(original, assessment))

    new_record = assessment_record(sent, assessment, original.subject, reassessment_of=original.id)
    try:
        new, replayed = store(new_record, key)
    except AssessmentNotFound:
        # The original was erased after it was read: nothing was written.
        return problem_404()
    return created(reassessment(original, new.response, new.id), assessment_path(new.id), replayed)
