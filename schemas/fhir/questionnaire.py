"""The symptom intake as a FHIR Questionnaire, and a QuestionnaireResponse read back into a
symptom report.

Both are built from the report vocabulary (``rules/report_fields.yaml``), the same one the
JSON schema and the rule conditions use: one group per report section, one item per field,
``linkId`` = the field path (``signs.numbness``). A response is read strictly: an unknown
``linkId``, an answer of the wrong type or a repeated answer to a single-answer question is
refused, naming the item. What is not answered stays absent ("not asked"), exactly as in JSON.
"""

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

RESPONSE_KEYS = frozenset(
    (
        "resourceType", "id", "meta", "implicitRules", "language", "text", "contained",
        "extension", "modifierExtension", "identifier", "basedOn", "partOf", "questionnaire",
        "status", "subject", "encounter", "authored", "author", "source", "item",
    )
)  # fmt: skip
ITEM_KEYS = frozenset(("id", "extension", "modifierExtension", "linkId", "definition", "text"))
GROUP_KEYS = ITEM_KEYS | {"item"}
FIELD_KEYS = ITEM_KEYS | {"answer"}
ANSWER_KEYS = frozenset(("id", "extension", "modifierExtension"))
RESPONSE_STATUSES = ("in-progress", "completed", "amended", "entered-in-error", "stopped")


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


# --- reading a QuestionnaireResponse ---------------------------------------------------------


