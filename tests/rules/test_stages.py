"""A compiled stage gives every condition the value its own ``evaluate`` gives, and the
conditions that hold; it reads each field once."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product

import pytest
from hypothesis import given

from rules import load_library
from rules.conditions import Condition, compile_stage, compile_which_hold
from rules.model import RuleSet
from tests.rules.test_engine import TRI, _answers, compiled
from tests.rules.test_safety_properties import PROPERTY, reports

LIBRARY = load_library()


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


STAGES = {
    version: (conditions_of(LIBRARY.get(version).ruleset), LIBRARY.get(version))
    for version in LIBRARY.versions
}
COMPILED = {version: compile_stage(conditions) for version, (conditions, _) in STAGES.items()}
HOLDING = {version: compile_which_hold(conditions) for version, (conditions, _) in STAGES.items()}


def answers_of(report: dict) -> Iterator[dict]:
    """What the steps read of a report under each version: its flat answers, and the flat
    answers with what the screen derived (the assessment.* values later steps read)."""
    for version, (_, evaluator) in STAGES.items():
        screen = evaluator._screener.screen(report)
        yield version, screen.flat
        yield version, screen.ctx


@given(reports())
@PROPERTY
def test_a_stage_agrees_with_each_condition_on_random_reports(report):
    for version, answers in answers_of(report):
        conditions, _ = STAGES[version]
        expected = tuple(condition.evaluate(answers) for condition in conditions)
        assert COMPILED[version](answers) == expected
        # == would let 1 stand for True: each value must be the very same one.
        assert all(
            got is want for got, want in zip(COMPILED[version](answers), expected, strict=True)
        )
        holding = [index for index, value in enumerate(expected) if value is True]
        assert HOLDING[version](answers) == holding


def test_the_stages_cover_hundreds_of_conditions_in_every_version():
    for conditions, _ in STAGES.values():
        assert len(conditions) > 100


@pytest.mark.parametrize(("a", "b", "c"), list(product(TRI, repeat=3)))
def test_a_stage_keeps_kleene_logic(a, b, c):
    leaves = [{"is_true": "s.a"}, {"is_true": "s.b"}, {"is_true": "s.c"}]
    conditions = [
        compiled({"all": leaves}),
        compiled({"any": leaves}),
        compiled({"not": leaves[0]}),
        compiled({"all": [leaves[0], {"any": [leaves[1], {"not": leaves[2]}]}]}),
        compiled({"not_true": "s.b"}),
        compiled({"more_than_field": {"field": "s.n", "other": "s.n"}}),
    ]
    answers = _answers(a=a, b=b, c=c, n=None if c is None else 3)
    values = compile_stage(conditions)(answers)
    assert values == tuple(condition.evaluate(answers) for condition in conditions)
    holding = compile_which_hold(conditions)(answers)
    assert holding == [index for index, value in enumerate(values) if value is True]


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
