"""checklists.yaml: the interview's checklist questions, each answering several yes/no report
fields at once. Loaded strictly: a field must be a yes/no field of the report vocabulary that
is still asked, and may belong to one checklist only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules.loading.report_fields import REPORT_FIELDS_FILE, Sections
from rules.loading.structure import (
    TEXT,
    At,
    Count,
    HttpsAddress,
    ListOf,
    Names,
    OneOf,
    Record,
    check_unique,
)
from rules.loading.vocabulary import RuleId
from rules.loading.yaml_file import read_yaml

CHECKLISTS_FILE = REPORT_FIELDS_FILE.with_name("checklists.yaml")

SOURCE = OneOf(
    "a source",
    {
        "article": Record({"article": TEXT, "paragraph": Count(), "quote": TEXT}),
        "guideline": Record({"guideline": TEXT, "url": HttpsAddress(), "recommendation": TEXT}),
    },
)
CHECKLIST = Record({"id": RuleId("checklist."), "text": TEXT, "fields": Names(), "source": SOURCE})
CHECKLISTS = ListOf(CHECKLIST, named_by="id")

# A checklist needs at least two items: one item is a plain yes/no question.
FEWEST_ITEMS = 2


@dataclass(frozen=True, slots=True)
class Checklist:
    id: str
    text: str
    fields: tuple[str, ...]
    source: dict[str, Any]


def load_checklists(sections: Sections, path: Path = CHECKLISTS_FILE) -> tuple[Checklist, ...]:
    """The checklists in file order, checked against the report vocabulary ``sections``."""
    at = At(path.name)
    checked = CHECKLISTS.check(read_yaml(path), at)
    check_unique((item["id"] for _, item in checked), at, "checklist id")
    yes_no = _asked_yes_no_fields(sections)
    owner: dict[str, str] = {}
    checklists = []
    for item_at, item in checked:
        fields_at = item_at / "fields"
        if len(item["fields"]) < FEWEST_ITEMS:
            raise fields_at.error(f"a checklist has at least {FEWEST_ITEMS} fields")
        for position, path_ in enumerate(item["fields"]):
            field_at = fields_at.index(position)
            if path_ not in yes_no:
                raise field_at.error(f"{path_!r} is not a yes/no field that is still asked")
            if path_ in owner:
                raise field_at.error(f"{path_!r} is already in {owner[path_]!r}")
            owner[path_] = item["id"]
        checklists.append(
            Checklist(item["id"], item["text"], tuple(item["fields"]), item["source"])
        )
    return tuple(checklists)


def _asked_yes_no_fields(sections: Mapping[str, Mapping[str, Any]]) -> set[str]:
    return {
        f"{section}.{name}"
        for section, body in sections.items()
        for name, spec in body["fields"].items()
        if spec["kind"] == "boolean" and "not_asked_from" not in spec
    }
