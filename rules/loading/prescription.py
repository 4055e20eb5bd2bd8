"""prescription.yaml: the exercise programme with its doses, how each phase progresses, the
safety notes every plan carries, and the plan rules that shape a plan for a report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.conditions import FieldCatalogue
from rules.loading.context import VersionContext
from rules.loading.plan_rules import DOSE, PLAN_RULES, load_plan_rules, resolve_dose
from rules.loading.structure import TEXT, Anything, At, Choice, ListOf, Record, check_unique
from rules.loading.vocabulary import CITATION, PHASES
from rules.model import Exercise, PlanRule, ProgrammeItem

FILE = "prescription.yaml"

PROGRAMME_ITEM = Record(
    {"exercise": Anything("against exercises.yaml"), "phase": Choice(PHASES), "dose": DOSE},
    {"per_side": Anything("read as yes or no")},
)
SAFETY_NOTE = Record({"text": TEXT, "source": CITATION})
PRESCRIPTION = Record(
    {
        "programme": ListOf(PROGRAMME_ITEM),
        "progression": Record(dict.fromkeys(PHASES, TEXT)),
        "progression_sources": Record(dict.fromkeys(PHASES, CITATION)),
        "safety": ListOf(SAFETY_NOTE),
        **{kind: ListOf(shape, named_by="id") for kind, shape in PLAN_RULES.items()},
    }
)


@dataclass(frozen=True, slots=True)
class Prescription:
    programme: tuple[ProgrammeItem, ...]
    progression: dict[str, Any]  # phase -> {text, parameters, source}
    safety: tuple[dict[str, Any], ...]
    withhold: tuple[PlanRule, ...]
    exclude: tuple[PlanRule, ...]
    adjust: tuple[PlanRule, ...]
    review: tuple[PlanRule, ...]


def load_prescription(
    ctx: VersionContext, catalogue: FieldCatalogue, exercises: Mapping[str, Exercise]
) -> Prescription:
    at = ctx.folder.at(FILE)
    prescription = PRESCRIPTION.check(ctx.folder.read(FILE), at)
    programme = _programme(ctx, prescription["programme"], at / "programme", exercises)
    progression = {phase: _progression(ctx, prescription, at, phase) for phase in PHASES}
    safety = tuple(
        {
            "text": ctx.text(note["text"], note_at / "text")[0],
            "source": ctx.cite(note["source"], note_at / "source"),
        }
        for note_at, note in prescription["safety"]
    )
    plan_rules = {
        kind: load_plan_rules(ctx, kind, prescription[kind], catalogue, exercises)
        for kind in PLAN_RULES
    }
    return Prescription(programme, progression, safety, **plan_rules)


def _programme(
    ctx: VersionContext,
    items: list[tuple[At, dict[str, Any]]],
    at: At,
    exercises: Mapping[str, Exercise],
) -> tuple[ProgrammeItem, ...]:
    programme = []
    for item_at, item in items:
        exercise = exercises.get(item["exercise"])
        if exercise is None:
            raise item_at.error(f"unknown exercise {item['exercise']!r}")
        if item["phase"] != exercise.kind:
            raise item_at.error(f"{exercise.id} is a {exercise.kind} exercise, not {item['phase']}")
        dose, dose_params = resolve_dose(item["dose"], item_at / "dose", ctx.parameters)
        per_side = bool(item.get("per_side", False))
        programme.append(ProgrammeItem(exercise, item["phase"], dose, dose_params, per_side))
    missing = set(exercises) - {p.exercise.id for p in programme}
    if missing:
        raise at.error(f"exercise(s) never prescribed: {', '.join(sorted(missing))}")
    check_unique((p.exercise.id for p in programme), at, "exercise")
    return tuple(programme)


def _progression(
    ctx: VersionContext, prescription: dict[str, Any], at: At, phase: str
) -> dict[str, Any]:
    text, used = ctx.text(prescription["progression"][phase], at / "progression" / phase)
    source_at = at / "progression_sources" / phase
    source = ctx.cite(prescription["progression_sources"][phase], source_at)
    return {"text": text, "parameters": used, "source": source}
