"""Compiled stages: every condition gets the value its own ``evaluate`` gives, the conditions
that hold are named in order, each field is read once; and each step of the evaluation that
runs on a stage decides exactly what its old one-condition-at-a-time loop decided."""

from __future__ import annotations

from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import Evaluator, load_library
from rules.conditions import Condition, compile_stage, compile_which_hold
from rules.model import PLAN_STATUSES, RuleSet
from tests.rules.test_engine import TRI, _answers, compiled, kleene_and, kleene_or
from tests.rules.test_safety_properties import PROPERTY, reports

LIBRARY = load_library()
EVALUATORS = [LIBRARY.get(version) for version in LIBRARY.versions]
# What the stop decision and the plan add for the advice to read, beside what the screen
# derived: drawn at random, so that every advice condition meets them answered and not.
DECIDED_LATER = (
    "assessment.stop_stretching",
    "assessment.stop_decided",
    "assessment.has_plan",
)


def conditions_of(ruleset: RuleSet) -> list[Condition]:
    """Every condition of a rule set that an evaluation step reads."""
    rules = [
        *ruleset.red_flags,
        *ruleset.stop_rules,
        *ruleset.contradictions,
        *(signal for cause in ruleset.causes for signal in cause.signals),
        *ruleset.recommendations,
        *ruleset.withhold,
        *ruleset.exclude,
        *ruleset.adjust,
        *ruleset.review,
    ]
    return [item.rule.when for item in rules if item.rule.when is not None]


# Every condition of each version, and the two compiled forms of them all.
EVERY_CONDITION = {
    evaluator.ruleset.version: (
        conditions,
        compile_stage(conditions),
        compile_which_hold(conditions),
    )
    for evaluator in EVALUATORS
    for conditions in [conditions_of(evaluator.ruleset)]
}


@st.composite
def screened(draw) -> tuple[Evaluator, dict, dict]:
    """An evaluator, a random report's flat answers as its screen reads them, and what the
    later steps read: the screen's context with random stop and plan answers."""
    evaluator = draw(st.sampled_from(EVALUATORS))
    screen = evaluator._screener.screen(draw(reports()))
    ctx = dict(screen.ctx)
    for path in DECIDED_LATER:
        answer = draw(st.sampled_from(TRI))
        if answer is not None:
            ctx[path] = answer
    status = draw(st.sampled_from((None, *PLAN_STATUSES)))
    if status is not None:
        ctx["assessment.plan_status"] = status
    exercises = sorted(evaluator.ruleset.exercises)
    ctx["assessment.plan_exercises"] = draw(st.lists(st.sampled_from(exercises), unique=True))
    return evaluator, screen.flat, ctx


@given(screened())
@PROPERTY
def test_a_stage_agrees_with_each_condition_on_random_answers(case):
    evaluator, flat, ctx = case
    conditions, stage, which_hold = EVERY_CONDITION[evaluator.ruleset.version]
    for answers in (flat, ctx):
        expected = [condition.evaluate(answers) for condition in conditions]
        # Each value the very same object (== would let 1 stand for True).
        assert all(got is want for got, want in zip(stage(answers), expected, strict=True))
        assert which_hold(answers) == [i for i, value in enumerate(expected) if value is True]


def test_the_random_answers_reach_hundreds_of_conditions_in_every_version():
    for conditions, _, _ in EVERY_CONDITION.values():
        assert len(conditions) > 100


# --- each step decides what its old loop over the conditions decided --------------------------


def _held(rules, answers) -> list:
    return [rule for rule in rules if rule.rule.when.evaluate(answers) is True]


def _old_rank(evaluator: Evaluator, flat: dict) -> list:
    ranked = []
    for cause in evaluator.ruleset.causes:
        fields = {f for signal in cause.signals for f in signal.rule.when.fields}
        if fields.isdisjoint(flat):
            continue
        remaining, evidence = 1.0, []
        for signal in cause.signals:
            if signal.rule.when.evaluate(flat) is True:
                remaining *= 1.0 - signal.weight
                evidence.append(signal)
        if evidence:
            ranked.append((round(1.0 - remaining, 4), cause, evidence))
    return sorted(ranked, key=lambda entry: (-entry[0], entry[1].order))


