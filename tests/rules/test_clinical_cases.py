"""Clinical cases, written as data: one parametrised test runs every case in tests/rules/cases.

A case file is a YAML list of cases. Each case has exactly three keys:

    name:    a full sentence saying what must happen; it is the test id
    report:  a request body as the API takes it (pain.intensity always present)
    expect:  matchers, each checking one part of the assessment

Matchers (partial: say only what the case is about):

    level: self_care | see_professional | urgent | emergency
    stop_stretching: true | false
    complete: true | false          every red-flag question is decided
    red_flags: [codes]              exactly these red flags fired ([] for none)
    red_flags_include: [codes]      at least these fired
    red_flags_exclude: [codes]      none of these fired
    leading_cause: code | null      the best-ranked cause (null: no cause listed)
    causes: {code: likelihood}      these causes are listed, with these likelihoods
    causes_absent: [codes]          these causes are not listed
    no_causes: true                 no cause is listed at all
    plan: null | ready | pending_professional_review | awaiting_safety_answers
    plan_includes: [exercise ids]   prescribed
    plan_excludes: [exercise ids]   not prescribed (also holds when there is no plan)
    plan_intensity: {exercise id: normal | reduced | pain_free}
    plan_sets: {exercise id: n}     the dose of sets
    min_stretches: n                at least n of the four hamstring stretches are prescribed
    withheld_by: [rule ids]         the plan is withheld by exactly these rules, in this order
    stop_reasons: [rule ids]        exactly these stop rules fired, in this order
    recommendations_include / recommendations_exclude: [advice codes]
    missing_include / missing_exclude: [field paths]    in missing_information or not
    missing_first: field path       the first question to ask
    time_frame: code | null         the triage's time frame (null: no red flag fired)
    no_advice_about: [topics]       no advice on these topics (ADVICE_TOPICS: anti_inflammatories,
                                    compression, elevation, stretching_progression, ice), so
                                    that reviewers who do not know the advice codes can say it

Every matcher can fail: an unknown matcher, an unknown code, field or rule id, a value of the
wrong kind, or an empty list (which could not fail) makes the case fail, so a typo cannot pass
silently. The report is checked against the report vocabulary the same way.

Every case is also checked for what must hold for any report (``check_invariants``): the
escalation check agrees with the assessment (level, escalate, stop_stretching, complete, red
flags and unanswered red-flag questions); the level is the most urgent red flag that fired; an
urgent or emergency level stops stretching and withholds the plan; the disclaimer is there; the
trace lists every red flag and stop rule that fired; each listed cause has evidence and the
likelihood its score gives.

Three coverage tests make the cases keep up with the rules: every red flag fires in some case
and is asserted absent in a near miss; every cause leads some case with the best likelihood its
signals allow, and is asserted absent in another; every threshold a condition compares with has
cases on both sides of it.
"""

from __future__ import annotations

from typing import Any

import pytest

from rules import LEVELS, load_report_fields
from rules.conditions import All, Compare, Condition, flatten
from tests.rules.clinical_cases import load_cases

STRETCHES = {
    "lying_hamstring_stretch",
    "seated_hamstring_stretch",
    "standing_hamstring_stretch",
    "towel_hamstring_stretch",
}
LIKELIHOODS = ("high", "moderate", "low")
PLAN_STATUSES = (None, "ready", "pending_professional_review", "awaiting_safety_answers")
# Advice topics in words a reviewer uses, with the advice codes that speak of each.
ADVICE_TOPICS = {
    "anti_inflammatories": {"otc_pain_relief", "otc_pain_relief_safety"},
    "compression": {"compression"},
    "elevation": {"elevation"},
    "ice": {"ice", "ice_protect_skin"},
    "stretching_progression": {
        "gradual_progression",
        "keep_consistent",
        "stretch_the_thigh_not_the_knee",
        "hold_longer",
        "no_bouncing",
        "warm_up_before_stretching",
        "stop_forcing",
        "soften_the_knee",
        "stop_if_sharp_or_intense",
    },
}
ITEM_INTENSITIES = ("normal", "reduced", "pain_free")


CASES = load_cases()


def _case_id(case: Any) -> str:
    return case.get("name", "<a case without a name>") if isinstance(case, dict) else repr(case)


