"""The screen of one report: contradicting and replaced answers read as the rules read them,
the red flags with the triage level, the cause ranking, and the stop decision. Each step reads
only the report and what the steps before it derived, so nothing can lower or hide a red flag."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rules.cause_ranking import CauseRanking, Ranked
from rules.conditions import compile_stage, compile_which_hold, flatten
from rules.model import LEVELS, Contradiction, RedFlag, RuleSet, StopRule

Report = Mapping[str, Any]
JSON = dict[str, Any]

FIRST_LEVEL = LEVELS[0]


@dataclass(slots=True)  # made per report: a frozen one costs more to make; never reassigned
class Screen:
    """What the red flags, the cause ranking and the stop rules make of one report."""

    flat: JSON  # the report, flat, with replaced and contradicting answers read as the rules do
    contradictions: list[Contradiction]
    fired: list[RedFlag]  # most urgent first
    undecided: list[RedFlag]  # flags an unanswered question leaves open
    level: str
    complete: bool
    ranked: Ranked
    frame: JSON | None
    ctx: JSON  # the flat report and what the steps so far derived, for later rules to read
    stop: bool
    stop_rules: list[StopRule]


class Screener:
    def __init__(self, ruleset: RuleSet, causes: CauseRanking) -> None:
        self.causes = causes
        self._replacements = ruleset.replacements
        # Red flags from most to least urgent, file order within a level: the order in which
        # fired flags are reported and unanswered questions are asked.
        # Each step's conditions are one compiled stage, read next to what each yields.
        self._flags_by_urgency = tuple(sorted(ruleset.red_flags, key=lambda f: -f.rank))
        self._flag_values = compile_stage([flag.rule.when for flag in self._flags_by_urgency])
        self._stops = ruleset.stop_rules
        self._stop_values = compile_stage([rule.rule.when for rule in self._stops])
        self._contradictions = ruleset.contradictions
        self._contradictions_holding = compile_which_hold(
            [c.rule.when for c in self._contradictions]
        )

    def screen(self, report: Report) -> Screen:
        flat = flatten(report)
        self._read_replaced(flat)
        contradictions = self._read_safer(flat)
        fired, undecided = self._red_flags(flat)
        level = fired[0].level if fired else FIRST_LEVEL
        ranked = self.causes.rank(flat)
        complete = not undecided and not contradictions
        frame = _time_frame(fired)
        ctx = self._context(flat, level, ranked, complete, fired, undecided, frame)
        stop, stop_rules = self.stop(ctx)
        return Screen(
            flat=flat,
            contradictions=contradictions,
            fired=fired,
            undecided=undecided,
            level=level,
            complete=complete,
            ranked=ranked,
            frame=frame,
            ctx=ctx,
            stop=stop,
            stop_rules=stop_rules,
        )

    def _red_flags(self, flat: Report) -> tuple[list[RedFlag], list[RedFlag]]:
        fired, undecided = [], []
        for value, flag in zip(self._flag_values(flat), self._flags_by_urgency, strict=True):
            if value is True:
                fired.append(flag)
            elif value is None:
                undecided.append(flag)
        return fired, undecided

    def _read_replaced(self, flat: dict) -> None:
        """Read an answer to a field no longer asked as the field that replaced it, unless that
        one is answered too (in place, on the request's own flat copy)."""
        for old, new, opposite in self._replacements:
            if new not in flat and old in flat:
                flat[new] = (not flat[old]) if opposite else flat[old]

    def _read_safer(self, flat: dict) -> list:
        """The contradictions in the report, each read the safer way in ``flat`` (in place),
        before any red flag is evaluated."""
        found = [self._contradictions[index] for index in self._contradictions_holding(flat)]
        for contradiction in found:
            contradiction.safer(flat)
        return found

    def _context(
        self, flat: Report, level: str, ranked, triage_complete: bool, fired, undecided, frame
    ) -> JSON:
        """The flat report plus what the triage and ranking derived, for later rules to read."""
        ctx = dict(flat)
        ctx["assessment.level"] = level
        ctx["assessment.triage_complete"] = triage_complete
        ctx["assessment.red_flags"] = [flag.code for flag in fired]
        ctx["assessment.open_red_flags"] = [flag.code for flag in undecided]
        if frame is not None:
            ctx["assessment.time_frame"] = frame["code"]
        ctx["assessment.suspected_causes"] = [cause.code for _, cause, _ in ranked]
        ctx["assessment.likely_causes"] = [
            cause.code for score, cause, _ in ranked if score >= self.causes.moderate_min
        ]
        if ranked:
            ctx["assessment.leading_cause"] = ranked[0][1].code
        return ctx

    def stop(self, ctx: dict) -> tuple[bool, list[StopRule]]:
        """Whether to stop and the rules that say so; ``ctx`` learns whether every stop rule
        could be decided (an open one holds the plan back in rules that read it)."""
        fired, decided = [], True
        for value, rule in zip(self._stop_values(ctx), self._stops, strict=True):
            if value is True:
                fired.append(rule)
            elif value is None:
                decided = False
        ctx["assessment.stop_decided"] = decided
        return bool(fired), fired


def _time_frame(fired: list[RedFlag]) -> JSON | None:
    """The most pressing time frame among the red flags that fired (None when none fired)."""
    frames = [flag.time_frame for flag in fired if flag.time_frame is not None]
    return min(frames, key=lambda frame: frame.rank).output if frames else None


def screen_answer(ruleset: RuleSet, screen: Screen, unanswered: Iterable[str]) -> dict[str, Any]:
    """The escalation-check answer of a screen: the one shape both ``Evaluator`` and the
    interview give. ``unanswered``: the open red flags' unanswered fields, in order."""
    output = {
        "rules_version": ruleset.version,
        "level": screen.level,
        "escalate": screen.level != FIRST_LEVEL,
        "stop_stretching": screen.stop,
        "complete": screen.complete,
        "red_flags": [flag.output for flag in screen.fired],
        "unanswered_red_flag_questions": [p for p in unanswered if p in ruleset.questions],
    }
    if ruleset.time_frames:
        output["time_frame"] = screen.frame
    if ruleset.contradictions:
        output["contradictory_answers"] = list(
            dict.fromkeys(path for c in screen.contradictions for path in c.confirm)
        )
    return output
