"""One interview question as the client shows it: a single report field, or a checklist of the
yes/no fields still worth asking, in the wording of the FHIR Questionnaire."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from rules.loading import Checklist
from rules.model import LEVEL_RANK, Question

JSON = dict[str, Any]

YES_NO = ({"value": True, "text": "Yes"}, {"value": False, "text": "No"})


def display(value: str) -> str:
    """An answer value as a person reads it (the Questionnaire's display text)."""
    return value.replace("_", " ").capitalize()


class QuestionBuilder:
    def __init__(
        self,
        questions: Mapping[str, Question],
        specs: Mapping[str, Mapping[str, Any]],
        checklists: Sequence[Checklist],
    ) -> None:
        self.questions = questions
        self.specs = specs
        self.checklist_of = {path: c for c in checklists for path in c.fields}

    def build(
        self, path: str, worth_asking: Collection[str], levels: Mapping[str, str | None]
    ) -> JSON:
        """The question for ``path``: its checklist, showing only the items in
        ``worth_asking``, or the field alone. ``levels`` gives, per field, the most urgent level
        a worrying answer could lead to (fields absent from it lead to none)."""
        checklist = self.checklist_of.get(path)
        items = [p for p in checklist.fields if p in worth_asking] if checklist else [path]
        if path not in items:  # a field the caller asks although nothing else is worth asking
            items = [path]
        if len(items) > 1:
            return self._checklist(checklist, items, path, levels)
        return self._single(path, levels.get(path))

    def _single(self, path: str, level: str | None) -> JSON:
        spec = self.specs[path]
        question = self.questions[path]
        kind = spec["kind"]
        built: JSON = {
            "fields": [path],
            "kind": kind,
            "checklist": None,
            "text": question.question,
            "why": question.why,
            "could_raise_level_to": level,
            "options": _options(spec),
        }
        if kind == "integer":
            built["minimum"], built["maximum"] = spec["minimum"], spec["maximum"]
        return built

    def _checklist(
        self, checklist: Checklist, items: list[str], path: str, levels: Mapping[str, str | None]
    ) -> JSON:
        reachable = [levels[p] for p in items if levels.get(p)]
        return {
            "fields": items,
            "kind": "checklist",
            "checklist": checklist.id,
            "text": checklist.text,
            "why": self.questions[path].why,
            "could_raise_level_to": max(reachable, key=LEVEL_RANK.__getitem__, default=None),
            "options": [
                {
                    "field": p,
                    "text": self.questions[p].question,
                    "why": self.questions[p].why,
                }
                for p in items
            ],
        }


def _options(spec: Mapping[str, Any]) -> list[JSON] | None:
    kind = spec["kind"]
    if kind == "boolean":
        return [dict(option) for option in YES_NO]
    if kind in ("choice", "list"):
        return [{"value": value, "text": display(value)} for value in spec["values"]]
    return None