@given(screened())
@PROPERTY
def test_each_step_decides_what_evaluating_its_conditions_one_by_one_decides(case):
    evaluator, flat, ctx = case
    ruleset, screener, planner = evaluator.ruleset, evaluator._screener, evaluator._planner

    by_urgency = sorted(ruleset.red_flags, key=lambda flag: -flag.rank)
    fired, undecided = screener._red_flags(flat)
    assert fired == _held(by_urgency, flat)
    assert undecided == [f for f in by_urgency if f.rule.when.evaluate(flat) is None]
    assert screener._read_safer(dict(flat)) == _held(ruleset.contradictions, flat)
    assert evaluator._causes.rank(flat) == _old_rank(evaluator, flat)

    stop, stop_rules = screener.stop(dict(ctx))
    assert stop_rules == _held(ruleset.stop_rules, ctx)
    assert stop is bool(stop_rules)

    advice = [
        rec.output
        for rec in ruleset.recommendations
        if rec.rule.when is None or rec.rule.when.evaluate(ctx) is True
    ]
    assert evaluator._advice(ctx)[0] == advice

    plan, withheld, _ = planner.plan(ctx)
    withholding = _held(ruleset.withhold, ctx)
    assert withheld == [rule.reason for rule in withholding]
    if not withholding:
        shaping = _held(ruleset.exclude + ruleset.adjust + ruleset.review, ctx)
        assert plan == planner._build(shaping)[0]


# --- the logic itself, against truth tables written out here ----------------------------------


@pytest.mark.parametrize(("a", "b", "c"), list(product(TRI, repeat=3)))
def test_a_stage_keeps_kleene_logic(a, b, c):
    leaves = [{"is_true": "s.a"}, {"is_true": "s.b"}, {"is_true": "s.c"}]
    nested = {"all": [leaves[0], {"any": [leaves[1], {"not": leaves[2]}]}]}
    conditions = [
        compiled({"all": leaves}),
        compiled({"any": leaves}),
        compiled({"not": leaves[0]}),
        compiled(nested),
        compiled({"not_true": "s.b"}),
        compiled({"more_than_field": {"field": "s.n", "other": "s.n"}}),
    ]
    answers = _answers(a=a, b=b, c=c, n=None if c is None else 3)
    expected = (
        kleene_and(a, b, c),
        kleene_or(a, b, c),
        None if a is None else not a,
        kleene_and(a, kleene_or(b, None if c is None else not c)),
        b is not True,
        None if c is None else False,  # a number is never more than itself
    )
    values = compile_stage(conditions)(answers)
    assert all(got is want for got, want in zip(values, expected, strict=True)), values
    holding = compile_which_hold(conditions)(answers)
    assert holding == [index for index, value in enumerate(expected) if value is True]


def test_a_missing_condition_always_holds_and_no_condition_gives_no_value():
    assert compile_stage([None, compiled({"is_true": "s.a"})])({}) == (True, None)
    assert compile_stage([])({}) == ()
    assert compile_which_hold([None, compiled({"is_true": "s.a"}), None])({}) == [0, 2]
    assert compile_which_hold([])({}) == []


class CountingReads(dict):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.reads: list[str] = []

    def get(self, key, default=None):
        self.reads.append(key)
        return super().get(key, default)


def test_a_stage_reads_each_field_once():
    conditions = [
        compiled({"is_true": "s.a"}),
        compiled({"all": [{"is_true": "s.a"}, {"is_false": "s.b"}]}),
        compiled({"at_least": {"field": "s.n", "param": "limit"}}),
        compiled({"more_than_field": {"field": "s.n", "other": "s.n"}}),
    ]
    answers = CountingReads({"s.a": True, "s.b": False, "s.n": 7})
    assert compile_stage(conditions)(answers) == (True, True, True, False)
    assert sorted(answers.reads) == ["s.a", "s.b", "s.n"]
    answers.reads.clear()
    assert compile_which_hold(conditions)(answers) == [0, 1, 2]
    assert sorted(answers.reads) == ["s.a", "s.b", "s.n"]
