"""After the red flags: the unanswered fields that could still change the stop decision or the
leading cause, and nothing else.

A cause's score only grows as answers come in (each signal present removes a share of the
remaining doubt), so the best score a cause can still reach is its score with every open signal
present. A cause can change the answer when that best score would overtake the leading cause,
carry it into the likely causes, or (listed or likely) make a stop rule fire that does not fire
now. The stop rules read the level, the red flags and the cause lists only in ways that more
evidence cannot undo, so once none of this can happen, no answer changes the stop decision.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from rules.cause_ranking import CauseRanking
from rules.model import Cause, RuleSet, Signal
from rules.screening import Screen, Screener

JSON = dict[str, Any]
SUSPECTED = "assessment.suspected_causes"
LIKELY = "assessment.likely_causes"


class AnswerChanges:
    def __init__(self, ruleset: RuleSet, screener: Screener, causes: CauseRanking) -> None:
        self.screener = screener
        self.moderate_min = causes.moderate_min
        self.stop_rules = ruleset.stop_rules
        # Strong signals before supporting ones: the heavier the weight, the more an answer moves.
        self.signals = tuple(
            (cause, tuple(sorted(cause.signals, key=lambda s: -s.weight)))
            for cause in ruleset.causes
        )

    def fields(self, screen: Screen, asked: Collection[str], skip: Collection[str]) -> list[str]:
        """The fields worth asking, most consequential first: the stop rules' own fields, then
        the causes that could make a stop rule fire, then those that could lead or become
        likely, the larger possible gain first. Only ``asked`` fields, never one in ``skip``."""
        found: dict[str, None] = {}
        for rule in self.stop_rules:
            for path in rule.rule.when.unanswered(screen.ctx):
                found.setdefault(path, None)
        for _, open_signals in self._causes_that_matter(screen, skip):
            for signal in open_signals:
                for path in signal.rule.when.unanswered(screen.flat):
                    found.setdefault(path, None)
        return [path for path in found if path in asked and path not in skip]

    def _causes_that_matter(
        self, screen: Screen, skip: Collection[str]
    ) -> list[tuple[Cause, list[Signal]]]:
        scores = {cause.code: score for score, cause, _ in screen.ranked}
        leader = screen.ranked[0] if screen.ranked else None
        reach: list[tuple[float, Cause, list[Signal], float]] = []
        for cause, signals in self.signals:
            # A signal counts as open only while one of its unanswered fields may still be
            # answered: a declined field is never asked again, so it cannot make one present.
            open_signals = [
                s
                for s in signals
                if s.rule.when.evaluate(screen.flat) is None
                and any(p not in skip for p in s.rule.when.unanswered(screen.flat))
            ]
            if not open_signals:
                continue
            current = scores.get(cause.code, 0.0)
            doubt = 1.0 - current
            for signal in open_signals:
                doubt *= 1.0 - signal.weight
            reach.append((current, cause, open_signals, round(1.0 - doubt, 4)))
        flips = self._stop_flippers(screen, reach)
        chosen = []
        for current, cause, open_signals, best in reach:
            if cause.code in flips:
                chosen.append((2.0, cause, open_signals))  # the stop decision first
            elif _could_lead(cause, best, leader) or current < self.moderate_min <= best:
                chosen.append((best - current, cause, open_signals))
        chosen.sort(key=lambda entry: (-entry[0], entry[1].order))
        return [(cause, open_signals) for _, cause, open_signals in chosen]

    def _stop_flippers(self, screen: Screen, reach: list) -> set[str]:
        """The causes whose new evidence alone would make a stop rule fire."""
        if screen.stop:
            return set()  # more evidence never takes a stop back
        flippers = set()
        for current, cause, _, best in reach:
            ctx = dict(screen.ctx)
            ctx[SUSPECTED] = [*ctx.get(SUSPECTED, ()), cause.code]
            if current < self.moderate_min <= best:
                ctx[LIKELY] = [*ctx.get(LIKELY, ()), cause.code]
            if self.screener.stop(ctx)[0]:
                flippers.add(cause.code)
        return flippers


def _could_lead(cause: Cause, best: float, leader: tuple[float, Cause, Any] | None) -> bool:
    if leader is None:
        return True
    score, leading, _ = leader
    if leading is cause:
        return False
    return best > score or (best == score and cause.order < leading.order)
