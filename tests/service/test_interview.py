"""POST /v1/interview/next: the adaptive interview over HTTP (its logic is held by
tests/rules/test_interview.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service import examples
from tests.conftest import Gunicorn, gunicorn_server

EMERGENCY_NO = {
    name: False
    for name in (
        "saddle_numbness",
        "bladder_or_bowel_changes",
        "foot_cold_or_pale",
        "breathlessness",
        "chest_pain",
        "coughing_blood",
        "pain_out_of_proportion",
        "calf_tense",
    )
}


def test_the_first_question_is_the_emergency_checklist_and_the_screen_is_the_escalation_check(
    client,
):
    report = {"pain": {"intensity": 4}}
    response = client.post("/v1/interview/next", json=report)
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["should_stop"] is False
    assert answer["stop_reason"] is None
    assert answer["question"]["checklist"] == "checklist.emergency_signs"
    assert answer["question"]["kind"] == "checklist"
    assert answer["screen"] == client.post("/v1/escalation-check", json=report).get_json()
    assert response.headers["X-Rules-Version"] == answer["rules_version"]


def test_declined_questions_are_not_asked_again(client):
    body = {"pain": {"intensity": 4}, "signs": EMERGENCY_NO, "declined": ["signs.swelling"]}
    answer = client.post("/v1/interview/next", json=body).get_json()
    assert "signs.swelling" not in answer["question"]["fields"]
    assert not set(answer["question"]["fields"]) & {f"signs.{n}" for n in EMERGENCY_NO}


def test_an_emergency_answer_stops_the_interview(client):
    body = {"pain": {"intensity": 4}, "signs": {"foot_cold_or_pale": True}}
    answer = client.post("/v1/interview/next", json=body).get_json()
    assert answer["should_stop"] is True
    assert answer["stop_reason"] == "emergency_found"
    assert answer["question"] is None
    assert answer["screen"]["level"] == "emergency"


def test_a_complete_report_stops_with_the_triage_complete(client):
    body = dict(examples.SELF_CARE_TECHNIQUE)
    answer = client.post("/v1/interview/next", json=body).get_json()
    assert answer["screen"]["complete"] is True
    if answer["should_stop"]:
        assert answer["stop_reason"] == "triage_complete_and_nothing_left_that_changes_the_answer"
    else:
        assert answer["question"]["priority"] in ("contradiction", "stop_or_causes")


@pytest.mark.parametrize(
    "body",
    [
        {"signs": {"swelling": True}},
        {"pain": {"intensity": "4"}},
        {"pain": {"intensity": 4}, "signs": {"third_knee": True}},
        {"pain": {"intensity": 4}, "store": False},
    ],
    ids=["no pain score", "pain score as text", "unknown field", "store is not taken"],
)
def test_a_report_that_does_not_validate_is_the_same_422_as_assess(client, body):
    response = client.post("/v1/interview/next", json=body)
    assessed = client.post("/v1/assess", json={**body, "store": False})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    if "store" not in body:
        assert assessed.status_code == 422
        assert problem["type"] == assessed.get_json()["type"]
        assert problem["errors"] == assessed.get_json()["errors"]


def test_a_declined_field_outside_the_vocabulary_is_a_422_naming_it(client):
    body = {"pain": {"intensity": 4}, "declined": ["signs.swelling", "signs.third_knee"]}
    response = client.post("/v1/interview/next", json=body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert "signs.third_knee" in str(errors)
    assert "signs.swelling" not in str(errors)


def test_a_declined_list_of_the_wrong_type_is_refused(client):
    body = {"pain": {"intensity": 4}, "declined": "signs.swelling"}
    assert client.post("/v1/interview/next", json=body).status_code == 422


def test_the_interview_needs_an_api_key(anonymous_client):
    response = anonymous_client.post("/v1/interview/next", json={"pain": {"intensity": 4}})
    assert response.status_code == 401


# --- the Python example, against the real service -----------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Gunicorn]:
    database = f"sqlite:///{tmp_path_factory.mktemp('interview') / 'popliteal.sqlite3'}"
    with gunicorn_server(
        database, tenant="interview", workers=1, RATELIMIT_APPLICATION="10000 per minute"
    ) as running:
        yield running


@pytest.mark.live
def test_the_python_example_runs_an_interview_to_its_end_against_the_service(server):
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "interview.py")],
        env={**os.environ, "POPLITEAL_URL": server.url, "POPLITEAL_API_KEY": server.keys[0]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The scripted person has no red flag: safety questions first, then the interview stops
    # with a complete triage.
    assert lines[0].startswith("Q: Do you have any of these right now?"), result.stdout
    assert "Stopped after" in result.stdout
    assert "triage_complete_and_nothing_left_that_changes_the_answer" in result.stdout
    assert "Triage self_care" in result.stdout, result.stdout
