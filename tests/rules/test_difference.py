"""The difference between two assessments (rules.difference): each part on hand-made
assessments, and the properties that hold for real ones of every loaded version."""

from __future__ import annotations

import copy
import itertools

import pytest

from rules import LEVELS, load_library
from rules.difference import assessment_difference

VERSIONS = load_library().versions


def assessment(
    level="self_care",
    *,
    stop=False,
    complete=True,
    red_flags=(),
    causes=(),
    plan_status="ready",
    plan_items=(),
    recommendations=(),
) -> dict:
    """An assessment with only the parts the difference reads (and a text that must not
    count)."""
    return {
        "rules_version": "0.0.0",
        "triage": {
            "level": level,
            "stop_stretching": stop,
            "complete": complete,
            "red_flags": [{"code": code, "message": f"about {code}"} for code in red_flags],
            "stop_reasons": [],
        },
        "likely_causes": [{"code": code, "score": 0.5} for code in causes],
        "recommendations": [{"code": code, "text": "advice"} for code in recommendations],
        "exercise_plan": None
        if plan_status is None
        else {
            "status": plan_status,
            "items": [{"exercise_id": item, "dose": {"sets": 2}} for item in plan_items],
        },
    }


NOTHING = {"added": [], "removed": []}


def test_identical_assessments_differ_in_nothing():
    one = assessment(
        "see_professional",
        stop=True,
        red_flags=["a"],
        causes=["x", "y"],
        plan_status="pending_professional_review",
        plan_items=["walk"],
        recommendations=["rest"],
    )
    assert assessment_difference(one, copy.deepcopy(one)) == {
        "level": {"from": "see_professional", "to": "see_professional", "direction": "unchanged"},
        "stop_stretching": {"from": True, "to": True},
        "time_frame": {"from": None, "to": None},
        "complete": {"from": True, "to": True},
        "red_flags": NOTHING,
        "causes": NOTHING,
        "leading_cause": {"from": "x", "to": "x"},
        "plan": {
            "from_status": "pending_professional_review",
            "to_status": "pending_professional_review",
        },
        "plan_items": NOTHING,
        "recommendations": NOTHING,
        "triage_changed": False,
        "changed": False,
    }


@pytest.mark.parametrize(
    ("before", "after", "direction"),
    [
        ("self_care", "urgent", "raised"),
        ("emergency", "see_professional", "lowered"),
        ("urgent", "urgent", "unchanged"),
    ],
)
def test_the_level_moves_towards_emergency_when_raised(before, after, direction):
    difference = assessment_difference(assessment(before), assessment(after))
    assert difference["level"] == {"from": before, "to": after, "direction": direction}
    assert difference["triage_changed"] is difference["changed"] is (before != after)


def test_every_pair_of_levels_has_the_direction_of_their_order():
    for before, after in itertools.product(LEVELS, repeat=2):
        difference = assessment_difference(assessment(before), assessment(after))
        if before == after:
            expected = "unchanged"
        else:
            expected = "raised" if LEVELS.index(after) > LEVELS.index(before) else "lowered"
        assert difference["level"]["direction"] == expected, (before, after)


def test_red_flags_added_and_removed_keep_their_order_and_change_the_triage():
    difference = assessment_difference(
        assessment("urgent", red_flags=["dvt", "infection"]),
        assessment("urgent", red_flags=["cauda_equina", "dvt", "ischaemia"]),
    )
    assert difference["red_flags"] == {
        "added": ["cauda_equina", "ischaemia"],
        "removed": ["infection"],
    }
    assert difference["level"]["direction"] == "unchanged"
    assert difference["triage_changed"] is difference["changed"] is True


def test_stop_stretching_alone_changes_the_triage():
    difference = assessment_difference(assessment(stop=False), assessment(stop=True))
    assert difference["stop_stretching"] == {"from": False, "to": True}
    assert difference["triage_changed"] is difference["changed"] is True


def test_a_new_time_frame_or_an_incomplete_triage_changes_the_triage():
    today = {"code": "today", "when": "today", "text": "Today.", "source": {}}
    weeks = {**today, "code": "within_two_weeks"}
    before, after = assessment("urgent"), assessment("urgent")
    before["triage"]["time_frame"], after["triage"]["time_frame"] = today, weeks
    difference = assessment_difference(before, after)
    assert difference["time_frame"] == {"from": "today", "to": "within_two_weeks"}
    assert difference["triage_changed"] is True
    opened = assessment("urgent")
    opened["triage"]["complete"] = False
    assert assessment_difference(assessment("urgent"), opened)["triage_changed"] is True
    assert assessment_difference(opened, assessment("urgent"))["triage_changed"] is False


