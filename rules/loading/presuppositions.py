"""presuppositions.yaml (rules 2.0.0 on): what advice may take for granted, such as a plan
with stretches in it. An advice item names what its text presupposes, and its condition must
include each presupposition's, so that it can only be given when they all hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.conditions import FieldCatalogue
from rules.loading.context import VersionContext
from rules.loading.structure import TEXT, At, MappingOf, Record
from rules.loading.vocabulary import CITATION, CODE, CONDITION

FILE = "presuppositions.yaml"

PRESUPPOSITION = Record({"description": TEXT, "when": CONDITION, "source": CITATION})
PRESUPPOSITIONS = MappingOf(CODE, PRESUPPOSITION, "presuppositions")


def load_presuppositions(
    ctx: VersionContext, catalogue: FieldCatalogue
) -> dict[str, dict[str, Any]]:
    """name -> {description, when, source}, as written but for the source, as served."""
    raw = ctx.folder.read_optional(FILE)
    if raw is None:
        return {}
    at = ctx.folder.at(FILE)
    PRESUPPOSITIONS.check(raw, at)
    loaded = {}
    for name, item in raw.items():
        ctx.condition(item["when"], at / name / "when", catalogue)
        loaded[name] = {**item, "source": ctx.cite(item["source"], at / name / "source")}
    return loaded


def check_presupposed(
    named: list[str], raw_when: Any, presuppositions: Mapping[str, Any], at: At
) -> None:
    """Each presupposition named must be the advice's whole condition or one of its top-level
    "all" parts: then the advice can only be given when every presupposition holds."""
    parts = (
        raw_when["all"] if isinstance(raw_when, dict) and set(raw_when) == {"all"} else [raw_when]
    )
    for name in named:
        presupposition = presuppositions.get(name)
        if presupposition is None:
            raise (at / "presupposes").error(f"unknown presupposition {name!r}")
        if presupposition["when"] not in parts:
            raise (at / "when").error(
                f"presupposes {name!r}, but its condition does not include that "
                "presupposition's condition as one of its 'all' parts, so the advice could "
                "be given when it is false"
            )
