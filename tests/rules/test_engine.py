"""Properties of the evaluator that hold for every report, and of the condition language.

Reports are generated from the report vocabulary (``rules.load_report_fields()``) with a fixed
seed per report, so every run checks the same reports and a failure names the seed that broke.
"""

from __future__ import annotations

import copy
import itertools
import random

import pytest

from rules import (
    LEVELS,
    Evaluator,
    RuleDefinitionError,
    UnknownCode,
    load_library,
    load_report_fields,
)
from rules.conditions import (
    All,
    Any_,
    Compare,
    Equals,
    FieldCatalogue,
    Includes,
    IncludesAny,
    IsFalse,
    IsTrue,
    Not,
    NotTrue,
    OneOf,
    compile_condition,
    flatten,
    nest,
)
from rules.engine import _unanswered_fields
from rules.loader import VERSIONS_DIR, load_ruleset

SECTIONS = load_report_fields()
FIELDS = {
    f"{section}.{name}": spec
    for section, body in SECTIONS.items()
    for name, spec in body["fields"].items()
}
SEEDS = range(400)


def random_report(seed: int) -> dict:
    """A valid report: pain.intensity and a random share of the other fields (from a third to
    all of them, so that some reports answer every question), with random answers."""
    rnd = random.Random(seed)
    answered = rnd.choice((0.3, 0.5, 0.8, 1.0))
    report: dict = {"pain": {"intensity": rnd.randint(0, 10)}}
    for path, spec in FIELDS.items():
        if path == "pain.intensity" or rnd.random() >= answered:
            continue
        section, name = path.split(".")
        kind = spec["kind"]
        if kind == "boolean":
            value = rnd.random() < 0.25
        elif kind == "integer":
            value = rnd.randint(spec["minimum"], min(spec["maximum"], 60))
        elif kind == "choice":
            value = rnd.choice(spec["values"])
        else:
            value = rnd.sample(spec["values"], rnd.randint(0, 3))
        report.setdefault(section, {})[name] = value
    return report


REPORTS = {seed: random_report(seed) for seed in SEEDS}


# --- the escalation check and the assessment agree --------------------------------------------


def test_escalation_check_agrees_with_assess_on_random_reports(any_evaluator):
    levels, completeness = set(), set()
    for seed, report in REPORTS.items():
        assessed = any_evaluator.assess(report)
        screen = any_evaluator.escalation_check(report)
        triage = assessed["triage"]
        levels.add(triage["level"])
        completeness.add(triage["complete"])
        red_flag_questions = [
            m["field"] for m in assessed["missing_information"] if m["priority"] == "red_flag"
        ]
        contradictions = [
            m["field"] for m in assessed["missing_information"] if m["priority"] == "contradiction"
        ]
        expected = {
            "rules_version": assessed["rules_version"],
            "level": triage["level"],
            "escalate": triage["level"] != LEVELS[0],
            "stop_stretching": triage["stop_stretching"],
            "complete": triage["complete"],
            "red_flags": triage["red_flags"],
            "unanswered_red_flag_questions": red_flag_questions,
        }
        if any_evaluator.ruleset.time_frames:  # from rules 2.0.0 on
            expected["time_frame"] = triage["time_frame"]
            expected["contradictory_answers"] = contradictions
        assert screen == expected, f"seed {seed}"
        assert triage["complete"] is (not red_flag_questions and not contradictions), f"seed {seed}"
    assert levels == set(LEVELS), "the random reports should reach every level"
    assert completeness == {True, False}, "the random reports should be complete and incomplete"


def test_the_unanswered_fields_of_a_screen_merge_those_of_each_open_flag(any_evaluator):
    asked = 0
    for seed, report in REPORTS.items():
        screen = any_evaluator._screener.screen(report)
        conditions = [flag.rule.when for flag in screen.undecided]
        merged: dict[str, None] = {}
        for condition in conditions:
            merged.update(dict.fromkeys(condition.unanswered(screen.flat)))
        assert _unanswered_fields(conditions, screen.flat) == list(merged), f"seed {seed}"
        asked += bool(merged)
    assert asked > 100, "the random reports should leave red flags open"