# --- matchers ---------------------------------------------------------------------------------
# Each matcher is (kind of value, check). The kind is validated against the loaded rule set
# before the check runs.


def _codes(items, key="code") -> set[str]:
    return {item[key] for item in items}


def _prescribed(result) -> dict[str, dict]:
    plan = result["exercise_plan"]
    assert plan is not None, f"no exercise plan (withheld: {result['exercise_plan_withheld']})"
    return {item["exercise_id"]: item for item in plan["items"]}


def check_level(result, value):
    assert result["triage"]["level"] == value


def check_stop_stretching(result, value):
    assert result["triage"]["stop_stretching"] is value, result["triage"]["stop_reasons"]


def check_complete(result, value):
    assert result["triage"]["complete"] is value


def check_red_flags(result, value):
    assert _codes(result["triage"]["red_flags"]) == set(value)


def check_red_flags_include(result, value):
    fired = _codes(result["triage"]["red_flags"])
    assert set(value) <= fired, f"fired: {sorted(fired)}"


def check_red_flags_exclude(result, value):
    fired = _codes(result["triage"]["red_flags"])
    assert not set(value) & fired, f"fired: {sorted(fired)}"


def _ranking(result) -> list[tuple[str, str, float]]:
    return [(c["code"], c["likelihood"], c["score"]) for c in result["likely_causes"]]


def check_leading_cause(result, value):
    causes = result["likely_causes"]
    assert (causes[0]["code"] if causes else None) == value, _ranking(result)


def check_causes(result, value):
    listed = {c["code"]: c["likelihood"] for c in result["likely_causes"]}
    assert {code: listed.get(code) for code in value} == value, _ranking(result)


def check_causes_absent(result, value):
    assert not set(value) & _codes(result["likely_causes"]), _ranking(result)


def check_no_causes(result, value):
    assert result["likely_causes"] == [], _ranking(result)


def check_plan(result, value):
    plan = result["exercise_plan"]
    assert (plan["status"] if plan else None) == value, result["exercise_plan_withheld"]


def check_plan_includes(result, value):
    prescribed = set(_prescribed(result))
    assert set(value) <= prescribed, f"prescribed: {sorted(prescribed)}"


def check_plan_excludes(result, value):
    prescribed = set(_prescribed(result)) if result["exercise_plan"] else set()
    assert not set(value) & prescribed, f"prescribed: {sorted(prescribed)}"


def check_plan_intensity(result, value):
    items = _prescribed(result)
    missing = set(value) - set(items)
    assert not missing, f"not prescribed: {sorted(missing)}"
    assert {k: items[k]["intensity"] for k in value} == value


def check_plan_sets(result, value):
    items = _prescribed(result)
    missing = set(value) - set(items)
    assert not missing, f"not prescribed: {sorted(missing)}"
    assert {k: items[k]["dose"].get("sets") for k in value} == value


def check_min_stretches(result, value):
    stretches = STRETCHES & set(_prescribed(result))
    assert len(stretches) >= value, f"stretches: {sorted(stretches)}"


def check_withheld_by(result, value):
    assert result["exercise_plan"] is None, "a plan was given"
    assert [w["rule_id"] for w in result["exercise_plan_withheld"]] == value


def check_stop_reasons(result, value):
    assert [r["rule_id"] for r in result["triage"]["stop_reasons"]] == value


def check_recommendations_include(result, value):
    given = _codes(result["recommendations"])
    assert set(value) <= given, f"given: {sorted(given)}"


def check_recommendations_exclude(result, value):
    given = _codes(result["recommendations"])
    assert not set(value) & given, f"given: {sorted(given)}"


def _missing(result) -> list[str]:
    return [entry["field"] for entry in result["missing_information"]]


def check_missing_include(result, value):
    assert set(value) <= set(_missing(result)), _missing(result)


def check_missing_exclude(result, value):
    assert not set(value) & set(_missing(result)), _missing(result)


def check_missing_first(result, value):
    missing = _missing(result)
    assert missing, "nothing is missing"
    assert missing[0] == value, missing


def check_time_frame(result, value):
    frame = result["triage"].get("time_frame")
    assert (frame["code"] if frame else None) == value, result["triage"]["red_flags"]


