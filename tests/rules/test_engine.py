"""Properties of the evaluator that hold for every report, and of the condition language."""

from __future__ import annotations

import copy
import random

import pytest

from rules import LEVELS, UnknownCode, load_library, load_report_fields
from rules.conditions import FieldCatalogue, compile_condition, flatten

SECTIONS = load_report_fields()
FIELDS = {
    f"{section}.{name}": spec
    for section, body in SECTIONS.items()
    for name, spec in body["fields"].items()
}


@pytest.fixture(scope="module")
def evaluator():
    return load_library().get("1.0.0")


def random_report(rnd: random.Random) -> dict:
    """A valid report with a random subset of fields answered with random values."""
    report: dict = {"pain": {"intensity": rnd.randint(0, 10)}}
    for path, spec in FIELDS.items():
        if path == "pain.intensity" or rnd.random() < 0.55:
            continue
        section, name = path.split(".")
        kind = spec["kind"]
        if kind == "boolean":
            value = rnd.random() < 0.3
        elif kind == "integer":
            value = rnd.randint(spec["minimum"], min(spec["maximum"], 60))
        elif kind == "choice":
            value = rnd.choice(spec["values"])
        else:
            value = rnd.sample(spec["values"], rnd.randint(0, 3))
        report.setdefault(section, {})[name] = value
    return report


REPORTS = [random_report(random.Random(seed)) for seed in range(400)]


def test_escalation_check_agrees_with_assess_on_random_reports(evaluator):
    levels = set()
    for report in REPORTS:
        assessed = evaluator.assess(report)
        screen = evaluator.escalation_check(report)
        triage = assessed["triage"]
        levels.add(triage["level"])
        assert screen["level"] == triage["level"]
        assert screen["stop_stretching"] == triage["stop_stretching"]
        assert screen["complete"] == triage["complete"]
        assert screen["red_flags"] == triage["red_flags"]
        assert screen["unanswered_red_flag_questions"] == [
            m["field"] for m in assessed["missing_information"] if m["priority"] == "red_flag"
        ]
    assert levels == set(LEVELS), "the random reports should reach every level"


def test_evaluation_is_deterministic_and_does_not_touch_its_input(evaluator):
    for report in REPORTS[:100]:
        before = copy.deepcopy(report)
        first = copy.deepcopy(evaluator.assess(report))
        second = evaluator.assess(report)
        assert report == before
        assert first == second


def test_the_level_is_the_most_urgent_fired_flag_and_plans_follow_it(evaluator):
    for report in REPORTS:
        result = evaluator.assess(report)
        level = result["triage"]["level"]
        fired = [flag["level"] for flag in result["triage"]["red_flags"]]
        assert level == max(fired, key=LEVELS.index, default="self_care")
        if level in ("urgent", "emergency"):
            assert result["exercise_plan"] is None
            assert result["triage"]["stop_stretching"] is True
        if result["exercise_plan"] is not None and level == "see_professional":
            assert result["exercise_plan"]["status"] == "pending_professional_review"


def _firing_answers(condition) -> dict:
    """Answers that make a red-flag condition true (first branch of every any)."""
    from rules.conditions import (
        All,
        Any_,
        Compare,
        Equals,
        Includes,
        IncludesAny,
        IsFalse,
        IsTrue,
        OneOf,
    )

    if isinstance(condition, All):
        merged: dict = {}
        for part in condition.parts:
            merged.update(_firing_answers(part))
        return merged
    if isinstance(condition, Any_):
        return _firing_answers(condition.parts[0])
    path = condition.field.path
    if isinstance(condition, IsTrue):
        return {path: True}
    if isinstance(condition, IsFalse):
        return {path: False}
    if isinstance(condition, Equals):
        return {path: condition.value}
    if isinstance(condition, OneOf):
        return {path: sorted(condition.value)[0]}
    if isinstance(condition, Includes):
        return {path: [condition.value]}
    if isinstance(condition, IncludesAny):
        return {path: [sorted(condition.value)[0]]}
    if isinstance(condition, Compare):
        return {path: condition.threshold}
    raise AssertionError(f"no firing answer for {condition!r}")


def _nest(flat: dict) -> dict:
    report: dict = {}
    for path, value in flat.items():
        section, name = path.split(".")
        report.setdefault(section, {})[name] = value
    return report


RED_FLAG_IDS = [flag.rule.id for flag in load_library().get("1.0.0").ruleset.red_flags]


