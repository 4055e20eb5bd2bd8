"""contradictions.yaml (rules 2.0.0 on): answers that cannot both be true. They are asked
again, and meanwhile read the safer way."""

from __future__ import annotations

from typing import Any

from rules.conditions import Condition, FieldCatalogue
from rules.loading.context import VersionContext
from rules.loading.structure import TEXT, Anything, At, ListOf, MappingOf, Record, Texts
from rules.loading.vocabulary import CITATION, CONDITION, FIELD_KINDS, RuleId
from rules.model import Contradiction

FILE = "contradictions.yaml"

READ_AS = MappingOf(
    Anything("against the report fields"),
    Anything("true, false or {field: other field}, against the field's kind"),
    "fields to their safer reading",
)
CONTRADICTION = Record(
    {
        "id": RuleId(prefix="contradiction."),
        "when": CONDITION,
        "confirm": Texts(),
        "question": TEXT,
        "why": TEXT,
        "source": CITATION,
    },
    # Without read_as, the rules already act on the worrying answer of the pair.
    {"read_as": READ_AS},
)
CONTRADICTIONS = ListOf(CONTRADICTION, named_by="id")
OTHER_FIELD = Record({"field": Anything("against the report fields")})

Reading = tuple[str, str, Any]  # (field, "value", literal) or (field, "field", other field)


def load_contradictions(
    ctx: VersionContext, catalogue: FieldCatalogue
) -> tuple[Contradiction, ...]:
    raw = ctx.folder.read_optional(FILE)
    if raw is None:
        return ()
    return tuple(
        _contradiction(ctx, at, item, catalogue)
        for at, item in CONTRADICTIONS.items(raw, ctx.folder.at(FILE))
    )


def _contradiction(
    ctx: VersionContext, at: At, item: dict[str, Any], catalogue: FieldCatalogue
) -> Contradiction:
    when = ctx.condition(item["when"], at / "when", catalogue)
    confirm = item["confirm"]
    for path in confirm:
        catalogue.check(path, FIELD_KINDS, str(at / "confirm"))
    if not set(when.fields) & set(confirm):
        raise (at / "confirm").error("asks to confirm none of the answers that contradict")
    read_as = (
        _read_as(item["read_as"], at / "read_as", catalogue, when) if "read_as" in item else ()
    )
    question, used = ctx.text(item["question"], at / "question")
    why, why_used = ctx.text(item["why"], at / "why")
    rule = ctx.rule(
        at,
        item["id"],
        "contradiction",
        when=when,
        raw_when=item["when"],
        source=ctx.cite(item["source"], at / "source"),
        parameters={**used, **why_used},
        definition={
            "read_as": item.get("read_as"),
            "confirm": confirm,
            "question": question,
            "why": why,
        },
    )
    return Contradiction(rule, tuple(confirm), question, why, read_as)


def _read_as(
    readings: dict[str, Any], at: At, catalogue: FieldCatalogue, when: Condition
) -> tuple[Reading, ...]:
    """The safer reading of each contradicting answer: a literal, or another field's answer."""
    found = []
    for path, reading in readings.items():
        spec = catalogue.fields.get(path)
        if spec is None:
            raise at.error(f"unknown field {path!r}")
        if path not in when.fields:
            raise at.error(f"{path!r} is not one of the contradicting answers")
        if isinstance(reading, dict):
            other = OTHER_FIELD.check(reading, at / path)["field"]
            other_spec = catalogue.fields.get(other)
            if other_spec is None or other_spec["kind"] != spec["kind"]:
                raise (at / path).error(f"{other!r} is not a {spec['kind']} field")
            found.append((path, "field", other))
        elif spec["kind"] == "boolean" and isinstance(reading, bool):
            found.append((path, "value", reading))
        else:
            raise (at / path).error("a safer reading is true/false or {field: other field}")
    return tuple(found)
