"""Ranking the possible causes of a report: each signal present removes its share of the
remaining doubt (noisy-OR), and the score falls in a likelihood band."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.conditions import compile_which_hold
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
        # Every signal of every cause in one compiled step, which names the signals that hold;
        # each signal's index leads to its cause. A cause none of whose fields is answered has
        # no evidence (a not_true signal would hold on nothing at all): it is left out.
        signals = [(slot, s) for slot, cause in enumerate(ruleset.causes) for s in cause.signals]
        self._signals = tuple((slot, 1.0 - s.weight, s) for slot, s in signals)
        self._causes = tuple(
            (cause, frozenset(f for s in cause.signals for f in s.rule.when.fields))
            for cause in ruleset.causes
        )
        self._signals_holding = compile_which_hold([s.rule.when for _, s in signals])

    def rank(self, flat: Mapping[str, Any]) -> Ranked:
        # By cause slot, in the causes' order (signals are held in index order, and a cause's
        # signals are next to each other): the doubt its signals leave, and the signals.
        remaining: dict[int, float] = {}
        evidence: dict[int, list[Signal]] = {}
        for index in self._signals_holding(flat):
            slot, doubt, signal = self._signals[index]
            if slot in remaining:
                remaining[slot] *= doubt
                evidence[slot].append(signal)
            else:
                remaining[slot], evidence[slot] = doubt, [signal]
        ranked = []
        for slot, doubt in remaining.items():
            cause, fields = self._causes[slot]
            # From the keys' side: a frozenset's isdisjoint would walk the whole report.
            if not flat.keys().isdisjoint(fields):
                ranked.append((round(1.0 - doubt, 4), cause, evidence[slot]))
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
