"""Stored records as served: an assessment or a prescription with its record details, and a
page of assessment summaries."""

from __future__ import annotations

from marshmallow import Schema, fields

from schemas.responses.assessment import AssessmentSchema, PrescriptionSchema
from schemas.responses.common import LEVEL, _nested, _nested_list, _s, _version_field


class SubjectOutSchema(Schema):
    """The pseudonymous identifier the record was stored with."""

    system = _s("The namespace of the identifier: an absolute URI.")
    value = _s("The pseudonymous identifier within that namespace.")


class RecordFieldsSchema(Schema):
    """What every stored record carries besides its content."""

    id = _s("The record's id (a UUID).")
    created_at = fields.DateTime(
        required=True, metadata={"description": "When it was stored (UTC, ISO 8601)."}
    )
    request_id = _s("The X-Request-ID of the request that stored it (for audit).")
    subject = _nested(
        SubjectOutSchema,
        "Who the record is about, as supplied; null when none was.",
        allow_none=True,
    )


class AssessmentLinksSchema(Schema):
    self = _s("This assessment.")
    exercise_prescription = _s("The exercise prescription holding this assessment's plan.")
    reassessment_of = _s(
        "For a stored reassessment: the assessment whose report it evaluated again "
        "(POST /v1/assessments/{id}/reassessments).",
        required=False,
    )


class PrescriptionLinksSchema(Schema):
    self = _s("This prescription.")
    assessment = _s("The assessment it was made from, if any.", required=False)


class AssessmentRecordSchema(RecordFieldsSchema, AssessmentSchema):
    """A stored assessment: the assessment as it was given, with its record details."""

    links = _nested(AssessmentLinksSchema, "Related resources.")
    report = fields.Dict(
        required=True,
        metadata={
            "description": "The symptom report as it was sent (with rules_version if pinned)."
        },
    )


class PrescriptionRecordSchema(RecordFieldsSchema, PrescriptionSchema):
    """A stored exercise prescription, with its record details."""

    assessment_id = _s(
        "The assessment it was made from; null otherwise.", required=True, allow_none=True
    )
    links = _nested(PrescriptionLinksSchema, "Related resources.")
    request = fields.Dict(
        required=True, metadata={"description": "The request it was made from, as it was sent."}
    )


class AssessmentSummarySchema(RecordFieldsSchema):
    rules_version = _version_field()
    level = _s("The triage level it gave.", validate=LEVEL)
    links = _nested(AssessmentLinksSchema, "The whole assessment and its plan.")


class PageLinksSchema(Schema):
    next = _s("The next page, if there is one.", required=False)


class AssessmentPageSchema(Schema):
    items = _nested_list(AssessmentSummarySchema, "Your assessments, newest first.")
    next_cursor = _s(
        "Pass as cursor to get the next page; null on the last page.",
        required=True,
        allow_none=True,
    )
    links = _nested(PageLinksSchema, "Pagination links.")
