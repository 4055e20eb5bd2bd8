"""How the spec names its types, so that a client generated from it has one type for each
thing: a shared enumeration is one component that its fields refer to, and a field that may be
null is "its component, or null" in OpenAPI 3.0's words, never a second, empty type.

Run by ``finish_spec`` once every blueprint is registered; it edits the spec in place.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from rules import LEVELS
from rules.loader import PHASES
from schemas.report import RULES_VERSIONS
from schemas.responses import PLAN_STATUSES, PRESCRIPTION_BASES, TIME_FRAMES

# Value lists that more than one field takes, each documented once as a named component that the
# fields refer to: a generated client then has one type for each (one TriageLevel, not a
# Triage.level, a RedFlag.level and an Escalation.level). A field is given the reference when
# its enum is exactly the list, in the same order.
SHARED_ENUMERATIONS = {
    "TriageLevel": (
        LEVELS,
        "How soon to get care, least urgent first: self_care, see_professional (book a doctor "
        "or physical therapist), urgent (a clinician within the red flag's time frame), "
        "emergency (care now).",
    ),
    "TimeFrameCode": (TIME_FRAMES, "How soon a red flag needs care (rules 2.0.0 and later)."),
    "PlanStatus": (PLAN_STATUSES, "Whether an exercise plan can be started."),
    "ExercisePhase": (PHASES, "The part of a session an exercise belongs to."),
    "PrescriptionBasis": (PRESCRIPTION_BASES, "What an exercise prescription was made from."),
    "RulesVersionNumber": (RULES_VERSIONS, "A loaded rules version (SemVer)."),
}
# Keys whose values are examples of data, never schemas.
NOT_SCHEMAS = frozenset(("example", "examples"))


def name_the_types(spec: APISpec) -> None:
    """The shared enumerations first, so that a choice that is one of them (or null) refers to
    it; the choices left that may be null are then named after their field."""
    _nullable_references(_schema_places(spec))
    _share_enumerations(spec)
    _name_nullable_choices(spec)


def _schema_places(spec: APISpec) -> dict[str, Any]:
    """The parts of the spec that hold schemas, as the spec holds them (edited in place)."""
    components = spec.components
    return {
        "paths": spec._paths,
        "schemas": components.schemas,
        "parameters": components.parameters,
        "responses": components.responses,
    }


def _schemas_in(document: Any):
    """Every dict in the document that may be a schema (examples are data: left out)."""
    if isinstance(document, dict):
        yield document
        for key, value in document.items():
            if key not in NOT_SCHEMAS:
                yield from _schemas_in(value)
    elif isinstance(document, list):
        for value in document:
            yield from _schemas_in(value)


def _nullable_references(document: dict[str, Any]) -> None:
    """A field that may be null and otherwise holds a component, in OpenAPI 3.0's words.

    apispec writes it as anyOf the component or ``{"type": "object", "nullable": true}``, which
    generated clients take for a second, empty class. ``nullable`` beside an ``allOf`` of the
    one reference says the same, and clients read it as "the component, or null"."""
    for schema in _schemas_in(document):
        options = schema.get("anyOf")
        if not (isinstance(options, list) and len(options) == 2):
            continue
        reference, null = options
        if set(reference) == {"$ref"} and null == {"type": "object", "nullable": True}:
            del schema["anyOf"]
            schema["nullable"] = True
            schema["allOf"] = [reference]


def _share_enumerations(spec: APISpec) -> None:
    by_values = {
        tuple(values): name for name, (values, _description) in SHARED_ENUMERATIONS.items()
    }
    for schema in _schemas_in(_schema_places(spec)):
        enum = schema.get("enum")
        if not isinstance(enum, list):
            continue
        name = by_values.get(tuple(value for value in enum if value is not None))
        if name is None:
            continue
        reference = {"$ref": f"#/components/schemas/{name}"}
        del schema["enum"]
        schema.pop("type", None)
        if not schema:
            schema.update(reference)  # nothing to say beside it: the reference alone
        else:
            schema["allOf"] = [reference]
    for name, (values, description) in SHARED_ENUMERATIONS.items():
        component = {"type": "string", "enum": list(values), "description": description}
        spec.components.schema(name, component=component)


def _name_nullable_choices(spec: APISpec) -> None:
    """A component's field that is a choice or null (a report answer, which may be sent as
    null), with its choice as a named component.

    Written inline, as an enum with null in it beside nullable, it makes generated clients
    define several types for one choice; as "the component, or null" it is one enumeration
    type, or None. A list of choices that may be null gets its item named the same way."""
    for owner, component in list(spec.components.schemas.items()):
        for field, prop in component.get("properties", {}).items():
            if not prop.get("nullable"):
                continue
            title = owner + "".join(part.title() for part in field.split("_"))
            items = prop.get("items")
            if _is_choice(prop):
                _refer_to_choice(spec, prop, title, f"The choices of {owner}.{field}.")
            elif isinstance(items, dict) and _is_choice(items):
                _refer_to_choice(spec, items, f"{title}Item", f"One of {owner}.{field}.")


def _is_choice(schema: dict[str, Any]) -> bool:
    return isinstance(schema.get("enum"), list) and "allOf" not in schema


def _refer_to_choice(spec: APISpec, schema: dict[str, Any], name: str, description: str) -> None:
    values = [value for value in schema.pop("enum") if value is not None]
    component = {"type": schema.pop("type", "string"), "enum": values, "description": description}
    spec.components.schema(name, component=component)
    if schema:
        schema["allOf"] = [{"$ref": f"#/components/schemas/{name}"}]
    else:
        schema["$ref"] = f"#/components/schemas/{name}"
