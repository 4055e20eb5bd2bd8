"""Safety invariants of the default rules (2.0.0 and later), as properties over random reports.

Each property is a class of defects the clinical review of rules 1.0.0 found, held for every
report hypothesis can build from the report vocabulary and for every clinical case:

- stop means stop: a message that says to stop stretching comes with stop_stretching, and a
  plan keeps its hamstring stretches exactly when stretching is not stopped;
- monotonicity: adding a worrying answer never lowers the level, never switches stop off, never
  brings back a withheld plan and never brings back an excluded stretch (assessment and screen);
- advice never contradicts the plan or the triage it comes with, checked from the answer itself
  and not from the rules' own declarations;
- every red flag has a time frame allowed for its level, and no text names another time frame;
- every yes/no red-flag question is asked so that "yes" is the worrying answer.

Hypothesis runs derandomised, so every run checks the same reports; the failing report is
printed in full.
"""

from __future__ import annotations

import re
from functools import cache

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rules import LEVELS, load_library, load_report_fields
from rules.conditions import Condition, IsFalse, IsTrue, Not, NotTrue
from tests.rules.test_clinical_cases import ADVICE_TOPICS, CASES, STRETCHES, _leaves

SECTIONS = load_report_fields()
FIELDS = {
    f"{section}.{name}": spec
    for section, body in SECTIONS.items()
    for name, spec in body["fields"].items()
}
DEFAULT = load_library().get()
RULESET = DEFAULT.ruleset
PROPERTY = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# The worrying direction of each answer: a boolean's worrying answer is yes, except these two
# older questions worded the other way round; a list gains a value; a number grows, except the
# hold time, which is worse when shorter. Age and the other choices have no worrying direction.
WORRYING_NO = {"pain.subsides_with_rest", "stretching.warmed_up"}
SHORTER_IS_WORSE = {"stretching.hold_seconds"}
# pain.exercise_induced_calf_pain tells two causes of calf pain apart: "yes" raises the
# arterial flag and explains calf pain that would otherwise count as a possible clot, so adding
# it may lower an urgent clot to a see-professional arterial problem (by design: a swollen or
# tender calf still counts as a clot). It has no single worrying direction.
NO_DIRECTION = {"profile.age", "pain.exercise_induced_calf_pain"}

CLOT_FLAGS = {
    "possible_deep_vein_thrombosis",
    "possible_pulmonary_embolism",
    "warm_swollen_knee_after_surgery",
}
ARTERIAL_FLAGS = {
    "possible_acute_limb_ischaemia",
    "exercise_induced_calf_pain",
    "pulsating_lump_behind_knee",
}
# Advice that tells the person to exercise now (not how to, once they may).
ENCOURAGING = {
    "gradual_progression",
    "keep_consistent",
    "strength_training",
    "balance_front_and_back_of_thigh",
}
STOP_WORDING = re.compile(r"\bstop stretching\b", re.IGNORECASE)
# How soon to get care (not how long the pain has lasted): only a time frame's text says it.
TIME_WORDING = re.compile(
    r"\b(today|tomorrow|same day|within (\w+ )?(hours?|days?|weeks?)|within a (day|week)|"
    r"straight away|immediately)\b",
    re.IGNORECASE,
)
# A question about an ability turns "no" into the worrying answer ("Can you stand on it?").
ABILITY_QUESTION = re.compile(
    r"^(?:can you|could you|are you able to)\s+(?:stand|walk|take|bear|put)"
)


def _value(spec) -> st.SearchStrategy:
    kind = spec["kind"]
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(spec["minimum"], min(spec["maximum"], 60))
    if kind == "choice":
        return st.sampled_from(spec["values"])
    return st.lists(st.sampled_from(spec["values"]), unique=True, max_size=4)


@st.composite
def reports(draw) -> dict:
    """A valid report: pain.intensity and any share of the other fields."""
    report: dict = {"pain": {"intensity": draw(st.integers(0, 10))}}
    chosen = draw(st.sets(st.sampled_from(sorted(set(FIELDS) - {"pain.intensity"}))))
    for path in sorted(chosen):
        section, name = path.split(".")
        report.setdefault(section, {})[name] = draw(_value(FIELDS[path]))
    return report


