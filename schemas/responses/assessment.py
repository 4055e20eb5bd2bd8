"""The three evaluation responses (an assessment, an escalation, an exercise prescription) and
the trace of the rules behind them."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.responses.common import (
    LEVEL,
    RuleReasonSchema,
    _disclaimer_field,
    _nested,
    _nested_list,
    _s,
    _version_field,
)
from schemas.responses.plan import ExercisePlanSchema, RecommendationSchema
from schemas.responses.triage import (
    LikelyCauseSchema,
    MissingInformationSchema,
    RedFlagSchema,
    TimeFrameSchema,
    TriageSchema,
)

PRESCRIPTION_BASES = ("report", "conditions")


class TraceEntrySchema(Schema):
    rule_id = _s("The stable id of the rule.")
    kind = _s("The kind of rule (red_flag, cause_signal, stop_rule, recommendation, plan_*).")
    parameters = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        required=True,
        metadata={"description": "The parameter values the rule used, by parameter id."},
    )


class TraceSchema(Schema):
    """Which rules fired, and the parameter values they used."""

    rules_fired = _nested_list(TraceEntrySchema, "Every rule that fired, in evaluation order.")
    parameters = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        required=True,
        metadata={"description": "Every parameter value used, by parameter id."},
    )


class AssessmentSchema(Schema):
    rules_version = _version_field()
    triage = _nested(TriageSchema, "Triage level, red flags and whether to stop stretching.")
    likely_causes = fields.List(
        fields.Nested(LikelyCauseSchema),
        required=True,
        metadata={"description": "Possible causes, best first. Empty when nothing points to one."},
    )
    recommendations = _nested_list(RecommendationSchema, "Advice, each item with its source.")
    exercise_plan = fields.Nested(
        ExercisePlanSchema,
        required=True,
        allow_none=True,
        metadata={"description": "Null when exercise must wait (see exercise_plan_withheld)."},
    )
    exercise_plan_withheld = fields.List(
        fields.Nested(RuleReasonSchema),
        required=True,
        metadata={"description": "Why there is no exercise plan (empty when there is one)."},
    )
    missing_information = fields.List(
        fields.Nested(MissingInformationSchema),
        required=True,
        metadata={"description": "Questions still worth asking, red-flag questions first."},
    )
    disclaimer = _disclaimer_field()
    trace = _nested(TraceSchema, "Which rules fired and the parameter values they used.")


class EscalationSchema(Schema):
    rules_version = _version_field()
    level = _s("The triage level; the same as POST /v1/assess gives.", validate=LEVEL)
    escalate = fields.Boolean(
        required=True,
        metadata={"description": "True when the level is above self_care: refer the user on."},
    )
    stop_stretching = fields.Boolean(required=True, metadata={"description": "Stop now."})
    complete = fields.Boolean(
        required=True, metadata={"description": "False while a red-flag question is unanswered."}
    )
    red_flags = _nested_list(RedFlagSchema, "The red flags that fired, most urgent first.")
    unanswered_red_flag_questions = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Fields whose answers could still raise the level."},
    )
    time_frame = fields.Nested(
        TimeFrameSchema,
        allow_none=True,
        metadata={"description": "Rules 2.0.0 and later: how soon to get care (null: no flag)."},
    )
    contradictory_answers = fields.List(
        fields.String(),
        metadata={
            "description": "Rules 2.0.0 and later: fields whose answers contradict another "
            "answer; they are read the safer way and should be asked again."
        },
    )


class PrescriptionSchema(Schema):
    rules_version = _version_field()
    basis = _s(
        "report (also when made from a stored assessment's report) or conditions.",
        validate=validate.OneOf(PRESCRIPTION_BASES),
    )
    triage = fields.Nested(TriageSchema, metadata={"description": "With a report: the triage."})
    conditions = fields.List(fields.String(), metadata={"description": "With conditions."})
    stop_stretching = fields.Boolean(metadata={"description": "With conditions: stop stretching."})
    stop_reasons = _nested_list(
        RuleReasonSchema, "With conditions: why stretching should stop.", required=False
    )
    exercise_plan = _nested(
        ExercisePlanSchema, "The plan; null when exercise must wait.", allow_none=True
    )
    exercise_plan_withheld = _nested_list(RuleReasonSchema, "Why there is no plan, if none.")
    disclaimer = _disclaimer_field()
    trace = _nested(TraceSchema, "Which rules fired and the parameter values they used.")