def check_no_advice_about(result, value):
    given = _codes(result["recommendations"])
    unwanted = set().union(*(ADVICE_TOPICS[topic] for topic in value))
    assert not given & unwanted, f"given: {sorted(given & unwanted)}"


MATCHERS = {
    "level": ("level", check_level),
    "stop_stretching": ("boolean", check_stop_stretching),
    "complete": ("boolean", check_complete),
    "red_flags": ("red_flag_codes_or_none", check_red_flags),
    "red_flags_include": ("red_flag_codes", check_red_flags_include),
    "red_flags_exclude": ("red_flag_codes", check_red_flags_exclude),
    "leading_cause": ("cause_code_or_null", check_leading_cause),
    "causes": ("cause_likelihoods", check_causes),
    "causes_absent": ("cause_codes", check_causes_absent),
    "no_causes": ("true", check_no_causes),
    "plan": ("plan_status", check_plan),
    "plan_includes": ("exercise_ids", check_plan_includes),
    "plan_excludes": ("exercise_ids", check_plan_excludes),
    "plan_intensity": ("exercise_intensities", check_plan_intensity),
    "plan_sets": ("exercise_sets", check_plan_sets),
    "min_stretches": ("stretch_count", check_min_stretches),
    "withheld_by": ("withhold_rule_ids", check_withheld_by),
    "stop_reasons": ("stop_rule_ids_or_none", check_stop_reasons),
    "recommendations_include": ("recommendation_codes", check_recommendations_include),
    "recommendations_exclude": ("recommendation_codes", check_recommendations_exclude),
    "missing_include": ("field_paths", check_missing_include),
    "missing_exclude": ("field_paths", check_missing_exclude),
    "missing_first": ("field_path", check_missing_first),
    "time_frame": ("time_frame_or_null", check_time_frame),
    "no_advice_about": ("advice_topics", check_no_advice_about),
}


# --- validation of the case itself -----------------------------------------------------------

REPORT_SECTIONS = load_report_fields()
FIELD_PATHS = {
    f"{section}.{name}" for section, body in REPORT_SECTIONS.items() for name in body["fields"]
}


def vocabulary(ruleset) -> dict[str, set]:
    return {
        "red_flag": {flag.code for flag in ruleset.red_flags},
        "cause": {cause.code for cause in ruleset.causes},
        "exercise": set(ruleset.exercises),
        "recommendation": {rec.output["code"] for rec in ruleset.recommendations},
        "withhold": {rule.rule.id for rule in ruleset.withhold},
        "stop": {rule.rule.id for rule in ruleset.stop_rules},
        "field": FIELD_PATHS,
        "time_frame": {frame.id for frame in ruleset.time_frames},
        "advice_topic": set(ADVICE_TOPICS),
    }


def _known_list(value, known: set, what: str, allow_empty: bool = False) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [f"expected a list of {what}s, got {value!r}"]
    if not value and not allow_empty:
        return ["an empty list cannot fail; say what to check"]
    problems = [f"unknown {what} {v!r}" for v in value if v not in known]
    if len(set(value)) != len(value):
        problems.append(f"repeated {what}")
    return problems


def _known_mapping(value, known: set, what: str, allowed) -> list[str]:
    if not isinstance(value, dict) or not value:
        return [f"expected a non-empty mapping of {what} to a value, got {value!r}"]
    problems = [f"unknown {what} {k!r}" for k in value if k not in known]
    problems += [f"{k}: {v!r} is not allowed" for k, v in value.items() if not allowed(v)]
    return problems


