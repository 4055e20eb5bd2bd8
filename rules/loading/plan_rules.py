"""The plan rules of prescription.yaml: withhold the plan, exclude exercises from it, adjust
them, or set the plan's status for review. Each names the exercises it applies to where that
matters, and doses by parameter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.conditions import FieldCatalogue
from rules.loading.context import VersionContext
from rules.loading.structure import TEXT, Anything, At, Choice, MappingOf, Names, Record
from rules.loading.vocabulary import (
    CITATION,
    CONDITION,
    DOSE_KEYS,
    INTENSITIES,
    PHASES,
    RuleId,
)
from rules.model import PLAN_STATUSES, Exercise, Parameter, PlanRule

DOSE = MappingOf(
    Choice(DOSE_KEYS), Anything("against the parameters"), "dose keys to parameter ids"
)
APPLIES_TO = Record({}, {"phases": Names(), "exercises": Names()})


def _plan_rule(kind: str, texts: Mapping[str, Any], optional: Mapping[str, Any] = ()) -> Record:
    required = {"id": RuleId(prefix=f"plan.{kind}."), "when": CONDITION, "source": CITATION}
    return Record({**required, **texts}, dict(optional))


PLAN_RULES = {
    "withhold": _plan_rule("withhold", {"reason": TEXT}),
    "exclude": _plan_rule("exclude", {"applies_to": APPLIES_TO, "reason": TEXT}),
    "adjust": _plan_rule(
        "adjust",
        {"applies_to": APPLIES_TO, "note": TEXT},
        {"intensity": Choice(INTENSITIES), "dose": DOSE},
    ),
    # A review rule holds the plan back for review unless it names a stricter status.
    "review": _plan_rule("review", {"reason": TEXT}, {"status": Choice(PLAN_STATUSES[1:])}),
}
DEFAULT_REVIEW_STATUS = PLAN_STATUSES[1]


def resolve_dose(
    dose: Mapping[str, Any], at: At, parameters: Mapping[str, Parameter]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(dose key -> value, dose key -> parameter id)."""
    for key, pid in dose.items():
        if not isinstance(pid, str) or pid not in parameters:
            raise (at / key).error(f"doses name a parameter; unknown parameter {pid!r}")
    return {key: parameters[pid].value for key, pid in dose.items()}, dict(dose)


def load_plan_rules(
    ctx: VersionContext,
    kind: str,
    items: list[tuple[At, dict[str, Any]]],
    catalogue: FieldCatalogue,
    exercises: Mapping[str, Exercise],
) -> tuple[PlanRule, ...]:
    return tuple(_load_plan_rule(ctx, kind, at, item, catalogue, exercises) for at, item in items)


def _load_plan_rule(
    ctx: VersionContext,
    kind: str,
    at: At,
    item: dict[str, Any],
    catalogue: FieldCatalogue,
    exercises: Mapping[str, Exercise],
) -> PlanRule:
    when = ctx.condition(item["when"], at / "when", catalogue)
    source = ctx.cite(item["source"], at / "source")
    targets = _applies_to(item, at, exercises)
    text_key = "note" if kind == "adjust" else "reason"
    text, used = ctx.text(item[text_key], at / text_key)
    dose, dose_params = _dose(ctx, item, at)
    used.update({pid: ctx.parameters[pid].value for pid in dose_params.values()})
    if kind == "adjust" and "intensity" not in item and not dose:
        raise at.error("an adjustment changes the intensity or the dose")
    rule = ctx.rule(
        at,
        item["id"],
        f"plan_{kind}",
        when=when,
        raw_when=item["when"],
        source=source,
        parameters=used,
        definition=_definition(item, targets, {text_key: text}, dose_params),
    )
    return PlanRule(
        rule=rule,
        kind=kind,
        exercises=targets or frozenset(),
        reason={"rule_id": item["id"], "reason": text, "source": source},
        intensity=item.get("intensity"),
        note=text if kind == "adjust" else None,
        dose=dose,
        dose_parameters=dose_params,
        status=item.get("status", DEFAULT_REVIEW_STATUS) if kind == "review" else None,
    )


def _dose(
    ctx: VersionContext, item: Mapping[str, Any], at: At
) -> tuple[dict[str, Any], dict[str, str]]:
    if "dose" not in item:
        return {}, {}
    return resolve_dose(item["dose"], at / "dose", ctx.parameters)


def _definition(
    item: Mapping[str, Any],
    targets: frozenset[str] | None,
    text: Mapping[str, str],
    dose_params: Mapping[str, str],
) -> dict[str, Any]:
    """The rule as served: what it applies to, its text, and what it changes."""
    definition = {
        "applies_to": sorted(targets) if targets is not None else None,
        **text,
        "intensity": item.get("intensity"),
        "dose": dose_params or None,
        "status": item.get("status"),
    }
    return {key: value for key, value in definition.items() if value is not None}


def _applies_to(
    item: Mapping[str, Any], at: At, exercises: Mapping[str, Exercise]
) -> frozenset[str] | None:
    """The exercises the rule applies to; None for a rule about the whole plan."""
    if "applies_to" not in item:
        return None
    at = at / "applies_to"
    chosen: set[str] = set()
    for phase in item["applies_to"].get("phases", []):
        if phase not in PHASES:
            raise at.error(f"unknown phase {phase!r}")
        chosen.update(e.id for e in exercises.values() if e.kind == phase)
    for exercise_id in item["applies_to"].get("exercises", []):
        if exercise_id not in exercises:
            raise at.error(f"unknown exercise {exercise_id!r}")
        chosen.add(exercise_id)
    if not chosen:
        raise at.error("applies to no exercise")
    return frozenset(chosen)
