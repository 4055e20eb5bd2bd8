"""POST /v1/fhir/Questionnaire/$next-question: the interview as a FHIR SDC adaptive form. Every
resource it answers is validated with the fhir.resources R4B models."""

from __future__ import annotations

import copy

import pytest

from schemas.fhir import REPORT_VALUE_SYSTEM
from schemas.fhir.adaptive import ADAPTIVE_URL, NONE_OF_THESE, REPORT_FIELD_SYSTEM, first_response
from service import examples
from tests.service.fhir_client import validate

FHIR = "application/fhir+json"
OPERATION = "/v1/fhir/Questionnaire/$next-question"


def post(client, body):
    response = client.post(OPERATION, json=body, content_type=FHIR, headers={"Accept": FHIR})
    resource = response.get_json()
    validate(resource)
    for contained in resource.get("contained", []):
        validate(contained)
    return response, resource


def contained_form(response: dict) -> dict:
    return next(r for r in response["contained"] if f"#{r['id']}" == response["questionnaire"])


def answer_last(response: dict, report: dict) -> dict:
    """Answer the question just added from ``report`` (left unanswered: declined). A checklist
    ticks what the report says yes to; the items left unticked are read as no."""
    response = copy.deepcopy(response)
    item = contained_form(response)["item"][-1]
    flat = {f"{s}.{n}": v for s, fields in report.items() for n, v in fields.items()}
    options = [o["valueCoding"] for o in item.get("answerOption", [])]
    if options and options[0]["system"] == REPORT_FIELD_SYSTEM:
        shown = [o["code"] for o in options if o["code"] != NONE_OF_THESE]
        ticked = [path for path in shown if flat.get(path)]
        if not ticked and not all(path in flat for path in shown):
            return response  # nothing to tick, and not every item known: declined
        ticked = ticked or [NONE_OF_THESE]
        answer = [{"valueCoding": {"system": REPORT_FIELD_SYSTEM, "code": c}} for c in ticked]
    elif item["linkId"] not in flat:
        return response
    else:
        value = flat[item["linkId"]]
        if item["type"] == "boolean":
            answer = [{"valueBoolean": value}]
        elif item["type"] == "integer":
            answer = [{"valueInteger": value}]
        else:
            values = value if isinstance(value, list) else [value]
            answer = [{"valueCoding": {"system": REPORT_VALUE_SYSTEM, "code": v}} for v in values]
    response["item"][-1]["answer"] = answer
    return response


def interview(client, report: dict) -> tuple[dict, int]:
    response = first_response()
    for asked in range(80):
        _, response = post(client, response)
        assert response["resourceType"] == "QuestionnaireResponse"
        if response["status"] == "completed":
            return response, asked
        response = answer_last(response, report)
    raise AssertionError("the interview did not end")


@pytest.mark.parametrize(
    "report",
    [examples.SELF_CARE_TECHNIQUE, examples.POSSIBLE_DVT, examples.SCIATICA_TINGLING],
    ids=["self care", "possible clot", "sciatica"],
)
def test_an_interview_over_fhir_reaches_the_level_of_the_whole_report(client, report):
    completed, asked = interview(client, report)
    level = client.post("/v1/escalation-check", json=report).get_json()["level"]
    result = contained_form(completed)["item"][-1]
    assert result["type"] == "display"
    assert f"triage level {level}." in result["text"]
    assert asked > 1


def test_the_first_question_is_the_pain_score_then_the_emergency_checklist(client):
    _, started = post(client, first_response())
    first = contained_form(started)["item"][0]
    assert first["linkId"] == "pain.intensity"
    assert first["type"] == "integer"
    assert started["item"] == [{"linkId": "pain.intensity", "text": first["text"]}]
    started["item"][0]["answer"] = [{"valueInteger": 3}]
    _, second = post(client, started)
    checklist = contained_form(second)["item"][1]
    assert checklist["linkId"].startswith("checklist.emergency_signs")
    assert checklist["repeats"] is True
    assert checklist["answerOption"][-1]["valueCoding"]["code"] == NONE_OF_THESE


def test_an_emergency_completes_the_response(client):
    _, started = post(client, first_response())
    started["item"][0]["answer"] = [{"valueInteger": 3}]
    _, asked = post(client, started)
    code = {"system": REPORT_FIELD_SYSTEM, "code": "signs.foot_cold_or_pale"}
    asked["item"][1]["answer"] = [{"valueCoding": code}]
    _, completed = post(client, asked)
    assert completed["status"] == "completed"
    assert "emergency_found" in contained_form(completed)["item"][-1]["text"]


