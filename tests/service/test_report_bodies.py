"""The report bodies of POST /v1/assess and POST /v1/escalation-check over HTTP.

- ``null`` means "not asked": for every clinical case, the report with each absent optional key
  sent as null gets byte for byte the answer of the report with the keys left out, and an
  unanswered safety question stays unanswered, never "no";
- a QuestionnaireResponse sent as plain JSON is told to come as FHIR JSON (415), and
  POST /v1/escalation-check takes one as FHIR JSON, with the JSON report's result;
- a pain intensity that is not a whole number says so.
"""

from __future__ import annotations

import copy

import pytest

from service import examples
from tests.rules.test_clinical_cases import CASES
from tests.schemas.test_fast_nulls import absent_places, with_nulls
from tests.service.fhir_client import answer_questionnaire, answers_from_report, validate

FHIR = "application/fhir+json"
REPORT_ROUTES = ("/v1/assess", "/v1/escalation-check")
CASE_IDS = [case["name"] for _, case in CASES]


def _post(client, route, report):
    body = {**report, "store": False} if route == "/v1/assess" else report
    return client.post(route, json=body)


def _same_answer(client, route, sent, expected_report):
    as_nulls = _post(client, route, sent)
    as_absent = _post(client, route, expected_report)
    assert as_absent.status_code == 200, as_absent.get_json()
    assert as_nulls.status_code == 200, as_nulls.get_json()
    assert as_nulls.get_data() == as_absent.get_data()
    assert as_nulls.headers["X-Rules-Version"] == as_absent.headers["X-Rules-Version"]


@pytest.mark.parametrize("case", [case for _, case in CASES], ids=CASE_IDS)
@pytest.mark.parametrize("route", REPORT_ROUTES)
def test_a_case_with_nulls_for_its_absent_keys_gets_the_same_answer(client, route, case):
    report = case["report"]
    places = absent_places(report)
    _same_answer(client, route, with_nulls(report, places), report)
    # An absent section sent as an object of nulls is that section sent empty.
    emptied = copy.deepcopy(report)
    for place in places:
        if len(place) == 1 and place[0] != "rules_version":
            emptied[place[0]] = {}
    _same_answer(client, route, with_nulls(report, places, section_as_fields=True), emptied)


def test_a_stored_report_keeps_no_nulls(client):
    report = {"pain": {"intensity": 3, "side": None}, "signs": None, "rules_version": None}
    created = client.post("/v1/assess", json=report)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["report"] == {"pain": {"intensity": 3}}
    assert client.get(created.headers["Location"]).get_json()["report"] == {
        "pain": {"intensity": 3}
    }


# The anchor of the red-flag cases answers every red-flag question with "no".
CALM = next(case["report"] for _, case in CASES if case.get("expect", {}).get("complete") is True)


@pytest.mark.parametrize(
    "place",
    [(section, field) for section, body in CALM.items() for field in body if section != "pain"],
)
def test_a_safety_question_sent_as_null_is_unanswered_never_no(client, place):
    section, field = place
    sent = copy.deepcopy(CALM)
    sent[section][field] = None
    check = client.post("/v1/escalation-check", json=sent).get_json()
    answered_no = client.post("/v1/escalation-check", json=CALM).get_json()
    assert answered_no["complete"] is True
    if f"{section}.{field}" in check["unanswered_red_flag_questions"]:
        assert check["complete"] is False
    left_out = copy.deepcopy(CALM)
    del left_out[section][field]
    assert check == client.post("/v1/escalation-check", json=left_out).get_json()


def test_every_red_flag_question_of_the_anchor_can_be_left_unanswered_by_null(client):
    # The property above is only meaningful if the anchor's "no"s matter: nulling all of them
    # must leave every red-flag question open.
    sent = {
        section: (body if section == "pain" else dict.fromkeys(body))
        for section, body in CALM.items()
    }
    check = client.post("/v1/escalation-check", json=sent).get_json()
    assert check["complete"] is False
    assert any(q.startswith("signs.") for q in check["unanswered_red_flag_questions"])


@pytest.mark.parametrize("route", REPORT_ROUTES)
def test_a_null_pain_intensity_is_refused_as_missing(client, route):
    response = _post(client, route, {"pain": {"intensity": None}})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"] == {"pain.intensity": ["Missing data for required field."]}


@pytest.mark.parametrize("route", REPORT_ROUTES)
@pytest.mark.parametrize("intensity", [4.5, "5", True])
def test_a_pain_intensity_that_is_not_a_whole_number_says_so(client, route, intensity):
    response = _post(client, route, {"pain": {"intensity": intensity}})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "pain.intensity": ["Must be a whole number from 0 to 10."]
    }


