"""report_fields.yaml: the report vocabulary shared by every rules version, and the questions
each version asks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rules.loading.structure import (
    TEXT,
    Anything,
    At,
    Choice,
    Flag,
    MappingOf,
    Record,
)
from rules.loading.versions import RULES_DIR, version_key
from rules.loading.vocabulary import CODE, FIELD_KINDS, VERSION
from rules.loading.yaml_file import read_yaml
from rules.model import Question

REPORT_FIELDS_FILE = RULES_DIR / "report_fields.yaml"

EARLIER_QUESTION = Record({"before": VERSION, "question": TEXT}, {"why": TEXT})
REPLACED_BY = Record({"field": Anything("against the other report fields"), "opposite": Flag()})
AS_WRITTEN = Anything("by the request schema built from it")
FIELD = Record(
    {"kind": Choice(FIELD_KINDS), "description": TEXT, "question": TEXT, "why": TEXT},
    {
        "values": AS_WRITTEN,
        "minimum": AS_WRITTEN,
        "maximum": AS_WRITTEN,
        "required": AS_WRITTEN,
        "example": AS_WRITTEN,
        "earlier_question": EARLIER_QUESTION,
        "not_asked_from": VERSION,
        "replaced_by": REPLACED_BY,
    },
)
SECTION = Record(
    {"description": AS_WRITTEN, "fields": MappingOf(CODE, FIELD, "fields", may_be_empty=True)}
)
REPORT_FIELDS = MappingOf(CODE, SECTION, "sections")

Sections = Mapping[str, Mapping[str, Any]]


def load_report_fields(path: Path = REPORT_FIELDS_FILE) -> dict[str, dict[str, Any]]:
    """The report vocabulary: section -> {description, fields: {name -> spec}}, checked.

    The specs are returned as written: the request schema and the questionnaire show them."""
    raw = read_yaml(path)
    at = At(path.name)
    REPORT_FIELDS.check(raw, at)
    for section_name, section in raw.items():
        for name, spec in section["fields"].items():
            _check_field(spec, at / section_name / "fields" / name)
    sections = {
        section_name: {
            "description": section["description"],
            "fields": {name: dict(spec) for name, spec in section["fields"].items()},
        }
        for section_name, section in raw.items()
    }
    _check_replacements(sections, at)
    return sections


def _check_field(spec: Mapping[str, Any], at: At) -> None:
    """What the form of one key of a field spec cannot say alone."""
    kind = spec["kind"]
    if (kind in ("choice", "list")) != ("values" in spec):
        raise at.error("choice and list fields, and only they, need values")
    if (kind == "integer") != ("minimum" in spec and "maximum" in spec):
        raise at.error("integer fields, and only they, need minimum and maximum")
    if ("replaced_by" in spec) != ("not_asked_from" in spec):
        raise at.error("a field not asked any more says what replaced it, and only such a field")
    if "replaced_by" in spec and spec["replaced_by"]["opposite"] and kind != "boolean":
        raise (at / "replaced_by" / "opposite").error("true or false; true only for yes/no")


def _check_replacements(sections: Sections, at: At) -> None:
    kinds = {
        f"{section}.{name}": spec["kind"]
        for section, body in sections.items()
        for name, spec in body["fields"].items()
    }
    for section, body in sections.items():
        for name, spec in body["fields"].items():
            new = spec.get("replaced_by", {}).get("field")
            if new is not None and kinds.get(new) != spec["kind"]:
                raise (at / section / "fields" / name / "replaced_by").error(
                    f"{new!r} is not a {spec['kind']} field"
                )


def _asked(spec: Mapping[str, Any], key: tuple[int, int, int]) -> bool:
    return "not_asked_from" not in spec or key < version_key(spec["not_asked_from"])


def questions_for(sections: Sections, version: str) -> dict[str, Question]:
    """The questions a rules version asks, in the wording it was released with: a field
    reworded later keeps its earlier question for older versions, and a field replaced by a
    clearer one is not asked from the version that replaced it."""
    key = version_key(version)
    questions = {}
    for section, body in sections.items():
        for name, spec in body["fields"].items():
            if not _asked(spec, key):
                continue
            text, why = spec["question"], spec["why"]
            earlier = spec.get("earlier_question")
            if earlier and key < version_key(earlier["before"]):
                text, why = earlier["question"], earlier.get("why", why)
            path = f"{section}.{name}"
            questions[path] = Question(path, " ".join(text.split()), " ".join(why.split()))
    return questions


def replacements_for(sections: Sections, version: str) -> tuple[tuple[str, str, bool], ...]:
    """(old field, new field, opposite) for the fields a rules version no longer asks: an old
    answer is read as the new field's when the new one is not given."""
    key = version_key(version)
    return tuple(
        (f"{section}.{name}", spec["replaced_by"]["field"], spec["replaced_by"]["opposite"])
        for section, body in sections.items()
        for name, spec in body["fields"].items()
        if not _asked(spec, key)
    )


def report_catalogue(sections: Sections) -> dict[str, dict[str, Any]]:
    """Each report field's kind and values, as the condition compiler reads them."""
    return {
        f"{section}.{name}": {"kind": spec["kind"], "values": spec.get("values")}
        for section, body in sections.items()
        for name, spec in body["fields"].items()
    }
