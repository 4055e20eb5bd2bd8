"""Whether a plan is exactly the one read from its assessment's answer, by its JSON bytes (0008
dropped the copies of such plans)."""

from __future__ import annotations

import copy

import pytest

from rules import load_library, prescription_from_assessment
from service.examples import SELF_CARE_TECHNIQUE
from service.storage.answers import is_plan_of


@pytest.fixture(scope="module")
def assessment() -> dict:
    return load_library().get(None).assess(dict(SELF_CARE_TECHNIQUE))


def test_a_plan_made_from_its_assessment_is_recognised(assessment):
    assert is_plan_of(prescription_from_assessment(assessment), assessment)


def test_an_equal_plan_of_other_objects_is_recognised_by_its_bytes(assessment):
    assert is_plan_of(copy.deepcopy(prescription_from_assessment(assessment)), assessment)


@pytest.mark.parametrize(
    "change",
    [
        lambda plan: plan.update(disclaimer=plan["disclaimer"] + " "),
        lambda plan: plan.update(exercise_plan=None),
        lambda plan: plan.pop("trace"),
        lambda plan: plan.update(extra=1),
    ],
    ids=["a changed value", "a plan taken away", "a field missing", "a field more"],
)
def test_a_plan_that_differs_in_any_way_is_not_its_assessments(assessment, change):
    plan = prescription_from_assessment(assessment)
    change(plan)

    assert not is_plan_of(plan, assessment)


def test_the_same_fields_in_another_order_are_not_the_same_plan(assessment):
    plan = prescription_from_assessment(assessment)
    reordered = dict(reversed(plan.items()))

    assert not is_plan_of(reordered, assessment)


def test_an_answer_that_is_no_assessment_has_no_plan():
    assert not is_plan_of({"rules_version": "2.0.0"}, {"level": "self_care"})
