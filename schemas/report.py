"""The symptom report, as the API takes it.

The schema is generated from the rules' report vocabulary (``rules/report_fields.yaml``), the
same file the rule conditions are checked against, so the API cannot accept a field the rules
do not know or miss one they read. Every field is optional except ``pain.intensity``: an absent
answer means "not asked", and the response says which unanswered questions matter.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from rules import load_report_fields
from schemas.fields import StrictBoolean, StrictInteger, StrictString

SEMVER_PATTERN = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$"

SECTION_TITLES = {
    "pain": "PainReport",
    "signs": "SignsReport",
    "function": "FunctionReport",
    "stretching": "StretchingReport",
    "history": "HistoryReport",
    "profile": "ProfileReport",
}


class StrictSchema(Schema):
    """Refuses unknown keys, naming them: a misspelt safety field must not pass unnoticed."""

    class Meta:
        unknown = RAISE


def _unique(values: list[Any]) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("Values must not repeat.")


def _field_for(spec: dict[str, Any]) -> fields.Field:
    metadata = {"description": spec["description"]}
    if "example" in spec:
        metadata["example"] = spec["example"]
    required = bool(spec.get("required"))
    kind = spec["kind"]
    if kind == "boolean":
        return StrictBoolean(required=required, metadata=metadata)
    if kind == "integer":
        return StrictInteger(
            required=required,
            validate=validate.Range(min=spec["minimum"], max=spec["maximum"]),
            metadata=metadata,
        )
    if kind == "choice":
        return StrictString(
            required=required, validate=validate.OneOf(spec["values"]), metadata=metadata
        )
    # A list of distinct values from a fixed set: bounded by the size of that set.
    return fields.List(
        StrictString(validate=validate.OneOf(spec["values"])),
        required=required,
        validate=[validate.Length(max=len(spec["values"])), _unique],
        metadata=metadata,
    )


def build_section_schemas() -> dict[str, type[Schema]]:
    sections = load_report_fields()
    schemas: dict[str, type[Schema]] = {}
    for section, body in sections.items():
        schema_fields = {name: _field_for(spec) for name, spec in body["fields"].items()}
        cls = type(
            SECTION_TITLES.get(section, section.title() + "Report"),
            (StrictSchema,),
            {
                **schema_fields,
                "__doc__": body["description"],
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
            metadata={"description": schema.__doc__},
        )
        for section, schema in SECTION_SCHEMAS.items()
    }


RULES_VERSION_FIELD = {
    "rules_version": StrictString(
        validate=validate.Regexp(SEMVER_PATTERN, error="Not a SemVer version such as 1.0.0."),
        metadata={
            "description": "Pin a released rules version (SemVer). Omit to use the newest.",
            "example": "1.0.0",
        },
    )
}


SymptomReportSchema = type(
    "SymptomReportSchema",
    (StrictSchema,),
    {
        **RULES_VERSION_FIELD,
        **_nested_sections(),
        "__doc__": "A symptom report. Only pain.intensity is required; send what is known.",
    },
)


class PrescriptionRequestSchema(StrictSchema):
    """Either a symptom report, or conditions already identified (typically by a clinician)
    with the current pain; not both."""

    rules_version = RULES_VERSION_FIELD["rules_version"]
    report = fields.Nested(
        SymptomReportSchema(),
        metadata={"description": "A symptom report, as for POST /v1/assess."},
    )
    conditions = fields.List(
        StrictString(validate=validate.Regexp(r"^[a-z][a-z0-9_]*$")),
        validate=[validate.Length(min=1, max=13), _unique],
        metadata={
            "description": "Condition codes from GET /v1/conditions, the main one first.",
            "example": ["muscle_imbalance", "tight_hamstrings"],
        },
    )
    pain_intensity = StrictInteger(
        validate=validate.Range(min=0, max=10),
        metadata={
            "description": "With conditions: current pain on the 0-10 numeric rating scale.",
            "example": 2,
        },
    )
    profile = fields.Nested(
        SECTION_SCHEMAS["profile"](),
        metadata={"description": "With conditions: " + SECTION_SCHEMAS["profile"].__doc__},
    )

    @validates_schema
    def one_basis(self, data, **kwargs):
        if ("report" in data) == ("conditions" in data):
            raise ValidationError("Send exactly one of 'report' or 'conditions'.", "_schema")
        if "report" in data:
            extra = [key for key in ("pain_intensity", "profile") if key in data]
            if extra:
                raise ValidationError(
                    "Goes with 'conditions'; with a report, put it inside the report.", extra[0]
                )
            pinned = data["report"].get("rules_version")
            if pinned and data.get("rules_version") not in (None, pinned):
                raise ValidationError("Differs from report.rules_version.", "rules_version")
        elif "pain_intensity" not in data:
            raise ValidationError("Missing data for required field.", "pain_intensity")
