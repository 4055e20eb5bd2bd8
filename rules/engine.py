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

from collections.abc import Mapping, Sequence
from typing import Any

from rules.conditions import flatten
from rules.model import LEVEL_RANK, LEVELS, PLAN_STATUSES, Cause, RedFlag, RuleSet, Signal

Report = Mapping[str, Any]
JSON = dict[str, Any]

_FIRST_LEVEL = LEVELS[0]


class Evaluator:
    """Evaluates reports against one loaded rule set."""

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        rs = ruleset
        params = rs.parameters
        self._high_min = params["likelihood_high_min"].value
        self._moderate_min = params["likelihood_moderate_min"].value
        self._likelihood_trace = {
            "likelihood_high_min": self._high_min,
            "likelihood_moderate_min": self._moderate_min,
        }
        # Red flags from most to least urgent, file order within a level: the order in which
        # fired flags are reported and unanswered questions are asked.
        # Hot-path tables: each condition's compiled function next to what it yields, so that
        # evaluation is a flat loop with no attribute look-ups.
        self._flags_by_urgency = tuple(
            (flag.rule.when.evaluate, flag) for flag in sorted(rs.red_flags, key=lambda f: -f.rank)
        )
        # A cause none of whose fields is answered cannot have evidence: skip it cheaply.
        self._signals = tuple(
            (
                cause,
                tuple((s.rule.when.evaluate, 1.0 - s.weight, s) for s in cause.signals),
                frozenset(f for s in cause.signals for f in s.rule.when.fields),
            )
            for cause in rs.causes
        )
        self._stops = tuple((rule.rule.when.evaluate, rule) for rule in rs.stop_rules)
        self._recommendations = tuple(
            (rec.rule.when.evaluate if rec.rule.when else None, rec.output, rec.rule.trace)
            for rec in rs.recommendations
        )
        self._plan_rules = {
            kind: tuple((rule.rule.when.evaluate, rule) for rule in getattr(rs, kind))
            for kind in ("withhold", "exclude", "adjust", "review")
        }
        self._plan_shaping_rules = (
            self._plan_rules["exclude"] + self._plan_rules["adjust"] + self._plan_rules["review"]
        )
        self._plans: dict[tuple[int, ...], tuple[JSON, list[JSON]]] = {}
        self._base_items = {item.exercise.id: self._item_output(item) for item in rs.programme}
        self._safety = list(rs.safety)
        self._order = {item.exercise.id: i for i, item in enumerate(rs.programme)}
        self._questions = rs.questions
        self._contradictions = tuple((c.rule.when.evaluate, c) for c in rs.contradictions)
        self._status_rank = {status: rank for rank, status in enumerate(PLAN_STATUSES)}

    # -- public API ---------------------------------------------------------------------------

    def escalation_check(self, report: Report) -> JSON:
        """The red-flag screen: as cheap as possible, and always in agreement with assess()."""
        flat = flatten(report)
        self._read_replaced(flat)
        contradictions = self._read_safer(flat)
        fired, undecided = self._red_flags(flat)
        level = fired[0].level if fired else _FIRST_LEVEL
        ranked = self._rank_causes(flat)
        complete = not undecided and not contradictions
        frame = _time_frame(fired)
        ctx = self._context(flat, level, ranked, complete, fired, undecided, frame)
        stop = self._stop(ctx)
        screen = {
            "rules_version": self.ruleset.version,
            "level": level,
            "escalate": level != _FIRST_LEVEL,
            "stop_stretching": stop[0],
            "complete": complete,
            "red_flags": [flag.output for flag in fired],
            "unanswered_red_flag_questions": [
                path
                for path in _unanswered_fields((flag.rule.when for flag in undecided), flat)
                if path in self._questions
            ],
        }
        if self.ruleset.time_frames:
            screen["time_frame"] = frame
        if self.ruleset.contradictions:
            screen["contradictory_answers"] = _contradictory_fields(contradictions)
        return screen

    def assess(self, report: Report) -> JSON:
        rs = self.ruleset
        fired_trace: list[JSON] = []

        flat = flatten(report)
        self._read_replaced(flat)
        contradictions = self._read_safer(flat)
        fired_trace.extend(c.rule.trace for c in contradictions)
        fired, undecided = self._red_flags(flat)
        level = fired[0].level if fired else _FIRST_LEVEL
        fired_trace.extend(flag.rule.trace for flag in fired)
        complete = not undecided and not contradictions

        ranked = self._rank_causes(flat)
        likely_causes = []
        for score, cause, evidence in ranked:
            likely_causes.append(self._cause_output(cause, score, evidence))
            fired_trace.extend(sig.rule.trace for sig in evidence)
        if ranked:
            fired_trace.append(
                {
                    "rule_id": "method.likelihood_bands",
                    "kind": "cause_scoring",
                    "parameters": self._likelihood_trace,
                }
            )

        frame = _time_frame(fired)
        ctx = self._context(flat, level, ranked, complete, fired, undecided, frame)
        stop, stop_rules = self._stop(ctx)
        ctx["assessment.stop_stretching"] = stop
        fired_trace.extend(rule.rule.trace for rule in stop_rules)

        # The plan comes before the advice, so that advice about exercising can follow it.
        plan, withheld, plan_trace = self._plan(ctx)
        ctx["assessment.has_plan"] = plan is not None
        ctx["assessment.plan_exercises"] = plan["exercise_ids"] if plan else ()
        if plan:
            ctx["assessment.plan_status"] = plan["output"]["status"]

        recommendations = []
        for evaluate, output, trace in self._recommendations:
            if evaluate is None or evaluate(ctx) is True:
                recommendations.append(output)
                fired_trace.append(trace)
        fired_trace.extend(plan_trace)

        triage = {
            "level": level,
            "stop_stretching": stop,
            "complete": complete,
            "red_flags": [flag.output for flag in fired],
            "stop_reasons": [rule.output for rule in stop_rules],
        }
        if self.ruleset.time_frames:
            triage["time_frame"] = frame
        return {
            "rules_version": rs.version,
            "triage": triage,
            "likely_causes": likely_causes,
            "recommendations": recommendations,
            "exercise_plan": plan["output"] if plan else None,
            "exercise_plan_withheld": withheld,
            "missing_information": self._missing_information(
                flat, ctx, undecided, ranked, contradictions
            ),
            "disclaimer": rs.disclaimer,
            "trace": _trace(fired_trace),
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
        from rules.errors import UnknownCode

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
        stop, stop_rules = self._stop(ctx)
        # Conditions named by a clinician: the clinician has decided what the plan may hold.
        ctx["assessment.stop_decided"] = True
        ctx["assessment.stop_stretching"] = stop
        plan, withheld, plan_trace = self._plan(ctx)
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

    # -- steps --------------------------------------------------------------------------------

    def _red_flags(self, flat: Report) -> tuple[list[RedFlag], list[RedFlag]]:
        fired, undecided = [], []
        for evaluate, flag in self._flags_by_urgency:
            value = evaluate(flat)
            if value is True:
                fired.append(flag)
            elif value is None:
                undecided.append(flag)
        return fired, undecided

    def _rank_causes(self, flat: Report) -> list[tuple[float, Cause, list[Signal]]]:
        ranked = []
        for cause, signals, fields in self._signals:
            if fields.isdisjoint(flat):
                continue
            remaining = 1.0
            evidence = []
            for evaluate, doubt, signal in signals:
                if evaluate(flat) is True:
                    # noisy-OR: each signal present removes its share of the remaining doubt
                    remaining *= doubt
                    evidence.append(signal)
            if evidence:
                ranked.append((round(1.0 - remaining, 4), cause, evidence))
        ranked.sort(key=lambda entry: (-entry[0], entry[1].order))
        return ranked

    def _likelihood(self, score: float) -> str:
        if score >= self._high_min:
            return "high"
        if score >= self._moderate_min:
            return "moderate"
        return "low"

    def _cause_output(self, cause: Cause, score: float, evidence: list[Signal]) -> JSON:
        return {
            "code": cause.code,
            "name": cause.name,
            "likelihood": self._likelihood(score),
            "score": score,
            "summary": cause.summary,
            "evidence": [signal.evidence for signal in evidence],
            "source": cause.source,
        }

    def _read_replaced(self, flat: dict) -> None:
        """Read an answer to a field no longer asked as the field that replaced it, unless that
        one is answered too (in place, on the request's own flat copy)."""
        for old, new, opposite in self.ruleset.replacements:
            if new not in flat and old in flat:
                flat[new] = (not flat[old]) if opposite else flat[old]

    def _read_safer(self, flat: dict) -> list:
        """The contradictions in the report, each read the safer way in ``flat`` (in place),
        before any red flag is evaluated."""
        found = [c for evaluate, c in self._contradictions if evaluate(flat) is True]
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
            cause.code for score, cause, _ in ranked if score >= self._moderate_min
        ]
        if ranked:
            ctx["assessment.leading_cause"] = ranked[0][1].code
        return ctx

    def _stop(self, ctx: dict):
        """Whether to stop and the rules that say so; ``ctx`` learns whether every stop rule
        could be decided (an open one holds the plan back in rules that read it)."""
        fired, decided = [], True
        for evaluate, rule in self._stops:
            value = evaluate(ctx)
            if value is True:
                fired.append(rule)
            elif value is None:
                decided = False
        ctx["assessment.stop_decided"] = decided
        return bool(fired), fired

    def _plan(self, ctx: Report) -> tuple[JSON | None, list[JSON], list[JSON]]:
        """The plan (``{"output": JSON, "exercise_ids": [...]}``) or None when withheld, the
        reasons it is withheld, and the trace of the plan rules that held.

        The plan depends on the report only through that set of rules, so it is built once per
        distinct set and then reused (at most one entry per combination of plan rules, which is
        small and bounded). Results are shared and read-only, like every static output.
        """
        tables = self._plan_rules
        withheld = [rule for evaluate, rule in tables["withhold"] if evaluate(ctx) is True]
        if withheld:
            return None, [rule.reason for rule in withheld], [rule.rule.trace for rule in withheld]
        key = tuple(
            index
            for index, (evaluate, _) in enumerate(self._plan_shaping_rules)
            if evaluate(ctx) is True
        )
        built = self._plans.get(key)
        if built is None:
            built = self._plans[key] = self._build_plan(
                [self._plan_shaping_rules[index][1] for index in key]
            )
        return built[0], [], built[1]

    def _build_plan(self, rules) -> tuple[JSON, list[JSON]]:
        rs = self.ruleset
        excluded: dict[str, list[JSON]] = {}
        for rule in (r for r in rules if r.kind == "exclude"):
            for exercise_id in rule.exercises:
                excluded.setdefault(exercise_id, []).append(rule.reason)
        adjustments = [rule for rule in rules if rule.kind == "adjust"]
        review = [rule for rule in rules if rule.kind == "review"]

        items = []
        for item in rs.programme:
            exercise_id = item.exercise.id
            if exercise_id in excluded:
                continue
            output = self._base_items[exercise_id]
            applying = [rule for rule in adjustments if exercise_id in rule.exercises]
            if applying:
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
            items.append(output)

        status = max(
            (rule.status for rule in review), key=self._status_rank.__getitem__, default="ready"
        )
        plan = {
            "status": status,
            "status_reasons": [rule.reason for rule in review],
            "items": items,
            "excluded": [
                {
                    "exercise_id": exercise_id,
                    "name": rs.exercises[exercise_id].catalogue["name"],
                    "reasons": reasons,
                }
                for exercise_id, reasons in sorted(excluded.items(), key=self._programme_order)
            ],
            "safety": self._safety,
        }
        exercise_ids = tuple(item["exercise_id"] for item in items)
        return {"output": plan, "exercise_ids": exercise_ids}, [rule.rule.trace for rule in rules]

    def _programme_order(self, entry) -> int:
        return self._order[entry[0]]

    def _missing_information(self, flat, ctx, undecided, ranked, contradictions) -> list[JSON]:
        """Answers that contradict each other first, then questions whose answers could change
        the triage, most urgent first, then the stop decision, then the ranking of causes that
        already have some evidence."""
        questions = self._questions
        entries: dict[str, JSON] = {}
        for contradiction in contradictions:
            for path in contradiction.confirm:
                entry = entries.get(path)
                if entry is None:
                    entries[path] = {
                        "field": path,
                        "question": contradiction.question,
                        "why": contradiction.why,
                        "priority": "contradiction",
                        "could_raise_level_to": None,
                        "rules": [contradiction.rule.id],
                    }
                else:
                    entry["rules"].append(contradiction.rule.id)

        def add(condition, state, priority: str, rule_id: str, level: str | None = None) -> None:
            found: list[str] = []
            condition.collect_unanswered(state, found)
            for path in found:
                entry = entries.get(path)
                if entry is None:
                    question = questions.get(path)
                    if question is None:
                        continue  # a derived value: the report fields behind it are asked instead
                    entry = entries[path] = {
                        "field": path,
                        "question": question.question,
                        "why": question.why,
                        "priority": priority,
                        "could_raise_level_to": level,
                        "rules": [rule_id],
                    }
                elif rule_id not in entry["rules"]:
                    entry["rules"].append(rule_id)

        current = LEVEL_RANK[ctx["assessment.level"]]
        for flag in undecided:
            # Say which level a yes could lead to only when it is above the current one.
            higher = flag.level if flag.rank > current else None
            add(flag.rule.when, flat, "red_flag", flag.rule.id, higher)
        for rule in self.ruleset.stop_rules:
            if rule.rule.when.evaluate(ctx) is None:
                add(rule.rule.when, ctx, "stop_stretching", rule.rule.id)
        for _, cause, _ in ranked:
            for signal in cause.signals:  # only for causes with evidence: few
                if signal.rule.when.evaluate(flat) is None:
                    add(signal.rule.when, flat, "likely_causes", signal.rule.id)
        return list(entries.values())

    def _item_output(self, item) -> JSON:
        catalogue = item.exercise.catalogue
        progression = self.ruleset.progression[item.phase]
        return {
            "exercise_id": item.exercise.id,
            "name": catalogue["name"],
            "phase": item.phase,
            "dose": dict(item.dose),
            "dose_parameters": dict(item.dose_parameters),
            "per_side": item.per_side,
            "intensity": "normal",
            "adjustments": [],
            "progression": progression["text"],
            "steps": catalogue["steps"],
            "cues": catalogue["cues"],
            "cautions": catalogue["cautions"],
            "source": catalogue["source"],
        }


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


def _unanswered_fields(conditions, flat: Report) -> list[str]:
    seen: dict[str, None] = {}
    for condition in conditions:
        for path in condition.unanswered(flat):
            seen.setdefault(path, None)
    return list(seen)


def _time_frame(fired: list[RedFlag]) -> JSON | None:
    """The most pressing time frame among the red flags that fired (None when none fired)."""
    frames = [flag.time_frame for flag in fired if flag.time_frame is not None]
    return min(frames, key=lambda frame: frame.rank).output if frames else None


def _contradictory_fields(contradictions) -> list[str]:
    return list(dict.fromkeys(path for c in contradictions for path in c.confirm))


def _trace(fired: list[JSON]) -> JSON:
    parameters: JSON = {}
    for entry in fired:
        parameters.update(entry["parameters"])
    return {"rules_fired": fired, "parameters": parameters}