def test_the_level_is_the_most_urgent_fired_flag_and_plans_follow_it(any_evaluator):
    for seed, report in REPORTS.items():
        result = any_evaluator.assess(report)
        triage = result["triage"]
        ranks = [LEVELS.index(flag["level"]) for flag in triage["red_flags"]]
        assert ranks == sorted(ranks, reverse=True), f"seed {seed}: most urgent first"
        assert triage["level"] == LEVELS[max(ranks, default=0)], f"seed {seed}"
        if triage["level"] in ("urgent", "emergency"):
            assert result["exercise_plan"] is None, f"seed {seed}"
            assert triage["stop_stretching"] is True, f"seed {seed}"
        plan = result["exercise_plan"]
        assert (plan is None) == bool(result["exercise_plan_withheld"]), f"seed {seed}"
        if plan is not None and triage["level"] == "see_professional":
            assert plan["status"] in (
                "pending_professional_review",
                "awaiting_safety_answers",
            ), f"seed {seed}"
        if plan is not None and triage["stop_stretching"]:
            phases = {item["phase"] for item in plan["items"]}
            assert "stretch" not in phases, f"seed {seed}: stretching was stopped"


# --- determinism and purity -------------------------------------------------------------------


def test_the_same_report_gives_the_same_output(any_evaluator):
    for seed in list(SEEDS)[:100]:
        report = REPORTS[seed]
        assert any_evaluator.assess(report) == any_evaluator.assess(copy.deepcopy(report))
        assert any_evaluator.escalation_check(report) == any_evaluator.escalation_check(report)


def test_the_output_does_not_depend_on_what_was_assessed_before(any_evaluator):
    """A fresh evaluator (empty caches) and one that has seen hundreds of reports agree."""
    fresh = Evaluator(load_ruleset(VERSIONS_DIR / any_evaluator.ruleset.version))
    for seed in reversed(SEEDS):
        report = REPORTS[seed]
        assert fresh.assess(report) == any_evaluator.assess(report), f"seed {seed}"


def test_assessing_touches_neither_the_input_nor_earlier_outputs(any_evaluator):
    """The input dict is not mutated, and outputs (which share static pieces between responses)
    are not changed by later evaluations."""
    inputs = {seed: copy.deepcopy(report) for seed, report in REPORTS.items()}
    first = {}
    for seed, report in REPORTS.items():
        first[seed] = (any_evaluator.assess(report), copy.deepcopy(any_evaluator.assess(report)))
        any_evaluator.escalation_check(report)
        any_evaluator.prescribe_for_report(report)
    for seed in reversed(SEEDS):
        any_evaluator.assess(REPORTS[seed])
    for seed, report in REPORTS.items():
        assert report == inputs[seed], f"seed {seed}: the input was mutated"
        returned, snapshot = first[seed]
        assert returned == snapshot, f"seed {seed}: a returned output changed afterwards"


def test_prescribing_for_conditions_does_not_touch_the_profile(evaluator):
    profile = {"age": 50, "activity_level": "athlete"}
    conditions = ["muscle_imbalance", "tight_hamstrings"]
    before = (copy.deepcopy(profile), list(conditions))
    first = evaluator.prescribe_for_conditions(conditions, 3, profile)
    assert (profile, conditions) == before
    assert evaluator.prescribe_for_conditions(conditions, 3, profile) == first


# --- red flags cannot be lowered --------------------------------------------------------------


def firing_answers(condition) -> list[dict]:
    """Every minimal set of answers that makes ``condition`` true: one per branch of each
    'any', and at each threshold the boundary value itself."""
    if isinstance(condition, All):
        sets = []
        for combination in itertools.product(*(firing_answers(p) for p in condition.parts)):
            merged: dict = {}
            for answers in combination:
                merged.update(answers)
            sets.append(merged)
        return sets
    if isinstance(condition, Any_):
        return [answers for part in condition.parts for answers in firing_answers(part)]
    if isinstance(condition, Not):
        raise AssertionError("a red flag with 'not' needs its own firing answers here")
    path = condition.field.path
    if isinstance(condition, IsTrue):
        return [{path: True}]
    if isinstance(condition, IsFalse | NotTrue):
        return [{path: False}]
    if isinstance(condition, Equals):
        return [{path: condition.value}]
    if isinstance(condition, OneOf):
        return [{path: value} for value in sorted(condition.value)]
    if isinstance(condition, Includes):
        return [{path: [condition.value]}]
    if isinstance(condition, IncludesAny):
        return [{path: [value]} for value in sorted(condition.value)]
    if isinstance(condition, Compare):
        step = {">=": 0, "<=": 0, ">": 1, "<": -1}[condition.operator]
        return [{path: condition.threshold + step}]
    raise AssertionError(f"no firing answers for {type(condition).__name__}")


