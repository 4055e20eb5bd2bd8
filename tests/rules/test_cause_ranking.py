"""The cause ranking reads its signals from one compiled stage; a cause needs an answered field."""

from __future__ import annotations

from dataclasses import replace

from rules.cause_ranking import CauseRanking
from rules.conditions import FieldRef, NotTrue


def test_a_cause_needs_an_answered_field_even_when_a_signal_holds_on_nothing(evaluator):
    ruleset = evaluator.ruleset
    cause = ruleset.causes[0]
    signal = cause.signals[0]
    path = signal.rule.when.fields[0]
    holds_unless_yes = NotTrue(FieldRef(path)).finish()
    lone = replace(
        cause, signals=(replace(signal, rule=replace(signal.rule, when=holds_unless_yes)),)
    )
    ranking = CauseRanking(replace(ruleset, causes=(lone,)))

    assert ranking.rank({}) == []
    assert ranking.rank({"assessment.level": "self_care"}) == []
    [(score, ranked, evidence)] = ranking.rank({path: False})
    assert (ranked, evidence) == (lone, list(lone.signals))
    assert score == round(signal.weight, 4)
    assert ranking.rank({path: True}) == []
