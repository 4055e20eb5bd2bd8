"""Advice and the exercise plan in a response."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from rules.loader import CATEGORIES, PHASES
from rules.model import PLAN_STATUSES
from schemas.responses.common import (
    RuleReasonSchema,
    _nested,
    _nested_list,
    _s,
    _source,
    _texts,
)

INTENSITIES = ("normal", "reduced", "pain_free")


class RecommendationSchema(Schema):
    code = _s("Stable code of the advice.")
    category = _s("Kind of advice.", validate=validate.OneOf(CATEGORIES))
    text = _s("The advice, in plain language.")
    source = _source()


class DoseSchema(Schema):
    """How much of an exercise. Only the keys that apply to the exercise are present."""

    minutes = fields.Integer(metadata={"description": "Minutes of the activity."})
    hold_seconds = fields.Integer(metadata={"description": "Seconds to hold each stretch."})
    repetitions = fields.Integer(metadata={"description": "Repetitions of the stretch."})
    repetitions_min = fields.Integer(metadata={"description": "Fewest repetitions per set."})
    repetitions_max = fields.Integer(metadata={"description": "Most repetitions per set."})
    sets = fields.Integer(metadata={"description": "Sets."})
    times_per_week = fields.Integer(metadata={"description": "Sessions per week."})


class PlanItemSchema(Schema):
    exercise_id = _s("Stable exercise id (see GET /v1/exercises).")
    name = _s("Name of the exercise.")
    phase = _s("warm_up, stretch or strengthen.", validate=validate.OneOf(PHASES))
    dose = _nested(DoseSchema, "How much: hold, repetitions, sets, minutes, sessions a week.")
    dose_parameters = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "For each dose key, the id of the parameter that set it."},
    )
    per_side = fields.Boolean(required=True, metadata={"description": "The dose is for each leg."})
    intensity = _s(
        "normal, reduced, or pain_free (work only in a pain-free range).",
        validate=validate.OneOf(INTENSITIES),
    )
    adjustments = fields.List(
        fields.Nested(RuleReasonSchema),
        required=True,
        metadata={"description": "Rules that changed this item from the standard programme."},
    )
    progression = _s("How to progress over the weeks.")
    steps = _texts("How to do it, step by step.")
    cues = _texts("What to focus on while doing it.")
    cautions = _texts("What to watch out for.")
    source = _source()


class ExcludedExerciseSchema(Schema):
    exercise_id = _s("Stable exercise id.")
    name = _s("Name of the exercise.")
    reasons = _nested_list(RuleReasonSchema, "The rules that left it out, and why.")


class SafetyNoteSchema(Schema):
    text = _s("A safety rule that goes with every plan.")
    source = _source()


class ExercisePlanSchema(Schema):
    status = _s(
        "ready; pending_professional_review: only relief measures and gentle, pain-free work "
        "until a professional has assessed the leg; awaiting_safety_answers (rules 2.0.0 and "
        "later): not to be started until the open red-flag questions are answered (a FHIR "
        "CarePlan in draft).",
        validate=validate.OneOf(PLAN_STATUSES),
    )
    status_reasons = _nested_list(
        RuleReasonSchema, "Why the plan awaits review or answers, if it does."
    )
    items = _nested_list(PlanItemSchema, "The prescribed exercises, in session order.")
    excluded = fields.List(
        fields.Nested(ExcludedExerciseSchema),
        required=True,
        metadata={"description": "Exercises left out of the standard programme, and why."},
    )
    safety = _nested_list(SafetyNoteSchema, "Safety rules that go with every plan.")
