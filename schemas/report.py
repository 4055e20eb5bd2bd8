"""The symptom report, as the API takes it.

The schema is generated from the rules' report vocabulary (``rules/report_fields.yaml``), the
same file the rule conditions are checked against, so the API cannot accept a field the rules
do not know or miss one they read. Every field is optional except ``pain.intensity``: an absent
answer means "not asked", and the response says which unanswered questions matter. So does a
null one, which many JSON serialisers send for "no value" (``NullMeansNotAsked``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from rules import load_library, load_report_fields
from schemas.fields import StrictBoolean, StrictInteger, StrictSchema, StrictString
from schemas.records import record_id_field, store_field, subject_field

# The rules versions shipped with this build: the spec lists them, so clients see what exists.
RULES_VERSIONS = load_library().versions
# Condition codes known to any loaded version; the chosen version still checks its own.
CONDITION_CODES = sorted({cause.code for e in load_library() for cause in e.ruleset.causes})

SECTION_TITLES = {
    "pain": "PainReport",
    "signs": "SignsReport",
    "function": "FunctionReport",
    "stretching": "StretchingReport",
    "history": "HistoryReport",
    "profile": "ProfileReport",
}


# Said in every section's description (the spec also marks those fields nullable).
NULL_MEANS_NOT_ASKED = (
    'An optional answer sent as null means "not asked" (unknown, never "no"), exactly as if '
    "it were left out."
)


def whole_number_message(minimum: int, maximum: int) -> str:
    """The one wording of a refused whole-number answer (4.5, "5", true): both the JSON schema
    and, through it, the fast acceptor's fallback answer with it."""
    return f"Must be a whole number from {minimum} to {maximum}."


class NullMeansNotAsked(StrictSchema):
    """A part of a report in which a null value is loaded as if its key had been left out.

    ``null_means_absent`` names the keys this applies to. A required key sent as null is thus
    reported as missing, not as "may not be null"."""

    null_means_absent: frozenset[str] = frozenset()

    @pre_load
    def drop_null_answers(self, data: Any, **kwargs) -> Any:
        if not isinstance(data, dict):
            return data  # marshmallow refuses it with its own message
        absent = self.null_means_absent
        return {key: value for key, value in data.items() if value is not None or key not in absent}


def _unique(values: list[Any]) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("Values must not repeat.")


def _field_for(spec: dict[str, Any]) -> fields.Field:
    metadata = {"description": spec["description"]}
    if "example" in spec:
        metadata["example"] = spec["example"]
    required = bool(spec.get("required"))
    # allow_none documents a null answer (nullable) in the spec; NullMeansNotAsked drops it
    # before the field ever sees it.
    presence = {"required": required, "allow_none": not required}
    kind = spec["kind"]
    if kind == "boolean":
        return StrictBoolean(**presence, metadata=metadata)
    if kind == "integer":
        return StrictInteger(
            **presence,
            validate=validate.Range(min=spec["minimum"], max=spec["maximum"]),
            error_messages={"invalid": whole_number_message(spec["minimum"], spec["maximum"])},
            metadata=metadata,
        )
    if kind == "choice":
        return StrictString(**presence, validate=validate.OneOf(spec["values"]), metadata=metadata)
    # A list of distinct values from a fixed set: bounded by the size of that set.
    return fields.List(
        StrictString(validate=validate.OneOf(spec["values"])),
        **presence,
        validate=[validate.Length(max=len(spec["values"])), _unique],
        metadata={**metadata, "uniqueItems": True},
    )


def build_section_schemas() -> dict[str, type[Schema]]:
    sections = load_report_fields()
    schemas: dict[str, type[Schema]] = {}
    for section, body in sections.items():
        schema_fields = {name: _field_for(spec) for name, spec in body["fields"].items()}
        cls = type(
            SECTION_TITLES.get(section, section.title() + "Report"),
            (NullMeansNotAsked,),
            {
                **schema_fields,
                "null_means_absent": frozenset(schema_fields),
                "__doc__": f"{body['description']} {NULL_MEANS_NOT_ASKED}",
            },
        )
        schemas[section] = cls
    return schemas


SECTION_SCHEMAS = build_section_schemas()
REQUIRED_SECTIONS = {
    section
    for section, body in load_report_fields().items()
    if any(spec.get("required") for spec in body["fields"].values())
}


def _nested_sections() -> dict[str, fields.Field]:
    return {
        section: fields.Nested(
            schema(),
            required=section in REQUIRED_SECTIONS,
            allow_none=section not in REQUIRED_SECTIONS,
            metadata={"description": schema.__doc__},
        )
        for section, schema in SECTION_SCHEMAS.items()
    }


def rules_version_field(nullable: bool = False) -> fields.Field:
    """``nullable``: in a symptom report, where null means left out (the newest version)."""
    omit = "Omit (or send null)" if nullable else "Omit"
    return StrictString(
        allow_none=nullable,
        validate=validate.OneOf(RULES_VERSIONS, error="Not an available rules version: {choices}."),
        metadata={
            "description": f"Pin a released rules version (SemVer). {omit} to use the newest.",
            "example": RULES_VERSIONS[-1],
        },
    )