def validate_value(kind: str, value: Any, vocab: dict[str, set]) -> list[str]:
    """What is wrong with a matcher's value; empty when it is well-formed and can fail."""
    if kind == "level":
        return [] if value in LEVELS else [f"{value!r} is not a level"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"expected true or false, got {value!r}"]
    if kind == "true":
        return [] if value is True else ["only 'true' can fail here"]
    if kind == "plan_status":
        return [] if value in PLAN_STATUSES else [f"{value!r} is not a plan status"]
    if kind == "cause_code_or_null":
        return [] if value is None or value in vocab["cause"] else [f"unknown cause {value!r}"]
    if kind == "time_frame_or_null":
        ok = value is None or value in vocab["time_frame"]
        return [] if ok else [f"unknown time frame {value!r}"]
    if kind == "field_path":
        return [] if value in vocab["field"] else [f"unknown field {value!r}"]
    if kind == "stretch_count":
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4
        return [] if ok else [f"expected 1 to 4 stretches, got {value!r}"]
    if kind == "cause_likelihoods":
        return _known_mapping(value, vocab["cause"], "cause", lambda v: v in LIKELIHOODS)
    if kind == "exercise_intensities":
        return _known_mapping(value, vocab["exercise"], "exercise", ITEM_INTENSITIES.__contains__)
    if kind == "exercise_sets":
        return _known_mapping(
            value, vocab["exercise"], "exercise", lambda v: isinstance(v, int) and v > 0
        )
    lists = {
        "red_flag_codes": ("red_flag", False),
        "red_flag_codes_or_none": ("red_flag", True),
        "cause_codes": ("cause", False),
        "exercise_ids": ("exercise", False),
        "recommendation_codes": ("recommendation", False),
        "withhold_rule_ids": ("withhold", False),
        "stop_rule_ids_or_none": ("stop", True),
        "field_paths": ("field", False),
        "advice_topics": ("advice_topic", False),
    }
    what, allow_empty = lists[kind]
    return _known_list(value, vocab[what], what.replace("_", " "), allow_empty)


def validate_report(report: Any) -> list[str]:
    """What makes ``report`` something the API would refuse; empty when it is a valid body."""
    if not isinstance(report, dict):
        return [f"a report is a mapping, got {report!r}"]
    problems = []
    if not isinstance(report.get("pain"), dict) or "intensity" not in report["pain"]:
        problems.append("pain.intensity is required")
    for section, body in report.items():
        spec_section = REPORT_SECTIONS.get(section)
        if spec_section is None or not isinstance(body, dict):
            problems.append(f"unknown or malformed section {section!r}")
            continue
        for name, value in body.items():
            spec = spec_section["fields"].get(name)
            path = f"{section}.{name}"
            if spec is None:
                problems.append(f"unknown field {path}")
            elif spec["kind"] == "boolean" and not isinstance(value, bool):
                problems.append(f"{path} must be true or false")
            elif spec["kind"] == "integer" and (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not spec["minimum"] <= value <= spec["maximum"]
            ):
                problems.append(f"{path} must be a whole number in its range")
            elif spec["kind"] == "choice" and value not in spec["values"]:
                problems.append(f"{path}: {value!r} is not one of its values")
            elif spec["kind"] == "list" and (
                not isinstance(value, list)
                or len(set(value)) != len(value)
                or not set(value) <= set(spec["values"])
            ):
                problems.append(f"{path}: {value!r} is not a list of distinct known values")
    return problems


def validate_case(case: Any, vocab: dict[str, set]) -> list[str]:
    if not isinstance(case, dict) or set(case) != {"name", "report", "expect"}:
        keys = sorted(case) if isinstance(case, dict) else case
        return [f"a case has exactly the keys name, report and expect; got {keys}"]
    problems = validate_report(case["report"])
    expect = case["expect"]
    if not isinstance(expect, dict) or not expect:
        return [*problems, "expect must name at least one matcher"]
    for matcher, value in expect.items():
        if matcher not in MATCHERS:
            problems.append(f"unknown matcher {matcher!r} (known: {', '.join(sorted(MATCHERS))})")
            continue
        kind, _ = MATCHERS[matcher]
        problems += [f"{matcher}: {p}" for p in validate_value(kind, value, vocab)]
    return problems


# --- invariants -------------------------------------------------------------------------------


