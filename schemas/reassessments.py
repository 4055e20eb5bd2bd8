"""Reassessments: a stored assessment's report evaluated again under a chosen rules version,
and how the two results differ (the difference itself is computed by rules.difference).

Like the other response schemas, those here document what the service writes out; the request
schema validates the body and refuses unknown keys.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.fields import StrictBoolean, StrictSchema, StrictString
from schemas.report import RULES_VERSIONS
from schemas.responses import LEVEL, PLAN_STATUSES, AssessmentSchema


class ReassessmentRequestSchema(StrictSchema):
    """Which rules version to evaluate the stored report under, and whether to keep the result
    as a new assessment linked to the original."""

    rules_version = StrictString(
        required=True,
        # The same check, and the same message, as a pinned rules_version on POST /v1/assess.
        validate=validate.OneOf(RULES_VERSIONS, error="Not an available rules version: {choices}."),
        metadata={
            "description": "The released rules version (SemVer) to evaluate the stored report "
            "under; see GET /v1/rules.",
            "example": RULES_VERSIONS[-1],
        },
    )
    store = StrictBoolean(
        load_default=False,
        metadata={
            "description": "true: keep the new result as an assessment of its own (201, "
            "Location), with its plan, the original's subject and links.reassessment_of. "
            "false (the default): 200, and nothing is written.",
            "example": False,
        },
    )


def _text(description: str, **kwargs) -> fields.String:
    return fields.String(
        required=kwargs.pop("required", True), metadata={"description": description}, **kwargs
    )


def _codes(description: str) -> fields.List:
    return fields.List(fields.String(), required=True, metadata={"description": description})


class ReassessmentSideSchema(Schema):
    """One of the two assessments compared."""

    rules_version = _text("The rules version that produced it.")
    assessment = fields.Nested(
        AssessmentSchema, required=True, metadata={"description": "The assessment itself."}
    )


class LevelChangeSchema(Schema):
    from_ = _text("The original triage level.", data_key="from", validate=LEVEL)
    to = _text("The triage level now.", validate=LEVEL)
    direction = _text(
        "raised (more urgent now), lowered (less urgent) or unchanged.",
        validate=validate.OneOf(("raised", "lowered", "unchanged")),
    )


class FlagChangeSchema(Schema):
    from_ = fields.Boolean(
        required=True, data_key="from", metadata={"description": "In the original assessment."}
    )
    to = fields.Boolean(required=True, metadata={"description": "In the new assessment."})


class CodeChangeSchema(Schema):
    from_ = _text(
        "In the original assessment; null when there is none.", data_key="from", allow_none=True
    )
    to = _text("In the new assessment; null when there is none.", allow_none=True)


class CodeSetChangeSchema(Schema):
    added = _codes("Codes only in the new assessment, in its order.")
    removed = _codes("Codes only in the original assessment, in its order.")


class PlanChangeSchema(Schema):
    from_status = _text(
        "The original plan's status; null when the plan was withheld.",
        allow_none=True,
        validate=validate.OneOf(PLAN_STATUSES),
    )
    to_status = _text(
        "The new plan's status; null when the plan is withheld.",
        allow_none=True,
        validate=validate.OneOf(PLAN_STATUSES),
    )


def _nested(schema, description: str) -> fields.Nested:
    return fields.Nested(schema, required=True, metadata={"description": description})


class AssessmentDifferenceSchema(Schema):
    """How the new assessment differs from the original, by stable codes and ids (texts and
    doses are in the two assessments)."""

    level = _nested(LevelChangeSchema, "The triage level, and which way it moved.")
    stop_stretching = _nested(FlagChangeSchema, "Whether to stop stretching.")
    time_frame = _nested(
        CodeChangeSchema,
        "How soon care is needed (a time frame code; null before rules 2.0.0 or with no red flag).",
    )
    complete = _nested(FlagChangeSchema, "Whether every red-flag question was answered.")
    red_flags = _nested(CodeSetChangeSchema, "Red flags (codes) that now fire or no longer do.")
    causes = _nested(CodeSetChangeSchema, "Likely causes (condition codes) gained or lost.")
    leading_cause = _nested(CodeChangeSchema, "The first likely cause (a condition code).")
    plan = _nested(PlanChangeSchema, "The exercise plan's status.")
    plan_items = _nested(CodeSetChangeSchema, "Exercises (ids) now in or no longer in the plan.")
    recommendations = _nested(CodeSetChangeSchema, "Advice (codes) now given or no longer given.")
    triage_changed = fields.Boolean(
        required=True,
        metadata={
            "description": "The triage level, the red flags, stop stretching or the time frame "
            "differ, or the triage is no longer complete."
        },
    )
    changed = fields.Boolean(
        required=True,
        metadata={
            "description": "The triage (level, red flags, stop stretching), the likely causes "
            "or the leading one, or the plan (status or exercises) differ. Advice and "
            "completeness alone do not count."
        },
    )


class ReassessmentLinksSchema(Schema):
    original = _text("The original assessment.")
    reassessment = _text("The stored reassessment (with store: true).", required=False)


class ReassessmentSchema(Schema):
    """A stored assessment's report evaluated again, the two results, and how they differ."""

    assessment_id = _text("The original assessment's id.")
    reassessment_id = _text(
        "The id of the new assessment when it was stored (store: true); null otherwise.",
        allow_none=True,
    )
    original = _nested(ReassessmentSideSchema, "The assessment as it was given and stored.")
    reassessed = _nested(ReassessmentSideSchema, "The same report under the chosen version.")
    difference = _nested(AssessmentDifferenceSchema, "How the new result differs.")
    links = _nested(ReassessmentLinksSchema, "Related resources.")