SymptomReportSchema = type(
    "SymptomReportSchema",
    (NullMeansNotAsked,),
    {
        "rules_version": rules_version_field(nullable=True),
        **_nested_sections(),
        "null_means_absent": frozenset({"rules_version", *SECTION_SCHEMAS}),
        "__doc__": "A symptom report. Only pain.intensity is required; send what is known. "
        + NULL_MEANS_NOT_ASKED
        + " So does a whole section sent as null.",
    },
)


class AssessRequestSchema(SymptomReportSchema):
    """A symptom report to assess, with whom it is about and whether to keep a record."""

    store = store_field("assessment")
    subject = subject_field()


def conditions_field(required: bool) -> fields.Field:
    return fields.List(
        StrictString(validate=validate.OneOf(CONDITION_CODES)),
        required=required,
        validate=[validate.Length(min=1, max=13), _unique],
        metadata={
            "description": "Condition codes from GET /v1/conditions, the main one first.",
            "example": ["muscle_imbalance", "tight_hamstrings"],
            "uniqueItems": True,
        },
    )


def pain_intensity_field(required: bool) -> fields.Field:
    return StrictInteger(
        required=required,
        validate=validate.Range(min=0, max=10),
        error_messages={"invalid": whole_number_message(0, 10)},
        metadata={
            "description": "With conditions: current pain on the 0-10 numeric rating scale.",
            "example": 2,
        },
    )


class ReportPrescriptionRequestSchema(StrictSchema):
    """A plan from a symptom report (to pin a rules version, set it inside the report)."""

    report = fields.Nested(
        SymptomReportSchema(),
        required=True,
        metadata={"description": "A symptom report, as for POST /v1/assess."},
    )
    store = store_field("prescription")
    subject = subject_field()


class ConditionsPrescriptionRequestSchema(StrictSchema):
    """A plan for conditions already identified (documentation of one form of the request)."""

    rules_version = rules_version_field()
    conditions = conditions_field(required=True)
    pain_intensity = pain_intensity_field(required=True)
    profile = fields.Nested(
        SECTION_SCHEMAS["profile"](), metadata={"description": SECTION_SCHEMAS["profile"].__doc__}
    )
    store = store_field("prescription")
    subject = subject_field()


class AssessmentPrescriptionRequestSchema(StrictSchema):
    """A plan from a stored assessment (documentation of one form of the request)."""

    assessment_id = record_id_field("The id of a stored assessment of yours.", required=True)
    rules_version = rules_version_field()
    store = store_field("prescription")


class PrescriptionRequestSchema(StrictSchema):
    """Exactly one basis: a symptom report, conditions already identified (typically by a
    clinician) with the current pain, or a stored assessment."""

    rules_version = rules_version_field()
    report = fields.Nested(
        SymptomReportSchema(),
        metadata={"description": "A symptom report, as for POST /v1/assess."},
    )
    conditions = conditions_field(required=False)
    pain_intensity = pain_intensity_field(required=False)
    profile = fields.Nested(
        SECTION_SCHEMAS["profile"](),
        metadata={"description": "With conditions: " + SECTION_SCHEMAS["profile"].__doc__},
    )
    assessment_id = record_id_field("A stored assessment of yours to take the plan from.")
    store = store_field("prescription")
    subject = subject_field()

    @validates_schema
    def one_basis(self, data, **kwargs):
        bases = [key for key in ("report", "conditions", "assessment_id") if key in data]
        if len(bases) != 1:
            raise ValidationError(
                "Send exactly one of 'report', 'conditions' or 'assessment_id'.", "_schema"
            )
        if "assessment_id" in data:
            extra = [key for key in ("pain_intensity", "profile", "subject") if key in data]
            if extra:
                raise ValidationError(
                    "Does not go with 'assessment_id': the stored assessment provides it.",
                    extra[0],
                )
            return
        if "report" in data:
            extra = [key for key in ("pain_intensity", "profile") if key in data]
            if extra:
                raise ValidationError(
                    "Goes with 'conditions'; with a report, put it inside the report.", extra[0]
                )
            if "rules_version" in data:
                raise ValidationError(
                    "Goes with 'conditions'; with a report, put it inside the report.",
                    "rules_version",
                )
        elif "pain_intensity" not in data:
            raise ValidationError("Missing data for required field.", "pain_intensity")


def strict_schema_names() -> set[str]:
    """Component names of the request schemas that refuse unknown keys (for the spec)."""
    names, pending = set(), list(StrictSchema.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        name = cls.__name__
        names.add(name[: -len("Schema")] if name.endswith("Schema") else name)
    return names


class FhirReportQuerySchema(StrictSchema):
    """What a FHIR QuestionnaireResponse cannot say, given as query parameters: these are
    instructions to the service, not answers of the patient's."""

    rules_version = rules_version_field()


class FhirAssessQuerySchema(FhirReportQuerySchema):
    """The query of a QuestionnaireResponse to assess: also whether to store the result."""

    store = fields.Boolean(
        truthy={"true"},
        falsy={"false"},
        load_default=True,
        metadata={
            "description": 'With a QuestionnaireResponse body: "false" to assess without '
            'storing (as "store": false in JSON). Default "true".'
        },
    )