def check_invariants(evaluator, report, result) -> None:
    """What holds for every report, whatever the case is about."""
    ruleset = evaluator.ruleset
    triage = result["triage"]
    fired = triage["red_flags"]
    ranks = [LEVELS.index(flag["level"]) for flag in fired]
    assert ranks == sorted(ranks, reverse=True), "red flags are listed most urgent first"
    assert triage["level"] == (fired[0]["level"] if fired else LEVELS[0]), (
        "the level is the most urgent red flag that fired"
    )
    if triage["level"] in ("urgent", "emergency"):
        assert triage["stop_stretching"] is True
        assert result["exercise_plan"] is None
    assert (result["exercise_plan"] is None) == bool(result["exercise_plan_withheld"])
    assert result["disclaimer"] == ruleset.disclaimer
    assert result["disclaimer"].strip()

    traced = {entry["rule_id"] for entry in result["trace"]["rules_fired"]}
    assert {flag["rule_id"] for flag in fired} <= traced
    assert {stop["rule_id"] for stop in triage["stop_reasons"]} <= traced
    assert triage["stop_stretching"] is bool(triage["stop_reasons"])

    red_flag_questions = [
        entry["field"] for entry in result["missing_information"] if entry["priority"] == "red_flag"
    ]
    contradictions = [
        entry["field"]
        for entry in result["missing_information"]
        if entry["priority"] == "contradiction"
    ]
    assert triage["complete"] is (not red_flag_questions and not contradictions)

    screen = evaluator.escalation_check(report)
    assert screen["level"] == triage["level"]
    assert screen["escalate"] is (triage["level"] != LEVELS[0])
    assert screen["stop_stretching"] is triage["stop_stretching"]
    assert screen["complete"] is triage["complete"]
    assert screen["red_flags"] == fired
    assert screen["unanswered_red_flag_questions"] == red_flag_questions
    assert screen.get("contradictory_answers", []) == contradictions
    assert screen.get("time_frame") == triage.get("time_frame")

    high = ruleset.parameters["likelihood_high_min"].value
    moderate = ruleset.parameters["likelihood_moderate_min"].value
    scores = [cause["score"] for cause in result["likely_causes"]]
    assert scores == sorted(scores, reverse=True), "causes are ranked by score"
    for cause in result["likely_causes"]:
        assert cause["evidence"], cause["code"]
        assert 0 < cause["score"] <= 1
        band = (
            "high"
            if cause["score"] >= high
            else "moderate"
            if cause["score"] >= moderate
            else "low"
        )
        assert cause["likelihood"] == band, cause["code"]


# --- the cases --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vocab(evaluator):
    return vocabulary(evaluator.ruleset)


@pytest.mark.parametrize(
    ("file", "case"), [pytest.param(file, case, id=_case_id(case)) for file, case in CASES]
)
def test_clinical_case(evaluator, vocab, file, case):
    problems = validate_case(case, vocab)
    if problems:
        pytest.fail(f"{file}: {_case_id(case)}: " + "; ".join(problems), pytrace=False)
    report = case["report"]
    result = evaluator.assess(report)
    check_invariants(evaluator, report, result)
    failures = []
    for matcher, value in case["expect"].items():
        try:
            MATCHERS[matcher][1](result, value)
        except AssertionError as error:
            failures.append(f"{matcher} {value!r}: {error}")
    if failures:
        pytest.fail(f"{file}: {case['name']}\n  " + "\n  ".join(failures), pytrace=False)


def test_cases_are_named_by_unique_full_sentences():
    names = [_case_id(case) for _, case in CASES]
    repeated = sorted({name for name in names if names.count(name) > 1})
    assert not repeated, f"case names must be unique: {repeated}"
    not_sentences = [n for n in names if not (n[:1].isupper() and n.endswith(".") and " " in n)]
    assert not not_sentences, f"case names must be full sentences: {not_sentences}"


def test_the_validation_refuses_what_could_pass_silently(vocab):
    """The guard rails of the runner itself: each of these cases must be refused."""
    report = {"pain": {"intensity": 2}}
    refused = [
        {"name": "n", "report": report, "expect": {"levle": "self_care"}},
        {"name": "n", "report": report, "expect": {"red_flags_exclude": ["possible_dvt"]}},
        {"name": "n", "report": report, "expect": {"red_flags_exclude": []}},
        {"name": "n", "report": report, "expect": {"causes": {"tight_hamstrings": "likely"}}},
        {"name": "n", "report": report, "expect": {"plan": "pending"}},
        {"name": "n", "report": report, "expect": {"no_causes": False}},
        {"name": "n", "report": report, "expect": {"min_stretches": 0}},
        {"name": "n", "report": report, "expect": {"missing_first": "signs.saddle"}},
        {"name": "n", "report": report, "expect": {}},
        {"name": "n", "report": report, "expect": {"level": "self_care"}, "xfail": "x"},
        {"name": "n", "report": {"pain": {}}, "expect": {"level": "self_care"}},
        {"name": "n", "report": {"pain": {"intensity": 11}}, "expect": {"level": "self_care"}},
        {
            "name": "n",
            "report": {"pain": {"intensity": 2, "sharp": True}},
            "expect": {"level": "x"},
        },
        {
            "name": "n",
            "report": {"pain": {"intensity": 2, "onset": "slow"}},
            "expect": {"complete": 1},
        },
    ]
    for case in refused:
        assert validate_case(case, vocab), case
    accepted = {"name": "n", "report": report, "expect": {"red_flags": [], "no_causes": True}}
    assert validate_case(accepted, vocab) == []


