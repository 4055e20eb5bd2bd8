"""The symptom intake as a FHIR Questionnaire: one group per report section, one item per
field, each with its help text."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from schemas.fhir import QUESTIONNAIRE_URL, REPORT_VALUE_SYSTEM, TITLE

ITEM_TYPES = {"boolean": "boolean", "integer": "integer", "choice": "choice", "list": "choice"}
ANSWER_VALUE = {"boolean": "valueBoolean", "integer": "valueInteger"}
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
HIDDEN = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
HELP_SUFFIX = ".help"

# A question that only makes sense after another, as (field, asked only when, answer).
ENABLE_WHEN = {
    "history.home_care_days": ("history.home_care_tried", "exists", True),
}


def _display(value: str) -> str:
    return value.replace("_", " ").capitalize()


def _field_item(path: str, spec: Mapping[str, Any], required: bool) -> dict[str, Any]:
    kind = spec["kind"]
    item: dict[str, Any] = {
        "linkId": path,
        "text": spec["question"],
        "type": ITEM_TYPES[kind],
        "required": required,
        "repeats": kind == "list",
    }
    if kind == "integer":
        item["extension"] = [
            {"url": MIN_VALUE, "valueInteger": spec["minimum"]},
            {"url": MAX_VALUE, "valueInteger": spec["maximum"]},
        ]
    if "not_asked_from" in spec:
        # Replaced by a clearer question: still read from a response that answers it (older
        # forms), never shown, never required.
        item["required"] = False
        item.setdefault("extension", []).append({"url": HIDDEN, "valueBoolean": True})
    if kind in ("choice", "list"):
        item["answerOption"] = [
            {"valueCoding": {"system": REPORT_VALUE_SYSTEM, "code": v, "display": _display(v)}}
            for v in spec["values"]
        ]
    condition = ENABLE_WHEN.get(path)
    if condition:
        question, operator, answer = condition
        item["enableWhen"] = [{"question": question, "operator": operator, "answerBoolean": answer}]
    item["item"] = [
        {
            "linkId": path + HELP_SUFFIX,
            "text": spec["why"],
            "type": "display",
            "extension": [
                {
                    "url": ITEM_CONTROL,
                    "valueCodeableConcept": {
                        "coding": [{"system": ITEM_CONTROL_SYSTEM, "code": "help"}]
                    },
                }
            ],
        }
    ]
    return item


def questionnaire_items(
    sections: Mapping[str, Mapping[str, Any]], red_flag_fields: Iterable[str]
) -> list[dict[str, Any]]:
    """One group per section, one item per field. Red-flag questions are ``required``: a
    response that leaves one out is still assessed, but its triage is marked incomplete."""
    safety = set(red_flag_fields)
    groups = []
    for section, spec in sections.items():
        items = [
            _field_item(
                f"{section}.{name}",
                field,
                bool(field.get("required")) or f"{section}.{name}" in safety,
            )
            for name, field in spec["fields"].items()
        ]
        groups.append(
            {
                "linkId": section,
                "text": spec["description"],
                "type": "group",
                "required": any(item["required"] for item in items),
                "item": items,
            }
        )
    return groups


def questionnaire_version(items: list[dict[str, Any]]) -> str:
    """Changes exactly when a question, type or answer option changes."""
    digest = hashlib.sha256(orjson.dumps(items, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"1.0.0+{digest[:12]}"


def questionnaire(
    sections: Mapping[str, Mapping[str, Any]],
    red_flag_fields: Iterable[str],
    disclaimer: str,
) -> dict[str, Any]:
    items = questionnaire_items(sections, red_flag_fields)
    return {
        "resourceType": "Questionnaire",
        "id": "symptom-intake",
        "url": QUESTIONNAIRE_URL,
        "version": questionnaire_version(items),
        "name": "PoplitealSymptomIntake",
        "title": f"Symptom intake: {TITLE.lower()}",
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": "Popliteal",
        "description": (
            "The questions of a Popliteal symptom report. Answer what is known and leave the "
            "rest out: an unanswered question is treated as not asked, never as no. The "
            "questions marked required are the red-flag screen (and the pain score); leaving "
            "one out makes the triage incomplete. " + disclaimer
        ),
        "purpose": (
            "Answers are assessed by POST /v1/assess (Content-Type: application/fhir+json) "
            "exactly as the equivalent JSON report."
        ),
        "item": items,
    }
