"""The JSON plan and its FHIR CarePlan agree on whether the plan may be started, for every
clinical case: a plan not to be started yet (open red-flag questions, contradictory answers,
or a professional to see first) is never an active CarePlan, and a withheld plan is on hold."""

from __future__ import annotations

import pytest

from rules import load_library, prescription_from_assessment
from schemas.fhir.resources import NOT_YET_NOTE, RecordHead, care_plan, level_texts
from tests.rules.test_clinical_cases import CASES

EVALUATOR = load_library().get()
HEAD = RecordHead(
    id="0190b0c4-0000-7000-8000-000000000001",
    created_at="2026-12-03T10:00:00Z",
    rules_version=EVALUATOR.ruleset.version,
    level_text=level_texts(EVALUATOR.ruleset.parameters["urgent_care_within_hours"].value),
)
# What each JSON state must read as in FHIR (CarePlan.status).
FHIR_STATUS = {
    None: "on-hold",
    "ready": "active",
    "pending_professional_review": "draft",
    "awaiting_safety_answers": "draft",
}


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=lambda c: c["name"])
def test_the_json_plan_and_the_care_plan_agree(case):
    assessment = EVALUATOR.assess(case["report"])
    plan = assessment["exercise_plan"]
    status = plan["status"] if plan else None
    resource = care_plan(HEAD, prescription_from_assessment(assessment), [])
    assert resource["status"] == FHIR_STATUS[status]
    notes = [note["text"] for note in resource.get("note", ())]
    not_yet = any("Not to be started yet" in text for text in notes)
    assert not_yet is (status == "awaiting_safety_answers"), (status, assessment["triage"])
    assert NOT_YET_NOTE not in notes  # said once, by the plan's own status reason
    # The JSON says "not yet" exactly when a red-flag or stop question is open or answers
    # contradict each other.
    open_stop = any(m["priority"] == "stop_stretching" for m in assessment["missing_information"])
    if plan is not None:
        assert (status == "awaiting_safety_answers") is (
            not assessment["triage"]["complete"] or open_stop
        )


def test_every_json_status_has_a_fhir_reading():
    from rules.model import PLAN_STATUSES

    assert set(FHIR_STATUS) == {None, *PLAN_STATUSES}
