"""recommendations.yaml: advice, given when its condition holds (or always, without one). It
is decided last, and may read the triage, the stop decision and the exercise plan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.conditions import FieldCatalogue
from rules.loading.context import VersionContext
from rules.loading.presuppositions import check_presupposed
from rules.loading.structure import TEXT, At, Choice, ListOf, Names, Record, check_unique
from rules.loading.vocabulary import CATEGORIES, CITATION, CODE, CONDITION
from rules.model import Recommendation

FILE = "recommendations.yaml"

RECOMMENDATION = Record(
    {"code": CODE, "category": Choice(CATEGORIES), "text": TEXT, "source": CITATION},
    {"when": CONDITION},
)
# From the version that lists presuppositions, every item names its own (maybe none).
PRESUPPOSING_RECOMMENDATION = RECOMMENDATION.with_keys({"presupposes": Names()})


def load_recommendations(
    ctx: VersionContext, catalogue: FieldCatalogue, presuppositions: Mapping[str, Any]
) -> tuple[Recommendation, ...]:
    shape = ListOf(
        PRESUPPOSING_RECOMMENDATION if presuppositions else RECOMMENDATION, named_by="code"
    )
    items = [
        _recommendation(ctx, at, item, catalogue, presuppositions)
        for at, item in shape.items(ctx.folder.read(FILE), ctx.folder.at(FILE))
    ]
    check_unique((r.output["code"] for r in items), ctx.folder.at(FILE), "recommendation code")
    return tuple(items)


def _recommendation(
    ctx: VersionContext,
    at: At,
    item: dict[str, Any],
    catalogue: FieldCatalogue,
    presuppositions: Mapping[str, Any],
) -> Recommendation:
    code, category = item["code"], item["category"]
    if presuppositions:
        check_presupposed(item["presupposes"], item.get("when"), presuppositions, at)
    when = ctx.condition(item["when"], at / "when", catalogue) if "when" in item else None
    text, text_params = ctx.text(item["text"], at / "text")
    source = ctx.cite(item["source"], at / "source")
    definition = {"code": code, "category": category, "text": text}
    if presuppositions:
        definition["presupposes"] = item["presupposes"]
    rule = ctx.rule(
        at,
        f"rec.{code}",
        "recommendation",
        when=when,
        raw_when=item.get("when"),
        source=source,
        parameters=text_params,
        definition=definition,
    )
    return Recommendation(
        rule, {"code": code, "category": category, "text": text, "source": source}
    )
