"""The catalogue responses: exercises, conditions and their codes, and the versioned rule sets."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from rules.loader import PHASES
from schemas.responses.common import (
    _disclaimer_field,
    _nested,
    _nested_list,
    _s,
    _source,
    _texts,
    _version_field,
)
from schemas.responses.triage import EvidenceSchema, TimeFrameSchema


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