def benign_answers(evaluator) -> dict:
    """Every yes/no question answered no, plus the strongest benign causes and mild pain."""
    flat = {path: False for path, spec in FIELDS.items() if spec["kind"] == "boolean"}
    flat.update(
        {
            "pain.intensity": 2,
            "pain.quality": ["pulling"],
            "pain.locations": ["back_of_thigh"],
            "pain.onset": "gradual",
            "pain.started_during": "stretching",
            "pain.subsides_with_rest": True,
            "pain.duration_days": 3,
            "stretching.bouncing": True,
            "stretching.hold_seconds": 10,
            "profile.quadriceps_dominant": True,
            "profile.age": 30,
        }
    )
    assert evaluator.assess(nest(flat))["triage"]["level"] == LEVELS[0], "not benign any more"
    return flat


RED_FLAG_IDS = [flag.rule.id for flag in load_library().get().ruleset.red_flags]


@pytest.mark.parametrize("flag_id", RED_FLAG_IDS)
def test_no_other_answer_can_lower_or_hide_a_red_flag(evaluator, flag_id):
    flag = next(f for f in evaluator.ruleset.red_flags if f.rule.id == flag_id)
    backgrounds = [benign_answers(evaluator)] + [flatten(REPORTS[seed]) for seed in range(150)]
    for firing in firing_answers(flag.rule.when):
        for background in backgrounds:
            flat = {**background, **firing}  # the firing answers win
            flat.setdefault("pain.intensity", 2)
            report = nest(flat)
            result = evaluator.assess(report)
            fired = {f["code"] for f in result["triage"]["red_flags"]}
            assert flag.code in fired, report
            assert LEVELS.index(result["triage"]["level"]) >= flag.rank, report
            assert evaluator.escalation_check(report)["level"] == result["triage"]["level"]


def test_firing_answers_really_fire_each_flag_on_their_own(evaluator):
    for flag in evaluator.ruleset.red_flags:
        for firing in firing_answers(flag.rule.when):
            assert flag.rule.when.evaluate(firing) is True, (flag.code, firing)


# --- the trace --------------------------------------------------------------------------------


def test_the_trace_lists_fired_rules_with_the_parameter_values_they_used(any_evaluator):
    parameters = {pid: p.value for pid, p in any_evaluator.ruleset.parameters.items()}
    for seed, report in REPORTS.items():
        result = any_evaluator.assess(report)
        entries = result["trace"]["rules_fired"]
        traced = [entry["rule_id"] for entry in entries]
        assert len(traced) == len(set(traced)), f"seed {seed}: a rule is traced twice"
        for flag in result["triage"]["red_flags"]:
            assert flag["rule_id"] in traced, f"seed {seed}"
        for stop in result["triage"]["stop_reasons"]:
            assert stop["rule_id"] in traced, f"seed {seed}"
        for withheld in result["exercise_plan_withheld"]:
            assert withheld["rule_id"] in traced, f"seed {seed}"
        for cause in result["likely_causes"]:
            for evidence in cause["evidence"]:
                assert evidence["signal"] in traced, f"seed {seed}"
        union: dict = {}
        for entry in entries:
            for pid, value in entry["parameters"].items():
                assert parameters[pid] == value, f"seed {seed}: {entry['rule_id']} {pid}"
            union.update(entry["parameters"])
        assert result["trace"]["parameters"] == union, f"seed {seed}"


def test_the_trace_names_the_threshold_of_the_intense_pain_flag(evaluator):
    threshold = evaluator.ruleset.parameters["intense_pain_threshold"].value
    result = evaluator.assess({"pain": {"intensity": threshold, "subsides_with_rest": False}})
    entries = {entry["rule_id"]: entry for entry in result["trace"]["rules_fired"]}
    assert entries["rf.intense_pain_not_settling"]["parameters"]["intense_pain_threshold"] == (
        threshold
    )
    assert entries["stop.intense_pain"]["parameters"] == {"intense_pain_threshold": threshold}
    assert result["trace"]["parameters"]["intense_pain_threshold"] == threshold


