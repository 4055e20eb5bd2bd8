"""Stored records: read them, list them, erase them. Never edited: records are append-only.

Every lookup is scoped to the caller's tenant, so another tenant's id answers exactly as an id
that does not exist.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import current_app, g, request
from flask.views import MethodView

from schemas.records import RecordListQuerySchema
from schemas.responses import AssessmentPageSchema, AssessmentRecordSchema, PrescriptionRecordSchema
from service import response_examples
from service.pipeline import raise_failed_storage
from service.records_as_fhir import bundle_for, care_plan_for
from service.records_as_json import assessment_json, render_prescription, render_summary
from service.response_examples import fhir_doc_with_example
from service.state import state
from service.storage import ASSESSMENT, EXERCISE_PRESCRIPTION, RECORD_ID_LENGTH, Subject
from service.web import (
    RULES_RESPONSE_HEADERS,
    V1_ERRORS,
    Blueprint,
    fhir_response,
    json_bytes_response,
    json_response,
    problem,
    problem_responses,
    require_fhir,
    wants_fhir,
)

blp = Blueprint(
    "records",
    __name__,
    url_prefix="/v1",
    description=(
        "Stored assessments and exercise prescriptions: read, list by subject and date, erase."
    ),
)

LIST_QUERY = RecordListQuerySchema()
READ_ERRORS = (404, *V1_ERRORS)


def get_record(kind: str, record_id: str):
    """The caller's record of this kind, or None: another tenant's, an erased or an unknown
    id are all None."""
    if len(record_id) > RECORD_ID_LENGTH:
        return None
    raise_failed_storage()
    record = state().storage.records.get(g.principal.tenant_id, kind, record_id)
    if record is not None:
        g.rules_version = record.rules_version
    return record


def _erase(kind: str, record_id: str):
    if len(record_id) > RECORD_ID_LENGTH or not state().storage.records.erase(
        g.principal.tenant_id, g.principal.key_id, kind, record_id
    ):
        return problem_404()
    return current_app.response_class(status=204)


def problem_404():
    return problem(404, "There is no record of yours with this id.")


@blp.route("/assessments")
@blp.arguments(LIST_QUERY, location="query", as_kwargs=True)
@blp.response(200, AssessmentPageSchema, example=response_examples.ASSESSMENT_PAGE)
@problem_responses(blp, 422, *V1_ERRORS)
def list_assessments(limit, cursor=None, subject=None, created_after=None, created_before=None):
    """List your stored assessments

    Newest first, `limit` at a time; follow `next_cursor` (or `links.next`) for the next page.
    Filter by `subject` (`system|value`, as the records were stored with) to find one person's
    records, and by creation time. Each item is a summary; GET its `links.self` for the whole
    assessment.
    """
    page = state().storage.records.page(
        g.principal.tenant_id,
        limit=limit,
        cursor=cursor,
        subject=Subject(**subject) if subject else None,
        created_after=created_after,
        created_before=created_before,
    )
    links = {}
    if page.next_cursor:
        query = {key: value for key, value in request.args.items() if key != "cursor"}
        links["next"] = f"{request.path}?{urlencode({**query, 'cursor': page.next_cursor})}"
    return json_response(
        {
            "items": [render_summary(item) for item in page.items],
            "next_cursor": page.next_cursor,
            "links": links,
        }
    )


@blp.route("/assessments/<string:assessment_id>")
class Assessment(MethodView):
    @blp.response(
        200,
        AssessmentRecordSchema,
        headers=RULES_RESPONSE_HEADERS,
        example=response_examples.STORED_ASSESSMENT,
    )
    @problem_responses(blp, *READ_ERRORS)
    def get(self, assessment_id):
        """A stored assessment

        The assessment as it was given, with the report it was given for, who it is about,
        when, and the link to its exercise prescription; for a stored reassessment, also the
        link to the assessment it re-evaluated (`links.reassessment_of`).

        With `Accept: application/fhir+json`: a FHIR R4 `Bundle` (collection) with a
        `RiskAssessment` (the triage and its red flags), a `ClinicalImpression` (the likely
        causes), one `Condition` per likely cause (`differential`, with its ICD-10-CM code) and
        the `CarePlan`; errors are then `OperationOutcome`s.
        """
        if wants_fhir():
            return _as_fhir(ASSESSMENT, assessment_id, bundle_for)
        record = get_record(ASSESSMENT, assessment_id)
        if record is None:
            return problem_404()
        # The stored answer's bytes as they are, not decoded and encoded again.
        return json_bytes_response(assessment_json(record))

    @blp.response(
        204,
        description="Erased, with its plan, every prescription made from it and every stored "
        "reassessment of it.",
    )
    @problem_responses(blp, *READ_ERRORS)
    def delete(self, assessment_id):
        """Erase a stored assessment

        For real (a right-to-erasure request), with its plan, every prescription made from it
        and every stored reassessment of it (with theirs in turn): they all come from the same
        report. 204, and 404 from then on. What remains is a line in the erasure log saying
        which record was erased, how many records went with it, when and by which key;
        nothing of their content.
        """
        return _erase(ASSESSMENT, assessment_id)


@blp.route("/exercise-prescriptions/<string:prescription_id>")
class Prescription(MethodView):
    @blp.response(
        200,
        PrescriptionRecordSchema,
        headers=RULES_RESPONSE_HEADERS,
        example=response_examples.STORED_PRESCRIPTION,
    )
    @problem_responses(blp, *READ_ERRORS)
    def get(self, prescription_id):
        """A stored exercise prescription

        The prescription, with the request it was made from and, if it came from an
        assessment, the link to it. This is what an EHR pulls.

        With `Accept: application/fhir+json`: a FHIR R4 `CarePlan` (intent `proposal`), one
        `activity` per exercise with its timing, dose and cautions, the conditions it
        addresses with their ICD-10-CM codes, the stop rules and sources as notes; errors are
        then `OperationOutcome`s. Also at `GET /v1/exercise-prescriptions/{id}/fhir`.
        """
        if wants_fhir():
            return _as_fhir(EXERCISE_PRESCRIPTION, prescription_id, care_plan_for)
        record = get_record(EXERCISE_PRESCRIPTION, prescription_id)
        if record is None:
            return problem_404()
        return json_response(render_prescription(record))

    @blp.response(204, description="Erased.")
    @problem_responses(blp, 409, *READ_ERRORS)
    def delete(self, prescription_id):
        """Erase a stored exercise prescription

        For real: 204, then 404. A prescription that holds an assessment's plan, or was made
        from an assessment, answers 409: erase the assessment, which takes its prescriptions
        with it.
        """
        return _erase(EXERCISE_PRESCRIPTION, prescription_id)


def _as_fhir(kind: str, record_id: str, render):
    require_fhir()
    record = get_record(kind, record_id)
    if record is None:
        return problem_404()
    return fhir_response(render(record))


@blp.route("/assessments/<string:assessment_id>/fhir")
@blp.doc(
    **fhir_doc_with_example("Bundle", "The assessment as a FHIR Bundle.", response_examples.BUNDLE)
)
@problem_responses(blp, *READ_ERRORS)
def get_assessment_fhir(assessment_id):
    """A stored assessment as a FHIR Bundle

    The same as `GET /v1/assessments/{id}` with `Accept: application/fhir+json`, for clients
    that cannot set the Accept header. Errors are `OperationOutcome`s.
    """
    return _as_fhir(ASSESSMENT, assessment_id, bundle_for)


@blp.route("/exercise-prescriptions/<string:prescription_id>/fhir")
@blp.doc(
    **fhir_doc_with_example(
        "CarePlan", "The prescription as a FHIR CarePlan.", response_examples.CARE_PLAN
    )
)
@problem_responses(blp, *READ_ERRORS)
def get_prescription_fhir(prescription_id):
    """A stored exercise prescription as a FHIR CarePlan

    The same as `GET /v1/exercise-prescriptions/{id}` with `Accept: application/fhir+json`.
    Errors are `OperationOutcome`s.
    """
    return _as_fhir(EXERCISE_PRESCRIPTION, prescription_id, care_plan_for)
