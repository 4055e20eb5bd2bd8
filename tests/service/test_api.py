"""The HTTP API as a client sees it: status, media type, headers, and the body's contract."""

from __future__ import annotations

import pytest

from service import examples

ASSESSMENT_KEYS = {
    "rules_version",
    "triage",
    "likely_causes",
    "recommendations",
    "exercise_plan",
    "exercise_plan_withheld",
    "missing_information",
    "disclaimer",
    "trace",
}
RECORD_KEYS = {"id", "created_at", "request_id", "subject", "links", "report"}


def test_assess_returns_the_whole_assessment_with_rules_headers(client):
    response = client.post("/v1/assess", json=examples.SELF_CARE_TECHNIQUE)
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    assert response.headers["X-Rules-Version"] == "2.0.0"
    body = response.get_json()
    assert set(body) == ASSESSMENT_KEYS | RECORD_KEYS
    assert response.headers["Location"] == f"/v1/assessments/{body['id']}"
    assert body["report"] == examples.SELF_CARE_TECHNIQUE
    assert body["triage"]["level"] == "self_care"
    assert body["triage"]["complete"] is True
    assert body["disclaimer"].startswith("Popliteal gives decision support, not a diagnosis")
    assert body["likely_causes"][0]["code"] in {"improper_technique", "tight_hamstrings"}
    assert {r["code"] for r in body["recommendations"]} >= {"no_bouncing", "hold_longer"}
    assert body["exercise_plan"]["status"] == "ready"
    fired = {entry["rule_id"] for entry in body["trace"]["rules_fired"]}
    assert "sig.improper_technique.bouncing" in fired
    assert body["trace"]["parameters"]["stretch_hold_seconds"] == 30


def test_an_unstored_assessment_is_the_same_assessment_without_the_record(client):
    report = examples.SELF_CARE_TECHNIQUE
    stored = client.post("/v1/assess", json=report).get_json()
    response = client.post("/v1/assess", json={**report, "store": False})
    assert response.status_code == 200
    assert "Location" not in response.headers
    body = response.get_json()
    assert set(body) == ASSESSMENT_KEYS
    assert body == {key: stored[key] for key in ASSESSMENT_KEYS}


def test_an_urgent_report_has_no_plan_and_says_why(client):
    body = client.post("/v1/assess", json=examples.POSSIBLE_DVT).get_json()
    assert body["triage"]["level"] == "urgent"
    assert body["triage"]["stop_stretching"] is True
    assert body["exercise_plan"] is None
    assert [w["rule_id"] for w in body["exercise_plan_withheld"]] == [
        "plan.withhold.urgent_or_emergency"
    ]
    assert "possible_deep_vein_thrombosis" in {f["code"] for f in body["triage"]["red_flags"]}


def test_a_minimal_report_asks_the_red_flag_questions_first(client):
    body = client.post("/v1/assess", json=examples.MINIMAL).get_json()
    assert body["triage"]["complete"] is False
    first = body["missing_information"][0]
    assert first["priority"] == "red_flag"
    assert first["could_raise_level_to"] == "emergency"
    priorities = [item["priority"] for item in body["missing_information"]]
    assert priorities == sorted(
        priorities, key=["red_flag", "stop_stretching", "likely_causes"].index
    )


@pytest.mark.parametrize("report", [e["value"] for e in examples.REPORT_EXAMPLES.values()])
def test_escalation_check_agrees_with_assess(client, report):
    assessed = client.post("/v1/assess", json=report).get_json()
    checked = client.post("/v1/escalation-check", json=report).get_json()
    assert checked["level"] == assessed["triage"]["level"]
    assert checked["stop_stretching"] == assessed["triage"]["stop_stretching"]
    assert checked["complete"] == assessed["triage"]["complete"]
    assert checked["red_flags"] == assessed["triage"]["red_flags"]
    assert checked["escalate"] == (assessed["triage"]["level"] != "self_care")
    red_flag_questions = [
        m["field"] for m in assessed["missing_information"] if m["priority"] == "red_flag"
    ]
    assert checked["unanswered_red_flag_questions"] == red_flag_questions


def test_a_pinned_rules_version_is_used_and_echoed(client):
    response = client.post("/v1/assess", json={"rules_version": "1.0.0", **examples.MINIMAL})
    assert response.status_code == 201
    assert response.get_json()["rules_version"] == "1.0.0"
    assert response.headers["X-Rules-Version"] == "1.0.0"