# --- prescriptions for conditions named by a clinician ----------------------------------------


def _items(prescription) -> dict[str, dict]:
    return {item["exercise_id"]: item for item in prescription["exercise_plan"]["items"]}


def test_an_unknown_condition_is_refused_by_name(evaluator):
    with pytest.raises(UnknownCode, match="torn_everything") as raised:
        evaluator.prescribe_for_conditions(["tight_hamstrings", "torn_everything"], 2)
    assert raised.value.code == "torn_everything"


@pytest.mark.parametrize(
    "conditions",
    [["hamstring_strain", "tight_hamstrings"], ["tight_hamstrings", "hamstring_strain"]],
    ids=["named first", "named second"],
)
def test_a_strain_named_anywhere_withholds_the_plan_and_stops_stretching(evaluator, conditions):
    """Rules 2.0.0: the order of the conditions cannot switch stop off or bring a plan back."""
    result = evaluator.prescribe_for_conditions(conditions, 2)
    assert result["exercise_plan"] is None
    assert [w["rule_id"] for w in result["exercise_plan_withheld"]] == [
        "plan.withhold.likely_strain"
    ]
    assert result["stop_stretching"] is True
    assert result["conditions"] == conditions


def test_rules_1_0_0_still_reads_only_the_leading_strain(library):
    """The released 1.0.0 keeps its behaviour: a strain named second keeps a plan."""
    result = library.get("1.0.0").prescribe_for_conditions(
        ["tight_hamstrings", "hamstring_strain"], 2
    )
    assert result["exercise_plan"] is not None
    assert "hamstring_curl" not in _items(result)


def test_a_bakers_cyst_gets_no_stretches_and_no_deep_knee_bending(evaluator):
    result = evaluator.prescribe_for_conditions(["bakers_cyst"], 3)
    items = _items(result)
    assert not [i for i in items.values() if i["phase"] == "stretch"], items.keys()
    assert "dynamic_stretches" not in items
    assert not {"squat", "lunge"} & set(items)
    assert {"glute_bridge", "calf_raise"} <= set(items)


def test_an_imbalance_gets_extra_sets_for_the_back_of_the_thigh(evaluator):
    parameters = evaluator.ruleset.parameters
    items = _items(evaluator.prescribe_for_conditions(["muscle_imbalance"], 2))
    emphasis, standard = (
        parameters["strength_sets_emphasis"].value,
        parameters["strength_sets"].value,
    )
    assert emphasis != standard
    assert items["hamstring_curl"]["dose"]["sets"] == emphasis
    assert items["glute_bridge"]["dose"]["sets"] == emphasis
    assert items["squat"]["dose"]["sets"] == standard


def test_no_condition_and_mild_pain_gets_the_whole_programme(evaluator):
    result = evaluator.prescribe_for_conditions([], 2)
    assert set(_items(result)) == set(evaluator.ruleset.exercises)
    assert result["stop_stretching"] is False


def test_intense_pain_withholds_a_prescription_whatever_the_condition(evaluator):
    threshold = evaluator.ruleset.parameters["intense_pain_threshold"].value
    result = evaluator.prescribe_for_conditions(["tight_hamstrings"], threshold)
    assert result["exercise_plan"] is None
    assert result["stop_stretching"] is True
    below = evaluator.prescribe_for_conditions(["tight_hamstrings"], threshold - 1)
    assert below["exercise_plan"] is not None


# --- the condition language -------------------------------------------------------------------

CATALOGUE = FieldCatalogue(
    {
        "s.a": {"kind": "boolean", "values": None},
        "s.b": {"kind": "boolean", "values": None},
        "s.c": {"kind": "boolean", "values": None},
        "s.n": {"kind": "integer", "values": None},
        "s.k": {"kind": "choice", "values": ["x", "y", "z"]},
        "s.l": {"kind": "list", "values": ["x", "y", "z"]},
    }
)
PARAMS = {"limit": 5}
TRI = (True, False, None)


def compiled(raw):
    return compile_condition(raw, CATALOGUE, PARAMS, "test")


def _answers(**values) -> dict:
    return {f"s.{name}": value for name, value in values.items() if value is not None}


