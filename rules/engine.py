"""Evaluation of a symptom report against one rule set. Pure and deterministic.

The order is fixed, and it is what keeps red flags safe:

1. red flags, from the report alone, give the triage level;
2. causes are ranked from the report alone;
3. the stop-stretching decision reads the report, the level and the leading cause;
4. advice and the exercise plan read all of the above.

No later step writes to an earlier one, so nothing can lower or hide a red flag.

Inputs are the report as plain dicts (already validated by the caller); outputs are plain
JSON-ready dicts. Static pieces of the output are built once per rule set and shared between
responses: callers must treat results as read-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rules.cause_ranking import CauseRanking
from rules.conditions import Condition, compile_which_hold, flatten
from rules.errors import UnknownCode
from rules.exercise_plan import ExercisePlanner
from rules.missing_information import missing_information
from rules.model import RuleSet
from rules.screening import Screen, Screener, screen_answer

Report = Mapping[str, Any]
JSON = dict[str, Any]


class Evaluator:
    """Evaluates reports against one loaded rule set."""

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        self._causes = CauseRanking(ruleset)
        self._screener = Screener(ruleset, self._causes)
        self._planner = ExercisePlanner(ruleset)
        # Every advice item's condition in one compiled step, which names the items that hold.
        self._recommendations = tuple(
            (rec.output, rec.rule.trace) for rec in ruleset.recommendations
        )
        self._advice_holding = compile_which_hold(
            [rec.rule.when for rec in ruleset.recommendations]
        )
        self._questions = ruleset.questions

    # -- public API ---------------------------------------------------------------------------

    def escalation_check(self, report: Report) -> JSON:
        """The red-flag screen: as cheap as possible, and always in agreement with assess()."""
        screen = self._screener.screen(report)
        undecided = (flag.rule.when for flag in screen.undecided)
        return screen_answer(self.ruleset, screen, _unanswered_fields(undecided, screen.flat))

    def assess(self, report: Report) -> JSON:
        rs = self.ruleset
        screen = self._screener.screen(report)
        ctx = screen.ctx
        ctx["assessment.stop_stretching"] = screen.stop
        # The plan comes before the advice, so that advice about exercising can follow it.
        plan, withheld, plan_trace = self._planner.plan(ctx)
        ctx["assessment.has_plan"] = plan is not None
        ctx["assessment.plan_exercises"] = plan["exercise_ids"] if plan else ()
        if plan:
            ctx["assessment.plan_status"] = plan["output"]["status"]
        recommendations, advice_trace = self._advice(ctx)
        return {
            "rules_version": rs.version,
            "triage": self._triage(screen),
            "likely_causes": [
                self._causes.output(cause, score, evidence)
                for score, cause, evidence in screen.ranked
            ],
            "recommendations": recommendations,
            "exercise_plan": plan["output"] if plan else None,
            "exercise_plan_withheld": withheld,
            "missing_information": missing_information(
                self._questions,
                screen.flat,
                ctx,
                screen.undecided,
                screen.ranked,
                screen.contradictions,
                rs.stop_rules,
            ),
            "disclaimer": rs.disclaimer,
            "trace": _trace(self._screen_trace(screen) + advice_trace + plan_trace),
        }

    def prescribe_for_report(self, report: Report) -> JSON:
        """A plan from a symptom report: the plan /assess gives, with the triage it rests on."""
        return prescription_from_assessment(self.assess(report))

    def prescribe_for_conditions(
        self,
        conditions: Sequence[str],
        pain_intensity: int,
        profile: Mapping[str, Any] | None = None,
    ) -> JSON:
        """A plan for conditions already identified (by a clinician, typically in an EHR).

        The conditions stand in for the cause ranking, the first being the leading one. There
        is no symptom report, so there is no triage: plan rules that depend on the triage level
        do not apply, and the plan is returned as clinician-directed.
        """
        known = {cause.code for cause in self.ruleset.causes}
        for code in conditions:
            if code not in known:
                raise UnknownCode("condition", code)
        report: JSON = {"pain": {"intensity": pain_intensity}}
        if profile:
            report["profile"] = dict(profile)
        ordered = list(dict.fromkeys(conditions))
        ctx = flatten(report)
        ctx["assessment.suspected_causes"] = ordered
        ctx["assessment.likely_causes"] = ordered
        if ordered:
            ctx["assessment.leading_cause"] = ordered[0]
        ctx["assessment.red_flags"] = ctx["assessment.open_red_flags"] = ()
        stop, stop_rules = self._screener.stop(ctx)
        # Conditions named by a clinician: the clinician has decided what the plan may hold.
        ctx["assessment.stop_decided"] = True
        ctx["assessment.stop_stretching"] = stop
        plan, withheld, plan_trace = self._planner.plan(ctx)
        trace = [rule.rule.trace for rule in stop_rules] + plan_trace
        return {
            "rules_version": self.ruleset.version,
            "basis": "conditions",
            "conditions": ordered,
            "stop_stretching": stop,
            "stop_reasons": [rule.output for rule in stop_rules],
            "exercise_plan": plan["output"] if plan else None,
            "exercise_plan_withheld": withheld,
            "disclaimer": self.ruleset.disclaimer,
            "trace": _trace(trace),
        }

    # -- parts of an assessment ---------------------------------------------------------------

    def _triage(self, screen: Screen) -> JSON:
        triage = {
            "level": screen.level,
            "stop_stretching": screen.stop,
            "complete": screen.complete,
            "red_flags": [flag.output for flag in screen.fired],
            "stop_reasons": [rule.output for rule in screen.stop_rules],
        }
        if self.ruleset.time_frames:
            triage["time_frame"] = screen.frame
        return triage

    def _screen_trace(self, screen: Screen) -> list[JSON]:
        """The rules of the screen that held, in the order they were decided."""
        trace = [c.rule.trace for c in screen.contradictions]
        trace.extend(flag.rule.trace for flag in screen.fired)
        for _, _, evidence in screen.ranked:
            trace.extend(signal.rule.trace for signal in evidence)
        if screen.ranked:
            trace.append(self._causes.trace)
        trace.extend(rule.rule.trace for rule in screen.stop_rules)
        return trace

    def _advice(self, ctx: JSON) -> tuple[list[JSON], list[JSON]]:
        recommendations, trace = [], []
        for index in self._advice_holding(ctx):
            output, rule_trace = self._recommendations[index]
            recommendations.append(output)
            trace.append(rule_trace)
        return recommendations, trace


def prescription_from_assessment(result: JSON) -> JSON:
    """The plan part of an assessment, as an exercise prescription resting on a report: what
    prescribe_for_report gives, without evaluating the report a second time."""
    return {
        "rules_version": result["rules_version"],
        "basis": "report",
        "triage": result["triage"],
        "exercise_plan": result["exercise_plan"],
        "exercise_plan_withheld": result["exercise_plan_withheld"],
        "disclaimer": result["disclaimer"],
        "trace": result["trace"],
    }


def _unanswered_fields(undecided: Iterable[Condition], flat: Report) -> list[str]:
    """The fields that could still decide conditions left undecided on ``flat``, each once, in
    the order first met (``Condition.unanswered`` of each, merged, without evaluating again).
    Only for undecided conditions: a decided one would add fields that cannot change it."""
    found: list[str] = []
    for condition in undecided:
        condition.collect_unanswered(flat, found)
    return list(dict.fromkeys(found))


def _trace(fired: list[JSON]) -> JSON:
    parameters: JSON = {}
    for entry in fired:
        parameters.update(entry["parameters"])
    return {"rules_fired": fired, "parameters": parameters}
