"""Response schemas.

The rules core already returns JSON-ready dicts, and the service writes them out directly (a
marshmallow dump of a large nested response would cost more than the whole evaluation). These
schemas are the documented contract: they produce the OpenAPI description, and the test suite
checks real responses against that description (schemathesis' response conformance check), so
the documentation cannot drift from what is sent.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from rules import LEVELS, load_library
from rules.loader import CATEGORIES, PHASES
from rules.model import PLAN_STATUSES

LEVEL = validate.OneOf(LEVELS)
LIKELIHOODS = ("high", "moderate", "low")
INTENSITIES = ("normal", "reduced", "pain_free")
PRIORITIES = ("contradiction", "red_flag", "stop_stretching", "likely_causes")
# Every time frame a loaded rules version defines, in the order of the newest.
TIME_FRAMES = tuple(
    dict.fromkeys(
        frame.id
        for evaluator in reversed(list(load_library()))
        for frame in evaluator.ruleset.time_frames
    )
)


def _s(description: str, **kwargs) -> fields.String:
    return fields.String(
        required=kwargs.pop("required", True), metadata={"description": description}, **kwargs
    )


def _source() -> fields.Nested:
    return fields.Nested(
        SourceSchema, required=True, metadata={"description": "Where this comes from."}
    )


def _nested(schema, description: str, **kwargs) -> fields.Nested:
    return fields.Nested(
        schema,
        required=kwargs.pop("required", True),
        metadata={"description": description},
        **kwargs,
    )


def _nested_list(schema, description: str, **kwargs) -> fields.List:
    return fields.List(
        fields.Nested(schema),
        required=kwargs.pop("required", True),
        metadata={"description": description},
        **kwargs,
    )


def _texts(description: str) -> fields.List:
    return fields.List(fields.String(), required=True, metadata={"description": description})


class SourceSchema(Schema):
    """Where a rule or number comes from: a paragraph of the article, or a named guideline."""

    document = _s('"article", or the name of an external guideline or method document.')
    section = _s("The article's section heading (or the method's section).", required=False)
    paragraph = fields.Integer(
        metadata={"description": "The paragraph number under that heading, from 1."}
    )
    url = _s("The address of an external guideline.", required=False)
    quote = _s(
        "Rules 2.0.0 and later: the words of the article paragraph the rule relies on.",
        required=False,
    )
    recommendation = _s(
        "Rules 2.0.0 and later: the recommendation (or part) of the guideline relied on.",
        required=False,
    )


class RuleReasonSchema(Schema):
    """A rule that decided something, in words, with its source."""

    rule_id = _s("The stable id of the rule.")
    reason = _s("What the rule decided and why, in plain language.")
    source = _source()


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


def _version_field():
    return _s("The rules version that produced this response.")


def _disclaimer_field():
    return _s("Decision support, not a diagnosis: always shown with the result.")


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
        validate=validate.OneOf(("report", "conditions")),
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


class ExerciseSchema(Schema):
    id = _s("Stable exercise id.")
    name = _s("Name.")
    kind = _s("warm_up, stretch or strengthen.", validate=validate.OneOf(PHASES))
    supported = fields.Boolean(
        required=True,
        allow_none=True,
        metadata={"description": "For stretches: done lying down with the leg supported."},
    )
    equipment = fields.String(
        required=True, allow_none=True, metadata={"description": "Equipment needed, if any."}
    )
    steps = _texts("How to do it, step by step.")
    cues = _texts("What to focus on.")
    cautions = _texts("What to watch out for.")
    contraindications = _texts("When it is left out of a plan.")
    source = _source()


class ExerciseListSchema(Schema):
    rules_version = _version_field()
    exercises = _nested_list(ExerciseSchema, "The exercises.")


class ClassificationCodeSchema(Schema):
    code = _s("The code.")
    display = _s("The classification's title for it.")


class ApplicabilitySchema(Schema):
    field = _s("A report field path.")
    equals = fields.Raw(required=True, metadata={"description": "The value it must have."})


class CodeFamilySchema(Schema):
    code = _s("The category code (not billable on its own when it has leaves).")
    display = _s("The classification's title for the category.")
    leaves = fields.Dict(
        keys=fields.String(validate=validate.OneOf(("right", "left", "both", "unspecified"))),
        values=fields.Nested(ClassificationCodeSchema),
        required=True,
        metadata={
            "description": "The billable leaf for each side the report may give (pain.side); "
            "`unspecified` when no side is given. Without a `both` leaf, both legs take the "
            "right and the left leaf."
        },
    )
    applies_when = _nested(
        ApplicabilitySchema,
        "When this family is used; null: always (the fallback).",
        allow_none=True,
    )


class ConditionCodingSchema(Schema):
    system = _s("The code system: http://hl7.org/fhir/sid/icd-10-cm.")
    codes = _nested_list(
        CodeFamilySchema,
        "Code families, in order; the first that applies to the report is used. Empty when no "
        "code fits.",
    )
    no_code_reason = _s("Why no code fits (null when there are codes).", allow_none=True)


class ConditionSchema(Schema):
    code = _s("Stable condition code.")
    name = _s("Name.")
    summary = _s("What it is, in plain language.")
    source = _source()
    signals = _nested_list(EvidenceSchema, "The report signals that point to it.")
    icd10cm = _nested(
        ConditionCodingSchema,
        "Its ICD-10-CM codes, or why none fits. Suggestions for the clinician who files the "
        "record, never a confirmed diagnosis.",
    )


class ConditionListSchema(Schema):
    rules_version = _version_field()
    conditions = _nested_list(ConditionSchema, "The conditions, in the rule set's order.")


class RulesVersionSchema(Schema):
    version = _s("SemVer version of the rule set.")
    released = _s("Release date (YYYY-MM-DD).")
    summary = _s("What the version contains or changed.")
    digest = _s("SHA-256 of the rule files: a released version never changes.")
    default = fields.Boolean(required=True, metadata={"description": "Used when none is pinned."})


class RulesVersionListSchema(Schema):
    default_version = _s("The version used when a request pins none.")
    versions = _nested_list(RulesVersionSchema, "Loaded versions, oldest first.")


class ParameterSchema(Schema):
    id = _s("Stable parameter id.")
    value = fields.Float(required=True, metadata={"description": "The value."})
    unit = _s("Unit.")
    description = _s("What it sets.")
    rationale = _s("Why this value.")
    source = _source()


def _rules(description: str) -> fields.List:
    return fields.List(fields.Dict(), required=True, metadata={"description": description})


class RuleSetDocumentSchema(Schema):
    """A rule set as served: every rule with its condition, parameters and source."""

    version = _s("SemVer version.")
    released = _s("Release date.")
    summary = _s("What the version contains.")
    digest = _s("SHA-256 of the rule files.")
    disclaimer = _disclaimer_field()
    documents = fields.Dict(
        required=True, metadata={"description": "The article's sections and the guidelines cited."}
    )
    parameters = _nested_list(ParameterSchema, "Every number the rules use.")
    red_flags = _rules("Red flags with their conditions.")
    time_frames = fields.List(
        fields.Nested(TimeFrameSchema),
        metadata={"description": "Rules 2.0.0 and later: how soon each red flag needs care."},
    )
    contradictions = fields.List(
        fields.Dict(),
        metadata={
            "description": "Rules 2.0.0 and later: answers that cannot both be true, how each "
            "is read the safer way, and the question that confirms it."
        },
    )
    presuppositions = fields.List(
        fields.Dict(),
        metadata={
            "description": "Rules 2.0.0 and later: what advice may take for granted; every "
            "advice item names its presuppositions and its condition includes them."
        },
    )
    stop_rules = _rules("Stop-stretching rules with their conditions.")
    causes = _rules("Causes with their signals and conditions.")
    recommendations = _rules("Advice with its conditions.")
    exercises = _nested_list(ExerciseSchema, "The exercises.")
    prescription = fields.Dict(
        required=True,
        metadata={"description": "The programme, its doses and the plan rules."},
    )


# -- stored records ---------------------------------------------------------------------------


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


class ReadinessChecksSchema(Schema):
    rules = _s("loaded when the rules are loaded.")
    database = _s(
        "ok; unreachable (down or timing out); misconfigured (wrong database name, user or "
        "password: see the logs); or full (its disk was full moments ago).",
        validate=validate.OneOf(("ok", "unreachable", "misconfigured", "full")),
    )
    migrations = _s(
        "current, behind (run the migrations), or unknown (database unreachable).",
        validate=validate.OneOf(("current", "behind", "unknown")),
    )


class ReadinessSchema(Schema):
    status = _s("ready, or not_ready.", validate=validate.OneOf(("ready", "not_ready")))
    checks = _nested(ReadinessChecksSchema, "Each check's result.")


class HealthSchema(Schema):
    status = _s("ok when the process is up and the rules are loaded.")
    rules_versions = fields.List(
        fields.String(), required=True, metadata={"description": "Loaded rules versions."}
    )
    default_rules_version = _s("The newest loaded version.")


class ProblemSchema(Schema):
    """An error, as RFC 9457 problem details (media type application/problem+json)."""

    type = _s("A URI naming the kind of problem; about:blank for a plain HTTP error.")
    title = _s("Short summary of the kind of problem.")
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    detail = _s("What went wrong in this request.")
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "For validation errors: messages by field path, e.g. "
            '{"pain.intensity": ["Not a valid integer: send a JSON number without quotes."]}'
        },
    )
    request_id = _s("The request id, as in the X-Request-ID header.")