@pytest.mark.parametrize("flag_id", RED_FLAG_IDS)
def test_no_other_answer_can_lower_or_hide_a_red_flag(evaluator, flag_id):
    flag = next(f for f in evaluator.ruleset.red_flags if f.rule.id == flag_id)
    firing = _firing_answers(flag.rule.when)
    firing.setdefault("pain.intensity", 3)
    for report in REPORTS[:150]:
        flat = flatten(report)
        flat.update(firing)  # the firing answers win over whatever the random report said
        combined = _nest(flat)
        result = evaluator.assess(combined)
        codes = {f["code"] for f in result["triage"]["red_flags"]}
        assert flag.code in codes, combined
        assert LEVELS.index(result["triage"]["level"]) >= LEVELS.index(flag.level)


def test_the_trace_lists_fired_rules_with_the_parameter_values_they_used(evaluator):
    result = evaluator.assess({"pain": {"intensity": 8, "subsides_with_rest": False}})
    entries = {e["rule_id"]: e for e in result["trace"]["rules_fired"]}
    assert entries["rf.intense_pain_not_settling"]["parameters"] == {
        "intense_pain_threshold": 7,
        "urgent_care_within_hours": 24,
    }
    assert entries["stop.intense_pain"]["parameters"] == {"intense_pain_threshold": 7}
    assert result["trace"]["parameters"]["intense_pain_threshold"] == 7


def test_prescriptions_for_conditions(evaluator):
    with pytest.raises(UnknownCode):
        evaluator.prescribe_for_conditions(["torn_everything"], 2)
    strain = evaluator.prescribe_for_conditions(["hamstring_strain"], 2)
    assert strain["exercise_plan"] is None
    assert strain["stop_stretching"] is True
    cyst = evaluator.prescribe_for_conditions(["bakers_cyst", "tight_hamstrings"], 2)
    prescribed = {item["exercise_id"] for item in cyst["exercise_plan"]["items"]}
    assert not prescribed & {"lying_hamstring_stretch", "towel_hamstring_stretch", "squat"}
    imbalance = evaluator.prescribe_for_conditions(["muscle_imbalance"], 2)
    sets = {i["exercise_id"]: i["dose"].get("sets") for i in imbalance["exercise_plan"]["items"]}
    assert sets["hamstring_curl"] == 3
    assert sets["squat"] == 2


# --- the condition language ------------------------------------------------------------------

CATALOGUE = FieldCatalogue(
    {
        "s.a": {"kind": "boolean", "values": None},
        "s.b": {"kind": "boolean", "values": None},
        "s.n": {"kind": "integer", "values": None},
    }
)
PARAMS = {"limit": 5}


def compiled(raw):
    return compile_condition(raw, CATALOGUE, PARAMS, "test")


def _answers(a, b):
    return {k: v for k, v in (("s.a", a), ("s.b", b)) if v is not None}


TRI = (True, False, None)


@pytest.mark.parametrize("a", TRI)
@pytest.mark.parametrize("b", TRI)
def test_kleene_truth_tables(a, b):
    flat = _answers(a, b)
    both = compiled({"all": [{"is_true": "s.a"}, {"is_true": "s.b"}]}).evaluate(flat)
    either = compiled({"any": [{"is_true": "s.a"}, {"is_true": "s.b"}]}).evaluate(flat)
    negated = compiled({"not": {"is_true": "s.a"}}).evaluate(flat)
    expected_and = False if False in (a, b) else (None if None in (a, b) else True)
    expected_or = True if True in (a, b) else (None if None in (a, b) else False)
    assert both is expected_and
    assert either is expected_or
    assert negated is (None if a is None else not a)


def test_unanswered_lists_only_the_fields_that_could_decide():
    condition = compiled(
        {
            "all": [
                {"is_true": "s.a"},
                {"any": [{"is_true": "s.b"}, {"at_least": {"field": "s.n", "param": "limit"}}]},
            ]
        }
    )
    assert condition.unanswered({}) == ["s.a", "s.b", "s.n"]
    assert condition.unanswered({"s.b": True}) == ["s.a"]
    assert condition.unanswered({"s.a": False}) == []
    assert condition.unanswered({"s.a": True, "s.n": 5}) == []
    assert condition.evaluate({"s.a": True, "s.n": 4}) is None
    assert condition.evaluate({"s.a": True, "s.n": 5}) is True


def test_not_true_treats_unanswered_as_not_yes():
    condition = compiled({"not_true": "s.a"})
    assert condition.evaluate({}) is True
    assert condition.evaluate({"s.a": False}) is True
    assert condition.evaluate({"s.a": True}) is False
    assert condition.unanswered({}) == []
