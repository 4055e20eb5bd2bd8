"""Clinical cases, written as data: one parametrised test runs every case in tests/rules/cases.

Each case has a ``name`` (a full sentence saying what must happen), a ``report`` (a request body
as the API takes it) and ``expect``, a set of matchers. Every matcher can fail, and an unknown
matcher fails the case, so a typo cannot pass silently:

    level: self_care | see_professional | urgent | emergency
    stop_stretching: true | false
    complete: true | false
    red_flags: [codes]              the exact set of red flags that fired
    red_flags_include: [codes]      at least these fired
    red_flags_exclude: [codes]      none of these fired
    leading_cause: code | null      the best-ranked cause (null: no cause at all)
    causes: {code: likelihood}      these causes are listed with these likelihoods
    causes_absent: [codes]          these causes are not listed
    plan: null | ready | pending_professional_review
    plan_includes: [exercise ids]   prescribed
    plan_excludes: [exercise ids]   not prescribed
    plan_intensity: {exercise id: normal | reduced | pain_free}
    plan_sets: {exercise id: n}
    min_stretches: n                at least n of the four hamstring stretches are prescribed
    withheld_by: [rule ids]         the plan is withheld by exactly these rules
    recommendations_include / recommendations_exclude: [codes]
    missing_include / missing_exclude: [field paths]
    missing_first: field path       the first question to ask
    stop_reasons: [rule ids]        exactly these stop rules fired

Every case is also checked for the invariants that hold for any report: the escalation check
agrees with the assessment, the level is the most urgent red flag that fired, the disclaimer is
there, and the trace lists every red flag that fired.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rules import LEVELS, load_library

CASES_DIR = Path(__file__).parent / "cases"
STRETCHES = {
    "lying_hamstring_stretch",
    "seated_hamstring_stretch",
    "standing_hamstring_stretch",
    "towel_hamstring_stretch",
}


def load_cases() -> list[tuple[str, dict]]:
    cases = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            cases.append((path.name, case))
    return cases


CASES = load_cases()


def _codes(items, key="code"):
    return {item[key] for item in items}


def check_level(result, value):
    assert result["triage"]["level"] == value


def check_stop_stretching(result, value):
    assert result["triage"]["stop_stretching"] is value


def check_complete(result, value):
    assert result["triage"]["complete"] is value


def check_red_flags(result, value):
    assert _codes(result["triage"]["red_flags"]) == set(value)


def check_red_flags_include(result, value):
    assert set(value) <= _codes(result["triage"]["red_flags"])


def check_red_flags_exclude(result, value):
    assert not set(value) & _codes(result["triage"]["red_flags"])


def check_leading_cause(result, value):
    causes = result["likely_causes"]
    assert (causes[0]["code"] if causes else None) == value


def check_causes(result, value):
    listed = {c["code"]: c["likelihood"] for c in result["likely_causes"]}
    assert {code: listed.get(code) for code in value} == value


def check_causes_absent(result, value):
    assert not set(value) & _codes(result["likely_causes"])


def check_plan(result, value):
    plan = result["exercise_plan"]
    assert (plan["status"] if plan else None) == value


def _prescribed(result):
    plan = result["exercise_plan"]
    assert plan is not None, "no exercise plan"
    return {item["exercise_id"]: item for item in plan["items"]}


def check_plan_includes(result, value):
    assert set(value) <= set(_prescribed(result))


def check_plan_excludes(result, value):
    plan = result["exercise_plan"]
    prescribed = set(_prescribed(result)) if plan else set()
    assert not set(value) & prescribed


def check_plan_intensity(result, value):
    items = _prescribed(result)
    assert {k: items[k]["intensity"] for k in value} == value


def check_plan_sets(result, value):
    items = _prescribed(result)
    assert {k: items[k]["dose"].get("sets") for k in value} == value


def check_min_stretches(result, value):
    assert len(STRETCHES & set(_prescribed(result))) >= value


def check_withheld_by(result, value):
    assert result["exercise_plan"] is None
    assert [w["rule_id"] for w in result["exercise_plan_withheld"]] == value


def check_recommendations_include(result, value):
    assert set(value) <= _codes(result["recommendations"])


def check_recommendations_exclude(result, value):
    assert not set(value) & _codes(result["recommendations"])


def check_missing_include(result, value):
    assert set(value) <= _codes(result["missing_information"], "field")


def check_missing_exclude(result, value):
    assert not set(value) & _codes(result["missing_information"], "field")


def check_missing_first(result, value):
    assert result["missing_information"][0]["field"] == value


def check_stop_reasons(result, value):
    assert [r["rule_id"] for r in result["triage"]["stop_reasons"]] == value


MATCHERS = {
    name.removeprefix("check_"): function
    for name, function in globals().items()
    if name.startswith("check_")
}


def check_invariants(evaluator, report, result):
    triage = result["triage"]
    fired = triage["red_flags"]
    expected_level = max((f["level"] for f in fired), key=LEVELS.index, default="self_care")
    assert triage["level"] == expected_level
    assert result["disclaimer"]
    traced = {entry["rule_id"] for entry in result["trace"]["rules_fired"]}
    assert {f["rule_id"] for f in fired} <= traced
    screen = evaluator.escalation_check(report)
    assert screen["level"] == triage["level"]
    assert screen["stop_stretching"] == triage["stop_stretching"]
    assert screen["complete"] == triage["complete"]
    assert screen["red_flags"] == fired
    for cause in result["likely_causes"]:
        assert cause["evidence"], cause["code"]
        assert 0 < cause["score"] <= 1


@pytest.fixture(scope="module")
def evaluator():
    return load_library().get("1.0.0")


@pytest.mark.parametrize(("file", "case"), CASES, ids=[case["name"] for _, case in CASES])
def test_clinical_case(evaluator, file, case):
    assert set(case) == {"name", "report", "expect"}, f"{file}: keys of {case.get('name')!r}"
    unknown = set(case["expect"]) - set(MATCHERS)
    assert not unknown, f"{file}: unknown matcher(s) {sorted(unknown)}"
    report = case["report"]
    result = evaluator.assess(report)
    check_invariants(evaluator, report, result)
    for matcher, value in case["expect"].items():
        try:
            MATCHERS[matcher](result, value)
        except AssertionError as error:
            raise AssertionError(f"{file}: {case['name']}: {matcher} {value!r}: {error}") from None


def test_case_names_are_unique_sentences():
    names = [case["name"] for _, case in CASES]
    assert len(names) == len(set(names))
    for name in names:
        assert name[0].isupper(), name
        assert name.endswith("."), name


def test_every_red_flag_and_cause_is_covered_by_a_case(evaluator):
    ruleset = evaluator.ruleset
    flagged, caused = set(), set()
    for _, case in CASES:
        expect = case["expect"]
        flagged |= set(expect.get("red_flags", [])) | set(expect.get("red_flags_include", []))
        caused |= set(expect.get("causes", {}))
        if expect.get("leading_cause"):
            caused.add(expect["leading_cause"])
    assert {flag.code for flag in ruleset.red_flags} - flagged == set()
    assert {cause.code for cause in ruleset.causes} - caused == set()


def test_every_threshold_has_a_case_on_each_side(evaluator):
    """For each parameter a condition compares a report field with, some case sits exactly on
    the threshold and some case sits just on the other side of it."""
    ruleset = evaluator.ruleset
    comparisons = set()
    for rule in _all_rules(ruleset):
        comparisons |= _comparisons(rule.when)
    values_seen: dict[str, set] = {}
    for _, case in CASES:
        for section, body in case["report"].items():
            if isinstance(body, dict):
                for field, value in body.items():
                    if isinstance(value, int):
                        values_seen.setdefault(f"{section}.{field}", set()).add(value)
    missing = []
    for field, operator, threshold in sorted(comparisons):
        seen = values_seen.get(field, set())
        other_side = threshold - 1 if operator in (">=", "<") else threshold + 1
        if threshold not in seen or other_side not in seen:
            missing.append(f"{field} {operator} {threshold}: cases at {sorted(seen)}")
    assert missing == []


def _all_rules(ruleset):
    yield from (flag.rule for flag in ruleset.red_flags)
    yield from (rule.rule for rule in ruleset.stop_rules)
    yield from (signal.rule for cause in ruleset.causes for signal in cause.signals)
    yield from (rec.rule for rec in ruleset.recommendations if rec.rule.when)
    for kind in ("withhold", "exclude", "adjust", "review"):
        yield from (rule.rule for rule in getattr(ruleset, kind))


def _comparisons(condition):
    from rules.conditions import Compare

    found = set()
    if isinstance(condition, Compare):
        found.add((condition.field.path, condition.operator, condition.threshold))
    for child in condition.children():
        found |= _comparisons(child)
    return found
