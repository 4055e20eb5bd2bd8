"""The exercise plan for one report: the whole programme, withheld, or shaped by the plan rules
that hold (exclusions, adjustments, and the status review rules set)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rules.conditions import compile_which_hold
from rules.model import PLAN_STATUSES, PlanRule, ProgrammeItem, RuleSet

JSON = dict[str, Any]
Built = tuple[JSON, list[JSON]]  # ({"output": plan, "exercise_ids": (...)}, trace)


class ExercisePlanner:
    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._withhold = ruleset.withhold
        self._withhold_holding = compile_which_hold([rule.rule.when for rule in self._withhold])
        self._shaping = ruleset.exclude + ruleset.adjust + ruleset.review
        self._shaping_holding = compile_which_hold([rule.rule.when for rule in self._shaping])
        self._plans: dict[tuple[int, ...], Built] = {}
        self._base_items = {
            item.exercise.id: _item_output(item, ruleset.progression) for item in ruleset.programme
        }
        self._safety = list(ruleset.safety)
        self._order = {item.exercise.id: i for i, item in enumerate(ruleset.programme)}
        self._status_rank = {status: rank for rank, status in enumerate(PLAN_STATUSES)}

    def plan(self, ctx: Mapping[str, Any]) -> tuple[JSON | None, list[JSON], list[JSON]]:
        """The plan (``{"output": JSON, "exercise_ids": [...]}``) or None when withheld, the
        reasons it is withheld, and the trace of the plan rules that held.

        The plan depends on the report only through that set of rules, so it is built once per
        distinct set and then reused (at most one entry per combination of plan rules, which is
        small and bounded). Results are shared and read-only, like every static output.
        """
        withheld = [self._withhold[index] for index in self._withhold_holding(ctx)]
        if withheld:
            return None, [rule.reason for rule in withheld], [rule.rule.trace for rule in withheld]
        key = tuple(self._shaping_holding(ctx))
        built = self._plans.get(key)
        if built is None:
            built = self._plans[key] = self._build([self._shaping[index] for index in key])
        return built[0], [], built[1]

    def _build(self, rules: Sequence[PlanRule]) -> Built:
        excluded = _exclusions(rules)
        adjustments = [rule for rule in rules if rule.kind == "adjust"]
        review = [rule for rule in rules if rule.kind == "review"]
        items = [
            self._item(item.exercise.id, adjustments)
            for item in self.ruleset.programme
            if item.exercise.id not in excluded
        ]
        plan = {
            "status": self._status(review),
            "status_reasons": [rule.reason for rule in review],
            "items": items,
            "excluded": self._excluded(excluded),
            "safety": self._safety,
        }
        exercise_ids = tuple(item["exercise_id"] for item in items)
        return {"output": plan, "exercise_ids": exercise_ids}, [rule.rule.trace for rule in rules]

    def _item(self, exercise_id: str, adjustments: Sequence[PlanRule]) -> JSON:
        """The programme item as prescribed, or a copy with the adjustments that apply to it."""
        output = self._base_items[exercise_id]
        applying = [rule for rule in adjustments if exercise_id in rule.exercises]
        if not applying:
            return output
        output = dict(output)
        output["dose"] = dict(output["dose"])
        output["dose_parameters"] = dict(output["dose_parameters"])
        output["adjustments"] = []
        for rule in applying:
            output["dose"].update(rule.dose)
            output["dose_parameters"].update(rule.dose_parameters)
            if rule.intensity:
                output["intensity"] = rule.intensity
            output["adjustments"].append(rule.reason)
        return output

    def _status(self, review: Sequence[PlanRule]) -> str:
        """The most restrictive status of the review rules that hold."""
        return max(
            (rule.status for rule in review), key=self._status_rank.__getitem__, default="ready"
        )

    def _excluded(self, excluded: Mapping[str, list[JSON]]) -> list[JSON]:
        """Each excluded exercise with the reasons, in programme order."""
        return [
            {
                "exercise_id": exercise_id,
                "name": self.ruleset.exercises[exercise_id].catalogue["name"],
                "reasons": reasons,
            }
            for exercise_id, reasons in sorted(excluded.items(), key=self._programme_order)
        ]

    def _programme_order(self, entry: tuple[str, Any]) -> int:
        return self._order[entry[0]]


def _exclusions(rules: Sequence[PlanRule]) -> dict[str, list[JSON]]:
    """exercise id -> the reasons of the exclusion rules that remove it."""
    excluded: dict[str, list[JSON]] = {}
    for rule in rules:
        if rule.kind == "exclude":
            for exercise_id in rule.exercises:
                excluded.setdefault(exercise_id, []).append(rule.reason)
    return excluded


def _item_output(item: ProgrammeItem, progression: Mapping[str, JSON]) -> JSON:
    catalogue = item.exercise.catalogue
    return {
        "exercise_id": item.exercise.id,
        "name": catalogue["name"],
        "phase": item.phase,
        "dose": dict(item.dose),
        "dose_parameters": dict(item.dose_parameters),
        "per_side": item.per_side,
        "intensity": "normal",
        "adjustments": [],
        "progression": progression[item.phase]["text"],
        "steps": catalogue["steps"],
        "cues": catalogue["cues"],
        "cautions": catalogue["cautions"],
        "source": catalogue["source"],
    }
