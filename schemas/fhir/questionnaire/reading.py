"""A QuestionnaireResponse read strictly back into a symptom report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.fhir import QUESTIONNAIRE_URL, REPORT_VALUE_SYSTEM
from schemas.fhir.questionnaire.form import ANSWER_VALUE

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