def test_an_interview_ended_with_red_flag_questions_declined_says_triage_is_incomplete(client):
    _, started = post(client, first_response())
    started["item"][0]["answer"] = [{"valueInteger": 3}]
    response = started
    for _ in range(80):
        _, response = post(client, response)
        if response["status"] == "completed":
            break
        response["item"][-1].pop("answer", None)  # every question declined
    result = contained_form(response)["item"][-1]["text"]
    assert "nothing_left_to_ask" in result
    assert "Triage is incomplete" in result
    assert "the level could be higher" in result


def test_a_response_for_another_questionnaire_is_an_operation_outcome_naming_it(client):
    body = first_response()
    body["contained"][0]["url"] = "http://example.org/Questionnaire/phq-9"
    response, outcome = post(client, body)
    assert response.status_code == 422
    assert outcome["resourceType"] == "OperationOutcome"
    assert "http://example.org/Questionnaire/phq-9" in str(outcome)
    assert ADAPTIVE_URL in str(outcome)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda body: body.update(resourceType="Patient"),
        lambda body: body.update(questionnaire="#elsewhere"),
        lambda body: body["contained"][0].update(item=[{"linkId": "x.y", "type": "boolean"}]),
    ],
    ids=["not a response", "no contained form", "unknown question"],
)
def test_a_body_that_is_not_this_adaptive_form_is_an_operation_outcome(client, spoil):
    body = first_response()
    spoil(body)
    response, outcome = post(client, body)
    assert response.status_code == 422
    assert outcome["resourceType"] == "OperationOutcome"


def test_an_answer_of_the_wrong_type_is_an_operation_outcome(client):
    _, started = post(client, first_response())
    started["item"][0]["answer"] = [{"valueBoolean": True}]
    response, outcome = post(client, started)
    assert response.status_code == 422
    assert "pain.intensity" in str(outcome)


@pytest.mark.parametrize(
    "garbled",
    [
        [{"valueCoding": {"system": REPORT_FIELD_SYSTEM, "code": "signs.chest-pain"}}],
        [{"valueString": "chest pain"}],
    ],
    ids=["a code not shown", "not a coding"],
)
def test_a_checklist_answer_that_is_not_an_option_is_refused_not_read_as_none(client, garbled):
    # Read leniently, it would answer every emergency sign shown "no".
    _, started = post(client, first_response())
    started["item"][0]["answer"] = [{"valueInteger": 3}]
    _, asked = post(client, started)
    asked["item"][1]["answer"] = garbled
    response, outcome = post(client, asked)
    assert response.status_code == 422
    assert outcome["resourceType"] == "OperationOutcome"
    assert "not one of its options" in str(outcome)


@pytest.mark.parametrize(
    "forged",
    ["signs.not_a_field", "nodot", "pain.intensity"],
    ids=["unknown", "no dot", "not yes/no"],
)
def test_a_checklist_offering_an_item_never_asked_is_an_operation_outcome(client, forged):
    # The form travels with the client: an option it added is refused, never read (a 500 before).
    _, started = post(client, first_response())
    started["item"][0]["answer"] = [{"valueInteger": 3}]
    _, asked = post(client, started)
    code = {"system": REPORT_FIELD_SYSTEM, "code": forged}
    contained_form(asked)["item"][1]["answerOption"].insert(0, {"valueCoding": code})
    asked["item"][1]["answer"] = [{"valueCoding": code}]
    response, outcome = post(client, asked)
    assert response.status_code == 422
    assert outcome["resourceType"] == "OperationOutcome"
    assert forged in str(outcome)


def test_a_pain_score_out_of_range_is_an_operation_outcome(client):
    _, started = post(client, first_response())
    started["item"][0]["answer"] = [{"valueInteger": 11}]
    response, outcome = post(client, started)
    assert response.status_code == 422
    assert outcome["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "spoil",
    [
        lambda body: body.update(item={"linkId": "pain.intensity"}),
        lambda body: body.update(item=["pain.intensity"]),
        lambda body: body["contained"][0].update(item="pain.intensity"),
        lambda body: body.update(contained=[[]]),
        lambda body: body.update(
            item=[{"linkId": "pain.intensity", "answer": [{"valueInteger": "3"}]}]
        ),
    ],
    ids=["item an object", "item of texts", "form items a text", "contained a list", "text 3"],
)
def test_a_malformed_response_is_an_operation_outcome_not_an_error(client, spoil):
    _, started = post(client, first_response())
    spoil(started)
    response, outcome = post(client, started)
    assert response.status_code == 422
    assert outcome["resourceType"] == "OperationOutcome"
