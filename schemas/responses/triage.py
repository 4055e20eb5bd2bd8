"""The triage in a response: red flags and how soon to get care, the likely causes with their
evidence, and the questions still worth asking."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.responses.common import (
    LEVEL,
    TIME_FRAMES,
    RuleReasonSchema,
    _nested_list,
    _s,
    _source,
)

LIKELIHOODS = ("high", "moderate", "low")
PRIORITIES = ("contradiction", "red_flag", "stop_stretching", "likely_causes")


class TimeFrameSchema(Schema):
    """How soon to get care (rules 2.0.0 and later)."""

    code = _s(
        "now (emergency), today, within_24_hours, within_48_hours, within_two_weeks, or routine "
        "(book an appointment).",
        validate=validate.OneOf(TIME_FRAMES),
    )
    when = _s('How soon, in a few words ("today", "within 24 hours").')
    text = _s("What to do and where, in plain language.")
    source = _source()


class RedFlagSchema(Schema):
    code = _s("Stable code of the red flag.")
    level = _s("The triage level this red flag calls for.", validate=LEVEL)
    time_frame = _s(
        "How soon this red flag needs care (rules 2.0.0 and later; see triage.time_frame).",
        required=False,
        validate=validate.OneOf(TIME_FRAMES),
    )
    message = _s("What it may mean and what to do, in plain language.")
    source = _source()
    rule_id = _s("The stable id of the rule that fired.")


class TriageSchema(Schema):
    level = _s(
        "emergency (care now), urgent (a clinician within the time frame of its red flag: today, "
        "within a day, two days or two weeks; in rules 1.0.0, within urgent_care_within_hours), "
        "see_professional (book a doctor or physical therapist) or self_care. The most urgent "
        "red flag that fired.",
        validate=LEVEL,
    )
    time_frame = fields.Nested(
        TimeFrameSchema,
        allow_none=True,
        metadata={
            "description": "Rules 2.0.0 and later: the most pressing time frame among the red "
            "flags that fired; null when none fired."
        },
    )
    stop_stretching = fields.Boolean(
        required=True, metadata={"description": "Stop stretching now."}
    )
    complete = fields.Boolean(
        required=True,
        metadata={
            "description": "False while any red-flag question is unanswered (the level could "
            "still rise) or two answers contradict each other (they are read the safer way and "
            "asked again). See missing_information."
        },
    )
    red_flags = _nested_list(RedFlagSchema, "The red flags that fired, most urgent first.")
    stop_reasons = fields.List(
        fields.Nested(RuleReasonSchema),
        required=True,
        metadata={"description": "Why stretching should stop (empty when it need not)."},
    )


class EvidenceSchema(Schema):
    signal = _s("The stable id of the signal.")
    strength = _s(
        "strong (specific to the cause) or supporting (shared with other causes).",
        validate=validate.OneOf(("strong", "supporting")),
    )
    description = _s("What the signal is, in plain language.")
    fields_ = fields.List(
        fields.String(),
        required=True,
        data_key="fields",
        metadata={"description": "The report fields this signal read."},
    )
    source = _source()


class LikelyCauseSchema(Schema):
    code = _s("Stable condition code (see GET /v1/conditions).")
    name = _s("Name of the cause.")
    likelihood = _s(
        "A possibility, never a diagnosis: high, moderate or low.",
        validate=validate.OneOf(LIKELIHOODS),
    )
    score = fields.Float(
        required=True,
        validate=validate.Range(min=0, max=1),
        metadata={"description": "Ranking score in [0, 1] from the signals present."},
    )
    summary = _s("What the cause is, in plain language.")
    evidence = _nested_list(EvidenceSchema, "The signals in the report that support it.")
    source = _source()


class MissingInformationSchema(Schema):
    field = _s(
        "The request field that is unanswered (e.g. signs.saddle_numbness), or answered in a way "
        "another answer contradicts."
    )
    question = _s("A question a person can answer.")
    why = _s("Why the answer matters.")
    priority = _s(
        "contradiction (two answers disagree: confirm; listed first), red_flag (could raise the "
        "triage level), stop_stretching, or likely_causes.",
        validate=validate.OneOf(PRIORITIES),
    )
    could_raise_level_to = fields.String(
        required=True,
        allow_none=True,
        validate=LEVEL,
        metadata={"description": "For red-flag questions, the level a yes could lead to."},
    )
    rules = fields.List(
        fields.String(), required=True, metadata={"description": "Ids of the rules it decides."}
    )
