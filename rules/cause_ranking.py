"""Ranking the possible causes of a report: each signal present removes its share of the
remaining doubt (noisy-OR), and the score falls in a likelihood band."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.model import Cause, RuleSet, Signal

JSON = dict[str, Any]
Ranked = list[tuple[float, Cause, list[Signal]]]  # (score, cause, signals present), best first


class CauseRanking:
    def __init__(self, ruleset: RuleSet) -> None:
        params = ruleset.parameters
        self.high_min = params["likelihood_high_min"].value
        self.moderate_min = params["likelihood_moderate_min"].value
        self.trace = {
            "rule_id": "method.likelihood_bands",
            "kind": "cause_scoring",
            "parameters": {
                "likelihood_high_min": self.high_min,
                "likelihood_moderate_min": self.moderate_min,
            },
        }
        # Hot-path table: each signal's compiled condition next to what it yields. A cause none
        # of whose fields is answered cannot have evidence: it is skipped cheaply.
        self._signals = tuple(
            (
                cause,
                tuple((s.rule.when.evaluate, 1.0 - s.weight, s) for s in cause.signals),
                frozenset(f for s in cause.signals for f in s.rule.when.fields),
            )
            for cause in ruleset.causes
        )

    def rank(self, flat: Mapping[str, Any]) -> Ranked:
        ranked = []
        for cause, signals, fields in self._signals:
            if fields.isdisjoint(flat):
                continue
            remaining = 1.0
            evidence = []
            for evaluate, doubt, signal in signals:
                if evaluate(flat) is True:
                    remaining *= doubt
                    evidence.append(signal)
            if evidence:
                ranked.append((round(1.0 - remaining, 4), cause, evidence))
        ranked.sort(key=lambda entry: (-entry[0], entry[1].order))
        return ranked

    def likelihood(self, score: float) -> str:
        if score >= self.high_min:
            return "high"
        if score >= self.moderate_min:
            return "moderate"
        return "low"

    def output(self, cause: Cause, score: float, evidence: list[Signal]) -> JSON:
        return {
            "code": cause.code,
            "name": cause.name,
            "likelihood": self.likelihood(score),
            "score": score,
            "summary": cause.summary,
            "evidence": [signal.evidence for signal in evidence],
            "source": cause.source,
        }