def test_causes_and_the_leading_one():
    difference = assessment_difference(
        assessment(causes=["tight_hamstrings", "bakers_cyst"]),
        assessment(causes=["bakers_cyst", "meniscus_tear"]),
    )
    assert difference["causes"] == {"added": ["meniscus_tear"], "removed": ["tight_hamstrings"]}
    assert difference["leading_cause"] == {"from": "tight_hamstrings", "to": "bakers_cyst"}
    assert (difference["triage_changed"], difference["changed"]) == (False, True)


def test_a_new_leading_cause_alone_is_a_change():
    difference = assessment_difference(assessment(causes=["a", "b"]), assessment(causes=["b", "a"]))
    assert difference["causes"] == NOTHING
    assert difference["leading_cause"] == {"from": "a", "to": "b"}
    assert difference["changed"] is True


def test_no_likely_cause_is_a_null_leading_cause():
    difference = assessment_difference(assessment(causes=[]), assessment(causes=["a"]))
    assert difference["leading_cause"] == {"from": None, "to": "a"}
    assert difference["causes"] == {"added": ["a"], "removed": []}


def test_a_withheld_plan_has_no_status_and_no_items():
    difference = assessment_difference(
        assessment(plan_status="ready", plan_items=["warm_up_walk", "towel_stretch"]),
        assessment("urgent", plan_status=None),
    )
    assert difference["plan"] == {"from_status": "ready", "to_status": None}
    assert difference["plan_items"] == {
        "added": [],
        "removed": ["warm_up_walk", "towel_stretch"],
    }
    assert difference["changed"] is True


def test_plan_status_alone_is_a_change_and_doses_are_not():
    before = assessment(plan_status="ready", plan_items=["walk"])
    after = assessment(plan_status="pending_professional_review", plan_items=["walk"])
    after["exercise_plan"]["items"][0]["dose"] = {"sets": 5}
    difference = assessment_difference(before, after)
    assert difference["plan_items"] == NOTHING
    assert (difference["triage_changed"], difference["changed"]) == (False, True)
    after["exercise_plan"]["status"] = "ready"
    assert assessment_difference(before, after)["changed"] is False


def test_advice_and_completeness_are_reported_but_are_not_a_change():
    difference = assessment_difference(
        assessment(complete=False, recommendations=["rest", "warm_up"]),
        assessment(complete=True, recommendations=["warm_up", "hold_longer"]),
    )
    assert difference["recommendations"] == {"added": ["hold_longer"], "removed": ["rest"]}
    assert difference["complete"] == {"from": False, "to": True}
    assert (difference["triage_changed"], difference["changed"]) == (False, False)


def test_texts_are_not_compared():
    before = assessment("urgent", red_flags=["dvt"], causes=["a"], recommendations=["r"])
    after = copy.deepcopy(before)
    after["triage"]["red_flags"][0]["message"] = "reworded"
    after["recommendations"][0]["text"] = "reworded"
    after["rules_version"] = "9.9.9"
    assert assessment_difference(before, after)["changed"] is False


def test_the_inputs_are_left_as_they_were():
    before, after = assessment(causes=["a"]), assessment("urgent", red_flags=["x"])
    copies = copy.deepcopy((before, after))
    assessment_difference(before, after)
    assert (before, after) == copies


# -- Real assessments --------------------------------------------------------------------------

REPORTS = [
    {"pain": {"intensity": 2}},
    {
        "pain": {"intensity": 3, "quality": ["pulling"], "locations": ["behind_knee"]},
        "stretching": {"bouncing": True, "hold_seconds": 10, "warmed_up": False},
    },
    {
        "pain": {"intensity": 6, "locations": ["behind_knee", "calf"]},
        "signs": {"calf_swelling": True, "warmth": True},
        "history": {"recent_immobility": True},
    },
    {"pain": {"intensity": 8, "onset": "sudden"}, "signs": {"felt_pop": True}},
]


@pytest.fixture(
    scope="module",
    params=list(itertools.product(VERSIONS, repeat=2)),
    ids=lambda pair: f"{pair[0]}->{pair[1]}",
)
def versions(request):
    return request.param


@pytest.mark.parametrize("report", REPORTS, ids=range(len(REPORTS)))
def test_real_assessments_differ_symmetrically(versions, report):
    library = load_library()
    one = library.get(versions[0]).assess(copy.deepcopy(report))
    other = library.get(versions[1]).assess(copy.deepcopy(report))
    forth, back = assessment_difference(one, other), assessment_difference(other, one)
    opposite = {"raised": "lowered", "lowered": "raised", "unchanged": "unchanged"}
    assert back["level"]["direction"] == opposite[forth["level"]["direction"]]
    for part in ("red_flags", "causes", "plan_items", "recommendations"):
        assert back[part] == {"added": forth[part]["removed"], "removed": forth[part]["added"]}
    assert (back["changed"], back["triage_changed"]) == (forth["changed"], forth["triage_changed"])
    assert assessment_difference(one, one)["changed"] is False
    if versions[0] == versions[1]:
        assert forth["changed"] is False  # the evaluation is deterministic