# -- QuestionnaireResponses ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def questionnaire(app, tenant):
    return tenant.client.get("/v1/questionnaire").get_json()


def _questionnaire_response(questionnaire, report):
    response = answer_questionnaire(questionnaire, answers_from_report(report))
    validate(response)
    return response


@pytest.mark.parametrize("route", REPORT_ROUTES)
def test_a_questionnaire_response_sent_as_plain_json_is_told_to_come_as_fhir(
    client, questionnaire, route
):
    sent = _questionnaire_response(questionnaire, examples.SELF_CARE_TECHNIQUE)
    response = client.post(route, json=sent)
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 415
    assert "QuestionnaireResponse" in problem["detail"]
    assert FHIR in problem["detail"]


def test_any_other_resource_sent_as_json_is_just_an_invalid_report(client):
    response = client.post("/v1/escalation-check", json={"resourceType": "Patient"})
    assert response.status_code == 422


@pytest.mark.parametrize("case", [case for _, case in CASES], ids=CASE_IDS)
def test_an_escalation_check_of_a_questionnaire_response_is_that_of_the_json_report(
    client, questionnaire, case
):
    report = case["report"]
    version = report.get("rules_version")
    query = f"?rules_version={version}" if version else ""
    answers = {k: v for k, v in report.items() if k != "rules_version"}
    as_json = client.post("/v1/escalation-check", json=report)
    as_fhir = client.post(
        f"/v1/escalation-check{query}",
        json=_questionnaire_response(questionnaire, answers),
        content_type=FHIR,
    )
    assert as_json.status_code == 200, as_json.get_json()
    assert as_fhir.status_code == 200, as_fhir.get_json()
    assert as_fhir.get_data() == as_json.get_data()
    assert as_fhir.headers["X-Rules-Version"] == as_json.headers["X-Rules-Version"]


def test_an_escalation_check_pins_the_version_of_its_query(client, questionnaire):
    sent = _questionnaire_response(questionnaire, examples.SELF_CARE_TECHNIQUE)
    response = client.post("/v1/escalation-check?rules_version=1.0.0", json=sent, content_type=FHIR)
    assert response.status_code == 200
    assert response.headers["X-Rules-Version"] == "1.0.0"
    assert response.get_json()["rules_version"] == "1.0.0"


def test_an_escalation_check_of_a_questionnaire_response_takes_no_store(client, questionnaire):
    sent = _questionnaire_response(questionnaire, examples.SELF_CARE_TECHNIQUE)
    response = client.post("/v1/escalation-check?store=false", json=sent, content_type=FHIR)
    assert response.status_code == 422
    assert response.mimetype == FHIR
    validate(response.get_json())


def test_an_unreadable_questionnaire_response_is_an_outcome_at_the_escalation_check(client):
    response = client.post(
        "/v1/escalation-check", json={"resourceType": "Patient"}, content_type=FHIR
    )
    assert response.status_code == 422
    assert response.mimetype == FHIR
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_the_spec_documents_both_forms_of_the_escalation_check_body(client):
    spec = client.get("/openapi.json").get_json()
    body = spec["paths"]["/v1/escalation-check"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SymptomReport"
    }
    assert body["content"][FHIR]["schema"] == {
        "$ref": "#/components/schemas/FhirQuestionnaireResponse"
    }
    assert "rules_version" in body["description"]


def test_the_spec_says_optional_answers_may_be_null(client):
    spec = client.get("/openapi.json").get_json()
    for route in REPORT_ROUTES:
        assert "sent as null" in spec["paths"][route]["post"]["requestBody"]["description"]
    schemas = spec["components"]["schemas"]
    assert "sent as null" in schemas["SymptomReport"]["properties"]["signs"]["description"]
    for name in ("PainReport", "SignsReport", "HistoryReport"):
        for field, prop in schemas[name]["properties"].items():
            required = field in schemas[name].get("required", [])
            assert prop.get("nullable", False) is not required, (name, field)
    assert schemas["SymptomReport"]["properties"]["signs"]["nullable"] is True
    assert "nullable" not in schemas["SymptomReport"]["properties"]["pain"]


def test_a_report_inside_a_prescription_request_takes_nulls_as_absent(client):
    report = {"pain": {"intensity": 3, "side": "left"}, "stretching": {"bouncing": True}}
    sent = {**with_nulls(report, absent_places(report)), "profile": None}
    as_nulls = client.post("/v1/exercise-prescriptions", json={"report": sent, "store": False})
    as_absent = client.post("/v1/exercise-prescriptions", json={"report": report, "store": False})
    assert as_absent.status_code == 200, as_absent.get_json()
    assert as_nulls.status_code == 200, as_nulls.get_json()
    assert as_nulls.get_data() == as_absent.get_data()