MINIMAL = {"pain": {"intensity": 2}}  # self care, incomplete, no cause, the whole plan
EMERGENCY_NERVE = {
    "pain": {"intensity": 2, "radiates_down_leg": True},
    "signs": {"saddle_numbness": True},
}
CONTRADICTIONS = [  # (matcher, report, a value the assessment of that report contradicts)
    ("level", MINIMAL, "urgent"),
    ("stop_stretching", MINIMAL, True),
    ("complete", MINIMAL, True),
    ("red_flags", MINIMAL, ["lump_behind_knee"]),
    ("red_flags_include", MINIMAL, ["lump_behind_knee"]),
    ("red_flags_exclude", EMERGENCY_NERVE, ["possible_cauda_equina_syndrome"]),
    ("leading_cause", MINIMAL, "tight_hamstrings"),
    ("causes", MINIMAL, {"tight_hamstrings": "high"}),
    ("causes_absent", EMERGENCY_NERVE, ["sciatic_nerve_irritation"]),
    ("no_causes", EMERGENCY_NERVE, True),
    ("plan", MINIMAL, None),
    ("plan_includes", EMERGENCY_NERVE, ["calf_raise"]),
    ("plan_excludes", MINIMAL, ["lying_hamstring_stretch"]),
    ("plan_intensity", MINIMAL, {"lying_hamstring_stretch": "reduced"}),
    ("plan_sets", MINIMAL, {"hamstring_curl": 3}),
    ("min_stretches", EMERGENCY_NERVE, 1),
    ("withheld_by", MINIMAL, ["plan.withhold.intense_pain"]),
    ("stop_reasons", MINIMAL, ["stop.sharp_pain"]),
    ("recommendations_include", MINIMAL, ["emergency_care_now"]),
    ("recommendations_exclude", MINIMAL, ["stop_if_sharp_or_intense"]),
    ("missing_include", MINIMAL, ["stretching.hold_seconds"]),
    ("missing_exclude", MINIMAL, ["signs.saddle_numbness"]),
    ("missing_first", MINIMAL, "signs.foot_cold_or_pale"),
    ("time_frame", EMERGENCY_NERVE, "today"),
    (
        "no_advice_about",
        {"pain": {"intensity": 2, "quality": ["pulling"]}},
        ["stretching_progression"],
    ),
]


def test_every_matcher_is_exercised_by_a_contradiction():
    assert sorted(name for name, _, _ in CONTRADICTIONS) == sorted(MATCHERS)


@pytest.mark.parametrize(
    ("matcher", "report", "value"), CONTRADICTIONS, ids=[c[0] for c in CONTRADICTIONS]
)
def test_every_matcher_can_fail(evaluator, vocab, matcher, report, value):
    assert validate_value(MATCHERS[matcher][0], value, vocab) == []
    with pytest.raises(AssertionError):
        MATCHERS[matcher][1](evaluator.assess(report), value)


# --- coverage: the cases keep up with the rules ----------------------------------------------


def _leaves(condition: Condition):
    children = condition.children()
    if not children:
        yield condition
    for child in children:
        yield from _leaves(child)


def _has_conjunction(condition: Condition) -> bool:
    return isinstance(condition, All) or any(_has_conjunction(c) for c in condition.children())


def _asserted_absent(expect: dict, code: str) -> bool:
    exact = expect.get("red_flags")
    return code in expect.get("red_flags_exclude", []) or (exact is not None and code not in exact)


