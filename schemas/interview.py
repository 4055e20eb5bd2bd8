"""The adaptive interview over JSON: the request (the report so far and the questions declined)
and the answer (the next question, whether to stop, and the red-flag screen so far)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from rules import LEVELS, load_library
from rules.interview import STOP_REASONS
from schemas.fields import StrictString
from schemas.report import SymptomReportSchema
from schemas.responses import EscalationSchema

REPORT_FIELDS = frozenset(
    f"{section}.{name}"
    for section, body in load_library().report_sections.items()
    for name in body["fields"]
)
QUESTION_KINDS = ("checklist", "boolean", "integer", "choice", "list")
PRIORITIES = ("red_flag", "contradiction", "stop_or_causes")


class InterviewRequestSchema(SymptomReportSchema):
    """The report so far (the same as POST /v1/assess takes, without store or subject), and
    the questions the person declined to answer."""

    declined = fields.List(
        StrictString(),
        load_default=list,
        metadata={
            "description": "Report fields (section.field) the person declined to answer: never "
            "asked again, and read as unanswered, never as no.",
            "example": ["history.hormone_treatment"],
        },
    )

    @validates("declined")
    def known_fields(self, value: list[str], **kwargs: Any) -> None:
        unknown = [path for path in value if path not in REPORT_FIELDS]
        if unknown:
            raise ValidationError(
                [f"Not a report field: {path!r}." for path in dict.fromkeys(unknown)]
            )


class AnswerOptionSchema(Schema):
    value = fields.Raw(
        metadata={"description": "For a single question: the answer to put in the report."}
    )
    field = fields.String(
        metadata={"description": "For a checklist: the yes/no report field this item answers."}
    )
    text = fields.String(required=True, metadata={"description": "What the person is shown."})
    why = fields.String(metadata={"description": "For a checklist item: why it is asked."})


class InterviewQuestionSchema(Schema):
    fields_ = fields.List(
        fields.String(),
        data_key="fields",
        required=True,
        metadata={"description": "The report fields (section.field) this question answers."},
    )
    kind = fields.String(
        required=True,
        validate=validate.OneOf(QUESTION_KINDS),
        metadata={
            "description": "checklist (tick the items that apply: each ticked field true, the "
            "others false; 'None of these' makes them all false), or the field's own kind."
        },
    )
    checklist = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "The checklist's id (rules/checklists.yaml), or null."},
    )
    text = fields.String(
        required=True, metadata={"description": "The question, worded as in the Questionnaire."}
    )
    why = fields.String(required=True, metadata={"description": "Why it is asked."})
    could_raise_level_to = fields.String(
        allow_none=True,
        required=True,
        validate=validate.OneOf(LEVELS),
        metadata={"description": "The most urgent level a worrying answer could lead to."},
    )
    priority = fields.String(
        required=True,
        validate=validate.OneOf(PRIORITIES),
        metadata={
            "description": "red_flag (a safety question); contradiction (the red flags are "
            "decided, but this answer could contradict another and be read the safer way); or "
            "stop_or_causes (it could still change the stop decision or the leading cause)."
        },
    )
    options = fields.List(
        fields.Nested(AnswerOptionSchema),
        allow_none=True,
        required=True,
        metadata={"description": "The answers to choose from (null for a number)."},
    )
    minimum = fields.Integer(metadata={"description": "For a number: the smallest answer."})
    maximum = fields.Integer(metadata={"description": "For a number: the largest answer."})


class InterviewAnswerSchema(Schema):
    rules_version = fields.String(
        required=True, metadata={"description": "The rules version that chose the question."}
    )
    should_stop = fields.Boolean(
        required=True, metadata={"description": "True: ask nothing more (see stop_reason)."}
    )
    stop_reason = fields.String(
        allow_none=True,
        required=True,
        validate=validate.OneOf(STOP_REASONS),
        metadata={
            "description": "emergency_found (get emergency care now), "
            "triage_complete_and_nothing_left_that_changes_the_answer, or nothing_left_to_ask "
            "(red-flag questions were declined: the triage is incomplete); null while asking."
        },
    )
    question = fields.Nested(
        InterviewQuestionSchema,
        allow_none=True,
        required=True,
        metadata={"description": "The next question; null when should_stop is true."},
    )
    screen = fields.Nested(
        EscalationSchema,
        required=True,
        metadata={"description": "The POST /v1/escalation-check answer for the report so far."},
    )
