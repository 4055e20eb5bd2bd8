"""stop_rules.yaml: when to stop stretching. They read the report and the triage."""

from __future__ import annotations

from rules.conditions import FieldCatalogue
from rules.loading.context import VersionContext
from rules.loading.structure import TEXT, ListOf, Record
from rules.loading.vocabulary import CITATION, CONDITION, RULE_ID
from rules.model import StopRule

FILE = "stop_rules.yaml"

STOP_RULE = Record({"id": RULE_ID, "when": CONDITION, "reason": TEXT, "source": CITATION})
STOP_RULES = ListOf(STOP_RULE, named_by="id")


def load_stop_rules(ctx: VersionContext, catalogue: FieldCatalogue) -> tuple[StopRule, ...]:
    rules = []
    for at, item in STOP_RULES.items(ctx.folder.read(FILE), ctx.folder.at(FILE)):
        when = ctx.condition(item["when"], at / "when", catalogue)
        reason, text_params = ctx.text(item["reason"], at / "reason")
        source = ctx.cite(item["source"], at / "source")
        rule = ctx.rule(
            at,
            item["id"],
            "stop_rule",
            when=when,
            raw_when=item["when"],
            source=source,
            parameters=text_params,
            definition={"reason": reason},
        )
        rules.append(StopRule(rule, {"rule_id": item["id"], "reason": reason, "source": source}))
    return tuple(rules)