def test_prescription_from_conditions(client):
    body = {"conditions": ["bakers_cyst"], "pain_intensity": 2, "profile": {"age": 60}}
    response = client.post("/v1/exercise-prescriptions", json=body)
    assert response.status_code == 201
    plan = response.get_json()["exercise_plan"]
    kinds = {item["phase"] for item in plan["items"]}
    assert "stretch" not in kinds
    excluded = {item["exercise_id"] for item in plan["excluded"]}
    assert {"lying_hamstring_stretch", "squat", "lunge"} <= excluded


def test_prescription_from_report_matches_the_assessment_plan(client):
    report = examples.SELF_CARE_TECHNIQUE
    assessed = client.post("/v1/assess", json=report).get_json()
    prescribed = client.post("/v1/exercise-prescriptions", json={"report": report}).get_json()
    assert prescribed["basis"] == "report"
    assert prescribed["exercise_plan"] == assessed["exercise_plan"]
    assert prescribed["triage"] == assessed["triage"]


def test_a_leading_strain_withholds_the_prescribed_plan(client):
    body = {"conditions": ["hamstring_strain"], "pain_intensity": 3}
    result = client.post("/v1/exercise-prescriptions", json=body).get_json()
    assert result["exercise_plan"] is None
    assert result["stop_stretching"] is True


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"report": examples.MINIMAL, "conditions": ["tight_hamstrings"], "pain_intensity": 1},
        {"conditions": ["tight_hamstrings"]},
        {"conditions": ["not_a_condition"], "pain_intensity": 1},
        {"conditions": ["tight_hamstrings", "tight_hamstrings"], "pain_intensity": 1},
        {"report": examples.MINIMAL, "pain_intensity": 1},
        {"report": examples.MINIMAL, "rules_version": "1.0.0"},
    ],
    ids=[
        "neither basis",
        "both bases",
        "conditions without pain",
        "unknown condition",
        "repeated condition",
        "pain_intensity with a report",
        "top-level version with a report",
    ],
)
def test_prescription_requests_must_have_exactly_one_coherent_basis(client, body):
    response = client.post("/v1/exercise-prescriptions", json=body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"]


def test_exercise_catalogue(client):
    listing = client.get("/v1/exercises").get_json()
    ids = [e["id"] for e in listing["exercises"]]
    assert ids[0] == "light_cardio"
    assert set(ids) == {
        "lying_hamstring_stretch", "seated_hamstring_stretch", "standing_hamstring_stretch",
        "towel_hamstring_stretch", "hamstring_curl", "glute_bridge", "calf_raise", "squat",
        "lunge", "light_cardio", "dynamic_stretches",
    }  # fmt: skip
    one = client.get("/v1/exercises/glute_bridge")
    assert one.status_code == 200
    assert one.get_json()["steps"]
    assert one.headers["X-Rules-Version"] == "2.0.0"


def test_condition_catalogue(client):
    listing = client.get("/v1/conditions").get_json()
    assert len(listing["conditions"]) == 13
    one = client.get("/v1/conditions/bakers_cyst").get_json()
    assert one["name"] == "Baker's cyst"
    assert one["source"]["document"] == "article"


def test_rules_versions_and_the_rule_set_as_served(client):
    listing = client.get("/v1/rules").get_json()
    assert listing["default_version"] == "2.0.0"
    by_version = {entry["version"]: entry for entry in listing["versions"]}
    assert by_version["2.0.0"]["default"] is True
    assert by_version["1.0.0"]["default"] is False
    document = client.get("/v1/rules/1.0.0").get_json()
    assert document["digest"] == by_version["1.0.0"]["digest"]
    flag = next(f for f in document["red_flags"] if f["id"] == "rf.cauda_equina")
    assert flag["level"] == "emergency"
    assert flag["when"] == {
        "any": [
            {"is_true": "signs.saddle_numbness"},
            {"is_true": "signs.bladder_or_bowel_changes"},
        ]
    }
    assert flag["source"]["url"].startswith("https://")
    assert all(p["source"] for p in document["parameters"])


@pytest.mark.parametrize(
    "path",
    ["/v1/exercises/nope", "/v1/conditions/nope", "/v1/rules/9.9.9", "/v2/assess", "/"],
)
def test_unknown_resources_are_404_problems(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"


def test_health(client):
    body = client.get("/healthz").get_json()
    assert body == {
        "status": "ok",
        "rules_versions": ["1.0.0", "2.0.0"],
        "default_rules_version": "2.0.0",
    }


def test_request_id_is_echoed_or_generated(client):
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["X-Request-ID"] != "bad id with spaces"
    assert len(generated.headers["X-Request-ID"]) == 32
    error = client.post("/v1/assess", data="{", content_type="application/json")
    assert error.get_json()["request_id"] == error.headers["X-Request-ID"]
