"""ruleset.yaml: what a rules version is (version, release date, summary, disclaimer) and the
documents its rules may cite (the article, the guidelines, the method)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rules.loading.folder import RuleFolder
from rules.loading.structure import TEXT, Anything, Count, HttpsAddress, MappingOf, Record
from rules.loading.vocabulary import CODE, DATE, VERSION

FILE = "ruleset.yaml"

ARTICLE_SECTION = Record({"heading": TEXT, "paragraphs": Count()})
GUIDELINE = Record({"name": Anything("shown as written"), "url": HttpsAddress()})
AS_WRITTEN = Anything("shown as written")
RULESET = Record(
    {
        "version": VERSION,
        "released": DATE,
        "summary": TEXT,
        "disclaimer": TEXT,
        "article": Record(
            {
                "title": TEXT,
                "sections": MappingOf(CODE, ARTICLE_SECTION, "sections", may_be_empty=True),
            }
        ),
        "guidelines": MappingOf(CODE, GUIDELINE, "guidelines", may_be_empty=True),
        "method": Record(
            {
                "document": TEXT,
                "sections": MappingOf(AS_WRITTEN, AS_WRITTEN, "sections", may_be_empty=True),
            }
        ),
    }
)


@dataclass(frozen=True, slots=True)
class Header:
    version: str
    released: str
    summary: str
    disclaimer: str
    article_title: str
    sections: dict[str, dict[str, Any]]  # key -> {heading, paragraphs}
    guidelines: dict[str, dict[str, Any]]  # key -> {name, url}
    method_document: str
    method_sections: dict[str, Any]  # key -> section title

    def documents(self) -> dict[str, Any]:
        """The sources this rule set cites, as served."""
        return {
            "article": {
                "title": self.article_title,
                "sections": [
                    {"heading": s["heading"], "paragraphs": s["paragraphs"]}
                    for s in self.sections.values()
                ],
            },
            "guidelines": [
                {"key": key, "name": g["name"], "url": g["url"]}
                for key, g in self.guidelines.items()
            ],
            "method": {
                "document": self.method_document,
                "sections": list(self.method_sections.values()),
            },
        }


def load_header(folder: RuleFolder) -> Header:
    raw = folder.read(FILE)
    at = folder.at(FILE)
    checked = RULESET.check(raw, at)
    if checked["version"] != folder.directory.name:
        raise (at / "version").error(
            f"{checked['version']!r} does not match its folder {folder.directory.name!r}"
        )
    # Headings and guideline names are served exactly as written, as they always were.
    return Header(
        version=checked["version"],
        released=checked["released"],
        summary=checked["summary"],
        disclaimer=checked["disclaimer"],
        article_title=checked["article"]["title"],
        sections=dict(raw["article"]["sections"]),
        guidelines=dict(raw["guidelines"]),
        method_document=checked["method"]["document"],
        method_sections=dict(raw["method"]["sections"]),
    )