def worse(report: dict, path: str, draw) -> dict | None:
    """The report with one more worrying answer at ``path``, or None when it has none to add."""
    section, name = path.split(".")
    spec = FIELDS[path]
    current = report.get(section, {}).get(name)
    kind = spec["kind"]
    if path in NO_DIRECTION or (kind == "choice" and path != "pain.side"):
        return None
    if kind == "boolean":
        new = path not in WORRYING_NO
        if current is new:
            return None
    elif kind == "choice":  # pain.side: both legs is the more worrying answer
        if current == "both":
            return None
        new = "both"
    elif kind == "list":
        left = [v for v in spec["values"] if v not in (current or [])]
        if not left or len(current or []) >= len(spec["values"]):
            return None
        new = [*(current or []), draw(st.sampled_from(left))]
    elif path in SHORTER_IS_WORSE:
        if current is None or current == spec["minimum"]:
            return None
        new = draw(st.integers(spec["minimum"], current - 1))
    else:
        if current == spec["maximum"]:
            return None
        low = spec["minimum"] if current is None else current + 1
        new = draw(st.integers(low, min(spec["maximum"], low + 30)))
    changed = {s: dict(body) for s, body in report.items()}
    changed.setdefault(section, {})[name] = new
    return changed


def _stretches(result) -> set[str] | None:
    plan = result["exercise_plan"]
    return None if plan is None else STRETCHES & {i["exercise_id"] for i in plan["items"]}


def _rank(level: str) -> int:
    return LEVELS.index(level)


# --- stop means stop ---------------------------------------------------------------------------


def check_stop_means_stop(result) -> None:
    triage = result["triage"]
    said = [f["message"] for f in triage["red_flags"]] + [
        r["text"] for r in result["recommendations"]
    ]
    saying_stop = [text for text in said if STOP_WORDING.search(text)]
    assert not saying_stop or triage["stop_stretching"], saying_stop
    stretches = _stretches(result)
    if stretches is not None:
        # Lying and towel stretches are left out by the stop decision alone.
        kept = {"lying_hamstring_stretch", "towel_hamstring_stretch"} & stretches
        assert bool(kept) is (not triage["stop_stretching"]), (kept, triage["stop_reasons"])


@given(reports())
@PROPERTY
def test_stop_means_stop_for_random_reports(report):
    check_stop_means_stop(DEFAULT.assess(report))


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=lambda c: c["name"])
def test_stop_means_stop_for_every_clinical_case(case):
    check_stop_means_stop(DEFAULT.assess(case["report"]))


# --- monotonicity ------------------------------------------------------------------------------


@st.composite
def report_and_a_worse_one(draw) -> tuple[dict, dict, str]:
    report = draw(reports())
    path = draw(st.sampled_from(sorted(FIELDS)))
    changed = worse(report, path, draw)
    assume(changed is not None)
    return report, changed, path


@given(report_and_a_worse_one())
@PROPERTY
def test_a_worrying_answer_never_makes_the_answer_less_safe(pair):
    before_report, after_report, path = pair
    before, after = DEFAULT.assess(before_report), DEFAULT.assess(after_report)
    b, a = before["triage"], after["triage"]
    where = f"adding {path}"
    assert _rank(a["level"]) >= _rank(b["level"]), where
    assert a["stop_stretching"] or not b["stop_stretching"], where
    assert after["exercise_plan"] is None or before["exercise_plan"] is not None, where
    if before["exercise_plan"] is not None and after["exercise_plan"] is not None:
        assert _stretches(after) <= _stretches(before), where

    screen_before = DEFAULT.escalation_check(before_report)
    screen_after = DEFAULT.escalation_check(after_report)
    assert _rank(screen_after["level"]) >= _rank(screen_before["level"]), where
    assert screen_after["stop_stretching"] or not screen_before["stop_stretching"], where


# --- advice never contradicts the plan or the triage ------------------------------------------


def _open_flags(result) -> set[str]:
    """The red flags left undecided: their rules are named by the red-flag questions."""
    by_rule = {flag.rule.id: flag.code for flag in RULESET.red_flags}
    return {
        by_rule[rule]
        for entry in result["missing_information"]
        if entry["priority"] == "red_flag"
        for rule in entry["rules"]
        if rule in by_rule
    }