def _asserted_fired(expect: dict, code: str) -> bool:
    return code in expect.get("red_flags", []) or code in expect.get("red_flags_include", [])


def test_every_red_flag_fires_in_a_case_and_is_absent_in_a_near_miss(evaluator):
    """A near miss answers the flag's questions so that it does not fire, and says so; for a
    flag that needs several signs together, the near miss has some of them but not all."""
    no_firing, no_near_miss = [], []
    for flag in evaluator.ruleset.red_flags:
        condition = flag.rule.when
        if not any(_asserted_fired(case["expect"], flag.code) for _, case in CASES):
            no_firing.append(flag.code)
        near_misses = []
        for _, case in CASES:
            if not _asserted_absent(case["expect"], flag.code):
                continue
            flat = flatten(case["report"])
            if condition.evaluate(flat) is not False:
                continue
            partial = any(leaf.evaluate(flat) is True for leaf in _leaves(condition))
            if partial or not _has_conjunction(condition):
                near_misses.append(case["name"])
        if not near_misses:
            no_near_miss.append(flag.code)
    assert not no_firing, f"red flags no case fires: {no_firing}"
    assert not no_near_miss, f"red flags without a near-miss case: {no_near_miss}"


def best_likelihood(evaluator, cause) -> str:
    """The likelihood a cause reaches with every one of its signals present."""
    doubt = 1.0
    for signal in cause.signals:
        doubt *= 1.0 - signal.weight
    parameters = evaluator.ruleset.parameters
    score = round(1.0 - doubt, 4)
    if score >= parameters["likelihood_high_min"].value:
        return "high"
    return "moderate" if score >= parameters["likelihood_moderate_min"].value else "low"


def test_every_cause_leads_a_case_at_its_best_and_is_absent_in_another(evaluator):
    not_leading, not_absent = [], []
    for cause in evaluator.ruleset.causes:
        best = best_likelihood(evaluator, cause)
        leads = any(
            case["expect"].get("leading_cause") == cause.code
            and case["expect"].get("causes", {}).get(cause.code) == best
            for _, case in CASES
        )
        if not leads:
            not_leading.append(f"{cause.code} (leading, {best})")
        absent = any(cause.code in case["expect"].get("causes_absent", []) for _, case in CASES)
        if not absent:
            not_absent.append(cause.code)
    assert not not_leading, f"causes no case shows leading: {not_leading}"
    assert not not_absent, f"causes no case shows absent: {not_absent}"


def _comparisons(condition: Condition):
    if isinstance(condition, Compare):
        yield condition
    for child in condition.children():
        yield from _comparisons(child)


def _all_rules(ruleset):
    yield from (flag.rule for flag in ruleset.red_flags)
    yield from (rule.rule for rule in ruleset.stop_rules)
    yield from (signal.rule for cause in ruleset.causes for signal in cause.signals)
    yield from (rec.rule for rec in ruleset.recommendations if rec.rule.when)
    for kind in ("withhold", "exclude", "adjust", "review"):
        yield from (rule.rule for rule in getattr(ruleset, kind))


def test_every_threshold_has_cases_on_both_sides(evaluator):
    """For every comparison of a report field with a parameter, some case sits on the side where
    it holds at the threshold itself and some case one step to the other side."""
    seen: dict[str, set[int]] = {}
    for _, case in CASES:
        for path, value in flatten(case["report"]).items():
            if isinstance(value, int) and not isinstance(value, bool):
                seen.setdefault(path, set()).add(value)
    holds = {">=": 0, "<=": 0, "<": -1, ">": 1}
    fails = {">=": -1, "<=": 1, "<": 0, ">": 0}
    missing = []
    for rule in _all_rules(evaluator.ruleset):
        for compare in _comparisons(rule.when):
            path, threshold = compare.field.path, compare.threshold
            needed = {threshold + holds[compare.operator], threshold + fails[compare.operator]}
            if not needed <= seen.get(path, set()):
                missing.append(
                    f"{rule.id}: {path} {compare.operator} {compare.params[0]} ({threshold}) "
                    f"needs cases at {sorted(needed)}, has {sorted(seen.get(path, ()))}"
                )
    assert not missing, "\n".join(missing)
