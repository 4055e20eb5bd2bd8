"""The questions worth asking next about one report, and why: answers that contradict each
other first, then the questions whose answers could change the triage (most urgent first),
then the stop decision, then the ranking of the causes that already have some evidence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rules.conditions import Condition
from rules.model import LEVEL_RANK, Contradiction, Question, RedFlag, StopRule

JSON = dict[str, Any]


def missing_information(
    questions: Mapping[str, Question],
    flat: Mapping[str, Any],
    ctx: Mapping[str, Any],
    undecided: Iterable[RedFlag],
    ranked: Iterable[tuple[float, Any, Any]],
    contradictions: Iterable[Contradiction],
    stop_rules: Iterable[StopRule],
) -> list[JSON]:
    entries = _Entries(questions)
    for contradiction in contradictions:
        entries.confirm(contradiction)
    current = LEVEL_RANK[ctx["assessment.level"]]
    for flag in undecided:
        # Say which level a yes could lead to only when it is above the current one.
        higher = flag.level if flag.rank > current else None
        entries.ask(flag.rule.when, flat, "red_flag", flag.rule.id, higher)
    for rule in stop_rules:
        if rule.rule.when.evaluate(ctx) is None:
            entries.ask(rule.rule.when, ctx, "stop_stretching", rule.rule.id)
    for _, cause, _ in ranked:
        for signal in cause.signals:  # only for causes with evidence: few
            if signal.rule.when.evaluate(flat) is None:
                entries.ask(signal.rule.when, flat, "likely_causes", signal.rule.id)
    return list(entries.by_field.values())


class _Entries:
    """One entry per field, in the order first asked, listing every rule it would decide."""

    def __init__(self, questions: Mapping[str, Question]) -> None:
        self.questions = questions
        self.by_field: dict[str, JSON] = {}

    def confirm(self, contradiction: Contradiction) -> None:
        for path in contradiction.confirm:
            entry = self.by_field.get(path)
            if entry is None:
                self.by_field[path] = {
                    "field": path,
                    "question": contradiction.question,
                    "why": contradiction.why,
                    "priority": "contradiction",
                    "could_raise_level_to": None,
                    "rules": [contradiction.rule.id],
                }
            else:
                entry["rules"].append(contradiction.rule.id)

    def ask(
        self,
        condition: Condition,
        state: Mapping[str, Any],
        priority: str,
        rule_id: str,
        level: str | None = None,
    ) -> None:
        found: list[str] = []
        condition.collect_unanswered(state, found)
        for path in found:
            entry = self.by_field.get(path)
            if entry is None:
                question = self.questions.get(path)
                if question is None:
                    continue  # a derived value: the report fields behind it are asked instead
                self.by_field[path] = {
                    "field": path,
                    "question": question.question,
                    "why": question.why,
                    "priority": priority,
                    "could_raise_level_to": level,
                    "rules": [rule_id],
                }
            elif rule_id not in entry["rules"]:
                entry["rules"].append(rule_id)