def contradictions_in(report, result) -> list[str]:
    """What in the answer contradicts its own advice, read from the answer and the report."""
    triage = result["triage"]
    level = triage["level"]
    fired = {flag["code"] for flag in triage["red_flags"]}
    open_flags = _open_flags(result)
    given = {rec["code"] for rec in result["recommendations"]}
    history = report.get("history", {})
    stretches = _stretches(result) or set()
    found = []
    progression = given & ADVICE_TOPICS["stretching_progression"]
    if progression and (not stretches or triage["stop_stretching"]):
        found.append(f"stretching advice {sorted(progression)} with no stretch to do")
    nsaids = given & ADVICE_TOPICS["anti_inflammatories"]
    if nsaids and (
        (fired | open_flags) & CLOT_FLAGS
        or level in ("urgent", "emergency")
        or history.get("recent_surgery") is not False
        or history.get("blood_thinners") is not False
    ):
        found.append("anti-inflammatories where a clot, surgery or a blood thinner is possible")
    pressure = given & (ADVICE_TOPICS["compression"] | ADVICE_TOPICS["elevation"])
    if pressure and (fired | open_flags) & ARTERIAL_FLAGS:
        found.append(f"{sorted(pressure)} where the arterial supply may be the problem")
    if "compression" in given and (fired | open_flags) & CLOT_FLAGS:
        found.append("compression where a clot is possible")
    if level == "emergency" and given - {"emergency_care_now"}:
        found.append(f"advice beside an emergency: {sorted(given - {'emergency_care_now'})}")
    if given & {"strength_training", "get_technique_checked"} and result["exercise_plan"] is None:
        found.append("exercise advice with no plan")
    encouraging = given & ENCOURAGING
    status = (result["exercise_plan"] or {}).get("status")
    if encouraging and status not in ("ready", "pending_professional_review"):
        found.append(f"{sorted(encouraging)} with a plan not to be started ({status})")
    frame = triage.get("time_frame")
    frame_text = frame["text"] if frame else ""
    for rec in result["recommendations"]:
        for match in TIME_WORDING.finditer(rec["text"]):
            phrase = match.group(0)
            if rec["category"] == "professional_help" and phrase.lower() not in frame_text.lower():
                found.append(f"{rec['code']} says {phrase!r} beside the time frame {frame_text!r}")
    return found


def check_presuppositions_hold(report, result) -> None:
    """Every presupposition an advice item declares holds in the same answer, evaluated from
    the answer and the report (not from the evaluator's own context)."""
    plan = result["exercise_plan"]
    flat = {
        f"{section}.{name}": value
        for section, body in report.items()
        for name, value in body.items()
    }
    flat.update(
        {
            "assessment.has_plan": plan is not None,
            "assessment.plan_exercises": [
                i["exercise_id"] for i in (plan or {"items": []})["items"]
            ],
            "assessment.stop_stretching": result["triage"]["stop_stretching"],
            "assessment.level": result["triage"]["level"],
            "assessment.red_flags": [f["code"] for f in result["triage"]["red_flags"]],
            "assessment.open_red_flags": sorted(_open_flags(result)),
        }
    )
    if plan is not None:
        flat["assessment.plan_status"] = plan["status"]
    compiled = _presupposition_conditions()
    given = {r["code"] for r in result["recommendations"]}
    for rec in RULESET.recommendations:
        if rec.output["code"] in given:
            for name in rec.rule.definition.get("presupposes", ()):
                assert compiled[name].evaluate(flat) is True, (rec.output["code"], name)


@cache
def _presupposition_conditions() -> dict[str, Condition]:
    from rules.conditions import FieldCatalogue, compile_condition
    from rules.model import PLAN_STATUSES

    fields = {
        path: {"kind": spec["kind"], "values": spec.get("values")} for path, spec in FIELDS.items()
    }
    codes = [f.code for f in RULESET.red_flags]
    fields.update(
        {
            "assessment.has_plan": {"kind": "boolean", "values": None},
            "assessment.stop_stretching": {"kind": "boolean", "values": None},
            "assessment.plan_exercises": {"kind": "list", "values": list(RULESET.exercises)},
            "assessment.plan_status": {"kind": "choice", "values": list(PLAN_STATUSES)},
            "assessment.level": {"kind": "choice", "values": list(LEVELS)},
            "assessment.red_flags": {"kind": "list", "values": codes},
            "assessment.open_red_flags": {"kind": "list", "values": codes},
        }
    )
    catalogue = FieldCatalogue(fields)
    values = {pid: p.value for pid, p in RULESET.parameters.items()}
    return {
        name: compile_condition(p["when"], catalogue, values, name)
        for name, p in RULESET.presuppositions.items()
    }