class QuestionnaireResponseError(Exception):
    """A response that cannot be read as a report: ``errors`` maps a location (a linkId, or
    an element of the response) to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


class ResponseReader:
    """Reads responses to the Questionnaire built from ``sections``."""

    def __init__(self, sections: Mapping[str, Mapping[str, Any]], version: str):
        self.sections = sections
        self.version = version
        self.fields = {
            f"{section}.{name}": spec
            for section, section_spec in sections.items()
            for name, spec in section_spec["fields"].items()
        }

    def read(self, response: Any) -> tuple[dict[str, Any], dict[str, str] | None]:
        """The report the response answers, and its subject identifier if it gives one."""
        errors: dict[str, list[str]] = {}

        def error(where: str, message: str) -> None:
            errors.setdefault(where, []).append(message)

        if not isinstance(response, dict) or response.get("resourceType") != (
            "QuestionnaireResponse"
        ):
            raise QuestionnaireResponseError(
                {"resourceType": ["Expected a FHIR QuestionnaireResponse resource."]}
            )
        for key in sorted(set(response) - RESPONSE_KEYS):
            error(key, "Not an element of QuestionnaireResponse.")
        self._check_questionnaire(response.get("questionnaire"), error)
        status = response.get("status")
        if status not in RESPONSE_STATUSES:
            error("status", f"Required, one of: {', '.join(RESPONSE_STATUSES)}.")
        elif status == "entered-in-error":
            error("status", "A response entered in error cannot be assessed.")
        subject = self._subject(response.get("subject"), error)
        report: dict[str, Any] = {}
        items = response.get("item", [])
        if not isinstance(items, list):
            error("item", "Expected a list of items.")
            items = []
        seen: set[str] = set()
        for index, group in enumerate(items):
            self._read_group(group, index, report, seen, error)
        if errors:
            raise QuestionnaireResponseError(errors)
        return report, subject

    def _check_questionnaire(self, canonical: Any, error) -> None:
        if not isinstance(canonical, str):
            error("questionnaire", f"Required: {QUESTIONNAIRE_URL} (GET /v1/questionnaire).")
            return
        url, _, version = canonical.partition("|")
        if url != QUESTIONNAIRE_URL:
            error("questionnaire", f"Only responses to {QUESTIONNAIRE_URL} can be assessed.")
        elif version and version != self.version:
            error(
                "questionnaire",
                f"Version {version} is not the current Questionnaire ({self.version}); fetch "
                "GET /v1/questionnaire again.",
            )

    @staticmethod
    def _subject(subject: Any, error) -> dict[str, str] | None:
        if subject is None:
            return None
        identifier = subject.get("identifier") if isinstance(subject, dict) else None
        if (
            not isinstance(identifier, dict)
            or not isinstance(identifier.get("system"), str)
            or not isinstance(identifier.get("value"), str)
        ):
            error(
                "subject",
                "Give the subject as an identifier with system and value (a pseudonymous id), "
                "not as a literal reference.",
            )
            return None
        return {"system": identifier["system"], "value": identifier["value"]}

    def _read_group(self, group: Any, index: int, report: dict, seen: set, error) -> None:
        where = f"item[{index}]"
        if not isinstance(group, dict) or not isinstance(group.get("linkId"), str):
            error(where, "Expected an item with a linkId.")
            return
        section = group["linkId"]
        if section not in self.sections:
            error(section, "Unknown linkId: not a group of the Questionnaire.")
            return
        for key in sorted(set(group) - GROUP_KEYS):
            error(section, f"{key!r} is not allowed on a group item.")
        if section in seen:
            error(section, "This group appears more than once.")
        seen.add(section)
        children = group.get("item", [])
        if not isinstance(children, list):
            error(section, "Expected a list of items.")
            return
        for child in children:
            self._read_field(section, child, report, seen, error)

    def _read_field(self, section: str, item: Any, report: dict, seen: set, error) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("linkId"), str):
            error(section, "Expected items with a linkId.")
            return
        path = item["linkId"]
        spec = self.fields.get(path)
        if spec is None or not path.startswith(section + "."):
            error(path, f"Unknown linkId: not a question of group {section!r}.")
            return
        for key in sorted(set(item) - FIELD_KEYS):
            error(path, f"{key!r} is not allowed on a question item.")
        if path in seen:
            error(path, "This question is answered more than once.")
            return
        seen.add(path)
        answers = item.get("answer", [])
        if not isinstance(answers, list):
            error(path, "Expected a list of answers.")
            return
        if not answers:
            return  # not answered: absent, exactly as a field left out of the JSON report
        kind = spec["kind"]
        if kind != "list" and len(answers) > 1:
            error(path, "Only one answer is allowed.")
            return
        values = []
        for answer in answers:
            value = self._answer_value(path, kind, answer, error)
            if value is None:
                return
            values.append(value)
        report.setdefault(section, {})[path.partition(".")[2]] = (
            values if kind == "list" else values[0]
        )

    @staticmethod
    def _answer_value(path: str, kind: str, answer: Any, error) -> Any:
        if not isinstance(answer, dict):
            error(path, "Expected an answer object.")
            return None
        value_keys = [key for key in answer if key.startswith("value")]
        for key in sorted(set(answer) - ANSWER_KEYS - set(value_keys)):
            error(path, f"{key!r} is not allowed on an answer.")
            return None
        expected = ANSWER_VALUE.get(kind, "valueCoding")
        if value_keys != [expected]:
            got = ", ".join(value_keys) or "no value"
            error(path, f"Expected {expected} ({kind} question), got {got}.")
            return None
        value = answer[expected]
        if kind == "boolean" and type(value) is not bool:
            error(path, "valueBoolean must be true or false.")
            return None
        if kind == "integer" and type(value) is not int:
            error(path, "valueInteger must be a whole number.")
            return None
        if expected == "valueCoding":
            if not isinstance(value, dict) or not isinstance(value.get("code"), str):
                error(path, "valueCoding must have a code.")
                return None
            if value.get("system", REPORT_VALUE_SYSTEM) != REPORT_VALUE_SYSTEM:
                error(path, f"The coding's system must be {REPORT_VALUE_SYSTEM}.")
                return None
            return value["code"]
        return value


def questionnaire_response(
    report: Mapping[str, Any],
    sections: Mapping[str, Mapping[str, Any]],
    subject: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A QuestionnaireResponse answering as ``report`` does (for examples in the docs)."""
    groups = []
    for section, answers in report.items():
        if section not in sections:
            continue
        items = []
        for name, value in answers.items():
            kind = sections[section]["fields"][name]["kind"]
            values = value if kind == "list" else [value]
            key = ANSWER_VALUE.get(kind, "valueCoding")
            items.append(
                {
                    "linkId": f"{section}.{name}",
                    "answer": [
                        {key: {"system": REPORT_VALUE_SYSTEM, "code": v}}
                        if key == "valueCoding"
                        else {key: v}
                        for v in values
                    ],
                }
            )
        groups.append({"linkId": section, "item": items})
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "completed",
        "item": groups,
    }
    if subject:
        response["subject"] = {"identifier": dict(subject)}
    return response