def kleene_and(*values):
    return False if False in values else (None if None in values else True)


def kleene_or(*values):
    return True if True in values else (None if None in values else False)


@pytest.mark.parametrize("a", TRI)
@pytest.mark.parametrize("b", TRI)
@pytest.mark.parametrize("c", TRI)
def test_kleene_truth_tables(a, b, c):
    flat = _answers(a=a, b=b, c=c)
    leaves = [{"is_true": "s.a"}, {"is_true": "s.b"}, {"is_true": "s.c"}]
    assert compiled({"all": leaves[:2]}).evaluate(flat) is kleene_and(a, b)
    assert compiled({"any": leaves[:2]}).evaluate(flat) is kleene_or(a, b)
    assert compiled({"all": leaves}).evaluate(flat) is kleene_and(a, b, c)
    assert compiled({"any": leaves}).evaluate(flat) is kleene_or(a, b, c)
    assert compiled({"not": leaves[0]}).evaluate(flat) is (None if a is None else not a)
    nested = {"all": [leaves[0], {"any": [leaves[1], {"not": leaves[2]}]}]}
    negated_c = None if c is None else not c
    assert compiled(nested).evaluate(flat) is kleene_and(a, kleene_or(b, negated_c))


@pytest.mark.parametrize(
    ("raw", "present", "absent_value"),
    [
        ({"is_true": "s.a"}, ({"s.a": True}, True), None),
        ({"is_false": "s.a"}, ({"s.a": False}, True), None),
        ({"equals": {"field": "s.k", "value": "x"}}, ({"s.k": "y"}, False), None),
        ({"one_of": {"field": "s.k", "values": ["x", "y"]}}, ({"s.k": "y"}, True), None),
        ({"includes": {"field": "s.l", "value": "x"}}, ({"s.l": []}, False), None),
        ({"includes_any": {"field": "s.l", "values": ["x", "z"]}}, ({"s.l": ["z"]}, True), None),
        ({"at_least": {"field": "s.n", "param": "limit"}}, ({"s.n": 5}, True), None),
        ({"at_most": {"field": "s.n", "param": "limit"}}, ({"s.n": 6}, False), None),
        ({"below": {"field": "s.n", "param": "limit"}}, ({"s.n": 5}, False), None),
        ({"not_true": "s.a"}, ({"s.a": True}, False), True),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_every_leaf_is_unknown_when_unanswered_except_not_true(raw, present, absent_value):
    condition = compiled(raw)
    answers, expected = present
    assert condition.evaluate(answers) is expected
    assert condition.evaluate({}) is absent_value
    field = next(iter(answers))
    assert condition.unanswered({}) == ([] if absent_value is not None else [field])
    assert condition.unanswered(answers) == []


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
    assert condition.unanswered({"s.b": False}) == ["s.a", "s.n"]
    assert condition.unanswered({"s.a": False}) == []  # decided: false
    assert condition.unanswered({"s.a": True, "s.n": 5}) == []  # decided: true
    assert condition.evaluate({"s.a": True, "s.n": 4}) is None
    assert condition.unanswered({"s.a": True, "s.n": 4}) == ["s.b"]
    assert condition.evaluate({"s.a": True, "s.n": 5}) is True


def test_unanswered_names_a_field_once():
    condition = compiled(
        {"any": [{"is_true": "s.a"}, {"all": [{"is_true": "s.a"}, {"is_true": "s.b"}]}]}
    )
    assert condition.unanswered({}) == ["s.a", "s.b"]


def test_thresholds_come_only_from_parameters():
    with pytest.raises(RuleDefinitionError, match="unknown parameter"):
        compiled({"at_least": {"field": "s.n", "param": "no_such_limit"}})
    with pytest.raises(RuleDefinitionError, match="takes exactly the keys"):
        compiled({"at_least": {"field": "s.n", "value": 5}})
    condition = compile_condition(
        {"at_least": {"field": "s.n", "param": "limit"}}, CATALOGUE, {"limit": 7}, "test"
    )
    assert condition.evaluate({"s.n": 6}) is False
    assert condition.params == ("limit",)


def test_flatten_treats_a_null_answer_as_not_asked():
    assert flatten({"pain": {"intensity": 3, "onset": None}, "signs": {}}) == {"pain.intensity": 3}