def _check_advice(report) -> None:
    result = DEFAULT.assess(report)
    assert contradictions_in(report, result) == []
    check_presuppositions_hold(report, result)


@given(reports())
@PROPERTY
def test_advice_never_contradicts_its_answer_for_random_reports(report):
    _check_advice(report)


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=lambda c: c["name"])
def test_advice_never_contradicts_its_answer_in_any_clinical_case(case):
    _check_advice(case["report"])


def test_the_contradiction_check_can_fail():
    """The check above finds a contradiction when there is one (so that it can fail)."""
    report = {"pain": {"intensity": 5}, "signs": {"calf_swelling": True}}
    result = DEFAULT.assess(report)
    doctored = {
        **result,
        "recommendations": [
            *result["recommendations"],
            {"code": "otc_pain_relief", "category": "medication", "text": "Take ibuprofen."},
            {"code": "gradual_progression", "category": "prevention", "text": "Stretch more."},
            {"code": "x", "category": "professional_help", "text": "See a GP within 24 hours."},
        ],
    }
    assert result["triage"]["time_frame"]["code"] == "today"
    found = contradictions_in(report, doctored)
    assert any("anti-inflammatories" in f for f in found)
    assert any("stretching advice" in f for f in found)
    assert any("'within 24 hours' beside the time frame" in f for f in found)


# --- time frames and wording -------------------------------------------------------------------


def test_every_red_flag_has_a_time_frame_for_its_level_and_says_no_time_itself():
    assert RULESET.time_frames, "rules 2.0.0 and later give every red flag a time frame"
    for flag in RULESET.red_flags:
        assert flag.time_frame is not None, flag.rule.id
        assert flag.level in flag.time_frame.levels, flag.rule.id
        assert not TIME_WORDING.search(flag.output["message"]), (
            f"{flag.rule.id}: a red flag's message leaves the timing to its time frame"
        )


def _nodes(condition: Condition):
    yield condition
    for child in condition.children():
        yield from _nodes(child)


def test_every_yes_no_red_flag_question_is_asked_so_that_yes_is_the_worrying_answer():
    asked = RULESET.questions
    raising: set[str] = set()  # asked yes/no questions whose "yes" fires a red flag
    for flag in RULESET.red_flags:
        assert not any(isinstance(n, Not) for n in _nodes(flag.rule.when)), (
            f"{flag.rule.id}: a red flag never fires on a negation"
        )
    for flag in RULESET.red_flags:
        for leaf in _leaves(flag.rule.when):
            if isinstance(leaf, IsTrue | IsFalse | NotTrue) and leaf.field.path in asked:
                # No red flag fires on a "no"; not_true (a "yes" that explains a symptom away,
                # unanswered counting as no) is allowed for a question another flag reads as yes.
                assert not isinstance(leaf, IsFalse), (
                    f"{flag.rule.id} fires on a no to {leaf.field.path}: the worrying answer to "
                    "a red-flag question is yes"
                )
                if isinstance(leaf, IsTrue):
                    raising.add(leaf.field.path)
                question = asked[leaf.field.path].question
                assert question.endswith("?"), question
                assert "answer true" not in question.lower(), question
                assert not ABILITY_QUESTION.search(question.lower()), question
    read_as_not_true = {
        leaf.field.path
        for flag in RULESET.red_flags
        for leaf in _leaves(flag.rule.when)
        if isinstance(leaf, NotTrue)
    }
    assert read_as_not_true <= raising


def test_the_wording_check_catches_the_question_rules_1_0_0_asked(library):
    """Rules 1.0.0 asked "Can you stand on the leg ...? (Answer true if you cannot.)", which a
    Yes/No form turns into self care for someone who cannot walk; it stays in 1.0.0 only."""
    old = library.get("1.0.0").ruleset.questions["function.unable_to_bear_weight"].question
    assert ABILITY_QUESTION.search(old.lower())
    new = RULESET.questions["function.unable_to_bear_weight"].question
    assert not ABILITY_QUESTION.search(new.lower())
