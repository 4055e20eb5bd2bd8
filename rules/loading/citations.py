"""Sources: every parameter and rule cites the article, a guideline or the method, and only
what ruleset.yaml declares. The paragraphs and guidelines cited are counted, so that the rule
set can be held to citing the whole article and every guideline it lists."""

from __future__ import annotations

from typing import Any

from rules.loading.ruleset_file import Header
from rules.loading.structure import TEXT, Anything, At, OneOf, Record
from rules.loading.versions import version_key

# From this version on, citations say what they cite: a quote of the article, or the
# recommendation of a guideline. Older versions, which never change, do not.
CITATIONS_NAMED_FROM = (2, 0, 0)

ARTICLE = Record(
    {
        "article": Anything("against the article's sections"),
        "paragraph": Anything("against the section's paragraphs"),
    }
)
GUIDELINE = Record({"guideline": Anything("against the guidelines listed")})
METHOD = Record({"method": Anything("against the method's sections")})
QUOTED_ARTICLE = ARTICLE.with_keys({"quote": TEXT})
NAMED_GUIDELINE = GUIDELINE.with_keys({"recommendation": TEXT})


def citation_shape(named: bool) -> OneOf:
    return OneOf(
        "a source",
        {
            "article": QUOTED_ARTICLE if named else ARTICLE,
            "guideline": NAMED_GUIDELINE if named else GUIDELINE,
            "method": METHOD,
        },
    )


class Citations:
    """Checks citations against one version's documents, counting what is cited."""

    def __init__(self, header: Header) -> None:
        self.header = header
        self.shape = citation_shape(version_key(header.version) >= CITATIONS_NAMED_FROM)
        self.paragraphs: set[tuple[str, int]] = set()
        self.guidelines: set[str] = set()

    def cite(self, raw: Any, at: At) -> dict[str, Any]:
        """The citation as served: the document, and where in it."""
        citation = self.shape.check(raw, at)
        if "article" in citation:
            return self._article(citation, at)
        if "guideline" in citation:
            return self._guideline(citation, at)
        return self._method(citation, at)

    def _article(self, citation: dict[str, Any], at: At) -> dict[str, Any]:
        key, paragraph = citation["article"], citation["paragraph"]
        section = self.header.sections.get(key)
        if section is None:
            raise at.error(f"unknown article section {key!r}")
        if (
            isinstance(paragraph, bool)
            or not isinstance(paragraph, int)
            or not 1 <= paragraph <= section["paragraphs"]
        ):
            raise at.error(
                f"section {key!r} has paragraphs 1 to {section['paragraphs']}, got {paragraph!r}"
            )
        self.paragraphs.add((key, paragraph))
        cited = {"document": "article", "section": section["heading"], "paragraph": paragraph}
        if "quote" in citation:
            cited["quote"] = citation["quote"]
        return cited

    def _guideline(self, citation: dict[str, Any], at: At) -> dict[str, Any]:
        key = citation["guideline"]
        guideline = self.header.guidelines.get(key)
        if guideline is None:
            raise at.error(f"unknown guideline {key!r}")
        self.guidelines.add(key)
        cited = {"document": guideline["name"], "url": guideline["url"]}
        if "recommendation" in citation:
            cited["recommendation"] = citation["recommendation"]
        return cited

    def _method(self, citation: dict[str, Any], at: At) -> dict[str, Any]:
        section = self.header.method_sections.get(citation["method"])
        if section is None:
            raise at.error(f"unknown method section {citation['method']!r}")
        return {"document": self.header.method_document, "section": section}

    def check_every_guideline_cited(self, at: At) -> None:
        unused = set(self.header.guidelines) - self.guidelines
        if unused:
            raise at.error(f"guideline(s) never cited: {', '.join(sorted(unused))}")
