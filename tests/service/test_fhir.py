"""FHIR R4, as an EHR sees it: plans as CarePlans, assessments as Bundles, the intake as a
Questionnaire, QuestionnaireResponses assessed exactly as JSON reports, and errors as
OperationOutcomes. Every resource is validated against the R4 definitions (tests.service.
fhir_client), not compared with Popliteal's own output."""

from __future__ import annotations

import copy
import types
import uuid

import pytest
import simple_icd_10_cm as icd

from service import examples
from service.records_as_fhir import prepare_level_texts
from service.state import state
from tests.rules.test_clinical_cases import CASES
from tests.service.fhir_client import (
    ICD10CM,
    answer_questionnaire,
    answers_from_report,
    validate,
)

FHIR = "application/fhir+json"
SUBJECT = {"system": "https://fitness.example/member-ids", "value": "m-4f9c2a"}
BAKERS_REPORT = {
    "pain": {"intensity": 4, "side": "left", "locations": ["behind_knee"]},
    "signs": {"lump_behind_knee": True, "stiffness": True, "swelling": True},
    "history": {"arthritis": True},
}


@pytest.fixture(scope="module")
def questionnaire(app, tenant):
    response = tenant.client.get("/v1/questionnaire")
    assert response.status_code == 200
    assert response.mimetype == FHIR
    return response.get_json()


def fhir_get(client, path):
    return client.get(path, headers={"Accept": FHIR})


def stored(client, report, subject=SUBJECT):
    response = client.post("/v1/assess", json={**report, "subject": subject})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def post_response(client, response, query=""):
    return client.post(f"/v1/assess{query}", json=response, content_type=FHIR)


# -- Questionnaire -----------------------------------------------------------------------------


def test_the_questionnaire_is_a_valid_r4_questionnaire(questionnaire):
    validate(questionnaire)
    assert questionnaire["url"]
    assert questionnaire["version"]


def test_the_questionnaire_has_one_item_per_report_field_with_its_type(app, questionnaire):
    sections = state(app).rules.report_sections
    items = {item["linkId"]: item for group in questionnaire["item"] for item in group["item"]}
    expected_types = {"boolean": "boolean", "integer": "integer", "choice": "choice",
                      "list": "choice"}  # fmt: skip
    paths = {f"{s}.{n}": spec for s, section in sections.items()
             for n, spec in section["fields"].items()}  # fmt: skip
    assert set(items) == set(paths)
    for path, spec in paths.items():
        item = items[path]
        assert item["type"] == expected_types[spec["kind"]], path
        assert item["repeats"] is (spec["kind"] == "list"), path
        if spec["kind"] in ("choice", "list"):
            assert [o["valueCoding"]["code"] for o in item["answerOption"]] == spec["values"]
        if spec["kind"] == "integer":
            bounds = {e["url"].rsplit("/", 1)[1]: e["valueInteger"] for e in item["extension"]}
            assert bounds == {"minValue": spec["minimum"], "maxValue": spec["maximum"]}


def test_red_flag_questions_are_required_and_others_are_not(questionnaire):
    items = {i["linkId"]: i for g in questionnaire["item"] for i in g["item"]}
    for path in ("signs.saddle_numbness", "signs.bladder_or_bowel_changes",
                 "signs.foot_cold_or_pale", "signs.calf_swelling", "signs.fever",
                 "pain.intensity"):  # fmt: skip
        assert items[path]["required"] is True, path
    for path in ("stretching.warmed_up", "profile.activity_level", "history.home_care_tried"):
        assert items[path]["required"] is False, path


def test_home_care_days_are_asked_only_once_home_care_was_tried(questionnaire):
    items = {i["linkId"]: i for g in questionnaire["item"] for i in g["item"]}
    assert items["history.home_care_days"]["enableWhen"] == [
        {"question": "history.home_care_tried", "operator": "exists", "answerBoolean": True}
    ]


# -- QuestionnaireResponse in, same result as JSON ---------------------------------------------


def _without_store(report):
    return {k: v for k, v in report.items() if k not in ("store", "subject", "rules_version")}


@pytest.mark.parametrize(
    "case", [case for _, case in CASES], ids=[case["name"] for _, case in CASES]
)
def test_a_questionnaire_response_is_assessed_exactly_as_the_json_report(
    client, questionnaire, case
):
    report = case["report"]
    version = report.get("rules_version")
    query = "?store=false" + (f"&rules_version={version}" if version else "")
    as_json = client.post("/v1/assess", json={**report, "store": False})
    response = answer_questionnaire(questionnaire, answers_from_report(_without_store(report)))
    validate(response)
    as_fhir = post_response(client, response, query)
    assert as_json.status_code == 200, as_json.get_json()
    assert as_fhir.status_code == 200, as_fhir.get_json()
    assert as_fhir.get_json() == as_json.get_json()
    assert as_fhir.headers["X-Rules-Version"] == as_json.headers["X-Rules-Version"]


def test_a_stored_questionnaire_response_keeps_its_subject_and_report(client, questionnaire):
    response = answer_questionnaire(
        questionnaire, answers_from_report(examples.SELF_CARE_TECHNIQUE), subject=SUBJECT
    )
    created = post_response(client, response)
    assert created.status_code == 201
    body = created.get_json()
    assert body["subject"] == SUBJECT
    assert body["report"] == examples.SELF_CARE_TECHNIQUE
    again = client.get(created.headers["Location"]).get_json()
    assert again["report"] == examples.SELF_CARE_TECHNIQUE


def _outcome(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR
    outcome = response.get_json()
    validate(outcome)
    return outcome


def _diagnostics(outcome) -> str:
    return " | ".join(issue["diagnostics"] for issue in outcome["issue"])


def _edit(questionnaire, edit):
    response = answer_questionnaire(
        questionnaire, answers_from_report(examples.SELF_CARE_TECHNIQUE)
    )
    edit(response)
    return response


def _pain(response):
    return next(g for g in response["item"] if g["linkId"] == "pain")["item"]


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            lambda r: _pain(r).append(
                {"linkId": "pain.colour", "answer": [{"valueBoolean": True}]}
            ),
            "pain.colour",
        ),
        (lambda r: r["item"].append({"linkId": "diet", "item": []}), "diet"),
        (
            lambda r: _pain(r).__setitem__(
                0, {"linkId": "pain.intensity", "answer": [{"valueString": "3"}]}
            ),
            "pain.intensity",
        ),
        (
            lambda r: _pain(r).__setitem__(
                0, {"linkId": "pain.intensity", "answer": [{"valueInteger": True}]}
            ),
            "pain.intensity",
        ),
        (
            lambda r: _pain(r).__setitem__(
                0, {"linkId": "pain.intensity", "answer": [{"valueInteger": 11}]}
            ),
            "pain.intensity",
        ),
        (
            lambda r: _pain(r).__setitem__(
                0,
                {"linkId": "pain.intensity", "answer": [{"valueInteger": 3}, {"valueInteger": 4}]},
            ),
            "pain.intensity",
        ),
        (
            lambda r: _pain(r).__setitem__(
                0, {"linkId": "pain.intensity", "answer": [{"valueDecimal": 3.0}]}
            ),
            "pain.intensity",
        ),
        (
            lambda r: _pain(r).append(
                {"linkId": "pain.side", "answer": [{"valueCoding": {"code": "middle"}}]}
            ),
            "pain.side",
        ),
        (
            lambda r: _pain(r).append(
                {
                    "linkId": "pain.side",
                    "answer": [
                        {"valueCoding": {"system": "http://snomed.info/sct", "code": "right"}}
                    ],
                }
            ),
            "pain.side",
        ),
        (
            lambda r: _pain(r).append(
                {"linkId": "signs.numbness", "answer": [{"valueBoolean": True}]}
            ),
            "signs.numbness",
        ),
        (lambda r: _pain(r).append(copy.deepcopy(_pain(r)[0])), "pain.intensity"),
        (lambda r: _pain(r).pop(0), "pain.intensity"),
        (
            lambda r: r.__setitem__("questionnaire", "http://other.example/Questionnaire/x"),
            "questionnaire",
        ),
        (
            lambda r: r.__setitem__("questionnaire", r["questionnaire"].split("|")[0] + "|0.9"),
            "questionnaire",
        ),
        (lambda r: r.__setitem__("status", "entered-in-error"), "status"),
        (lambda r: r.__setitem__("subject", {"reference": "Patient/123"}), "subject"),
        (lambda r: r.__setitem__("colour", "blue"), "colour"),
    ],
    ids=[
        "an unknown question",
        "an unknown group",
        "a string for an integer",
        "true for an integer",
        "a pain score above 10",
        "two answers to a single-answer question",
        "a decimal for an integer",
        "a code that is not an answer option",
        "a code from another system",
        "a question under the wrong group",
        "the same question twice",
        "no pain score",
        "another questionnaire",
        "an old version of the questionnaire",
        "a response entered in error",
        "a subject given only as a literal reference",
        "an element QuestionnaireResponse does not have",
    ],
)
def test_a_response_that_cannot_be_read_is_a_422_outcome_naming_the_item(
    client, questionnaire, edit, named
):
    outcome = _outcome(post_response(client, _edit(questionnaire, edit)), 422)
    assert named in _diagnostics(outcome)
    assert all(issue["code"] == "invalid" for issue in outcome["issue"])
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert any(named in e for e in expressions), expressions


def test_a_response_that_is_not_a_questionnaire_response_is_refused(client):
    outcome = _outcome(post_response(client, {"resourceType": "Patient"}), 422)
    assert "QuestionnaireResponse" in _diagnostics(outcome)


def test_malformed_fhir_json_is_a_400_outcome(client):
    response = client.post("/v1/assess", data=b'{"resourceType": ', content_type=FHIR)
    outcome = _outcome(response, 400)
    assert outcome["issue"][0]["code"] == "structure"


def test_a_bad_query_parameter_is_a_422_outcome(client, questionnaire):
    response = answer_questionnaire(questionnaire, {"pain.intensity": 2})
    outcome = _outcome(post_response(client, response, "?store=no"), 422)
    assert "store" in _diagnostics(outcome)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/assess", {"pain": {"intensity": 2}}),
        ("/v1/escalation-check", {"pain": {"intensity": 2}}),
        ("/v1/exercise-prescriptions", {"report": {"pain": {"intensity": 2}}}),
    ],
)
def test_query_parameters_are_refused_with_a_json_body(client, path, body):
    # Never ignored: a JSON client sending ?store=false must not have its request stored.
    response = client.post(f"{path}?store=false", json=body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "store" in response.get_json()["errors"]


def test_an_unanswered_red_flag_question_is_left_open_not_taken_as_no(client, questionnaire):
    response = answer_questionnaire(questionnaire, {"pain.intensity": 2})
    body = post_response(client, response, "?store=false").get_json()
    assert body["triage"]["complete"] is False
    assert "signs.saddle_numbness" in [m["field"] for m in body["missing_information"]]


def test_an_idempotency_key_is_bound_to_the_query_as_well_as_the_body(client, questionnaire):
    response = answer_questionnaire(questionnaire, {"pain.intensity": 2})
    key = {"Idempotency-Key": str(uuid.uuid4())}

    def send(query):
        return client.post(f"/v1/assess{query}", json=response, content_type=FHIR, headers=key)

    first = send("?rules_version=1.0.0")
    replayed = send("?rules_version=1.0.0")
    other_query = send("")
    assert (first.status_code, replayed.status_code) == (201, 201)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert "Idempotency-Key" in _diagnostics(_outcome(other_query, 422))


# -- CarePlan ----------------------------------------------------------------------------------


def test_a_stored_plan_is_a_valid_care_plan_by_accept_header_and_by_address(client):
    record = stored(client, BAKERS_REPORT)
    path = record["links"]["exercise_prescription"]
    by_accept = fhir_get(client, path)
    by_address = client.get(f"{path}/fhir")
    for response in (by_accept, by_address):
        assert response.status_code == 200
        assert response.mimetype == FHIR
        validate(response.get_json())
    assert by_accept.get_json() == by_address.get_json()
    assert client.get(path).mimetype == "application/json"  # JSON stays the default


def test_the_care_plan_carries_the_plan_the_json_gives(client):
    record = stored(client, BAKERS_REPORT)
    path = record["links"]["exercise_prescription"]
    plan_json = client.get(path).get_json()
    plan = fhir_get(client, path).get_json()
    assert plan["resourceType"] == "CarePlan"
    assert plan["id"] == plan_json["id"]
    assert plan["intent"] == "proposal"
    assert plan["status"] == "draft"  # pending a professional's review
    assert plan["subject"] == {"identifier": SUBJECT}
    assert plan["created"] == plan_json["created_at"]
    items = plan_json["exercise_plan"]["items"]
    to_do = [a for a in plan["activity"] if not a["detail"]["doNotPerform"]]
    not_to_do = [a for a in plan["activity"] if a["detail"]["doNotPerform"]]
    assert [a["detail"]["code"]["coding"][0]["code"] for a in to_do] == [
        i["exercise_id"] for i in items
    ]
    excluded = plan_json["exercise_plan"]["excluded"]
    assert excluded  # the cyst keeps hamstring stretches out of the plan
    assert [a["detail"]["code"]["coding"][0]["code"] for a in not_to_do] == [
        e["exercise_id"] for e in excluded
    ]
    for activity, item in zip(to_do, items, strict=True):
        detail = activity["detail"]
        assert detail["status"] == "not-started"
        repeat = detail["scheduledTiming"]["repeat"]
        if "times_per_week" in item["dose"]:
            assert (repeat["frequency"], repeat["period"], repeat["periodUnit"]) == (
                item["dose"]["times_per_week"],
                1,
                "wk",
            )
        for caution in item["cautions"]:
            assert caution in detail["description"]
    notes = " ".join(note["text"] for note in plan["note"])
    for rule in plan_json["exercise_plan"]["safety"]:
        assert rule["text"] in notes
    assert plan_json["disclaimer"] in notes
    assert "2.0.0" in notes  # the rules version it came from


def test_the_care_plan_addresses_the_likely_causes_with_side_specific_icd_10_cm_codes(client):
    record = stored(client, BAKERS_REPORT)
    plan = fhir_get(client, record["links"]["exercise_prescription"]).get_json()
    conditions = {c["id"]: c for c in plan["contained"]}
    assert [a["reference"] for a in plan["addresses"]] == [f"#{i}" for i in conditions]
    first = conditions[plan["addresses"][0]["reference"][1:]]
    codes = [c["code"] for c in first["code"]["coding"] if c["system"] == ICD10CM]
    assert codes == ["M71.22"]  # Baker's cyst, left knee (the report says left)
    for condition in conditions.values():
        for coding in condition["code"]["coding"]:
            if coding["system"] == ICD10CM:
                assert icd.is_valid_item(coding["code"])
                assert icd.is_leaf(coding["code"])
                assert icd.get_description(coding["code"]) == coding["display"]


def test_a_plan_for_conditions_named_by_a_clinician_is_provisional_and_coded(client):
    created = client.post(
        "/v1/exercise-prescriptions",
        json={"conditions": ["knee_osteoarthritis", "tight_hamstrings"], "pain_intensity": 2},
    )
    assert created.status_code == 201
    plan = fhir_get(client, created.headers["Location"]).get_json()
    validate(plan)
    # No subject was given: the reference says so rather than point at anyone.
    assert set(plan["subject"]) == {"display"}
    assert plan["subject"]["display"].startswith("Not identified")
    conditions = plan["contained"]
    assert [c["verificationStatus"]["coding"][0]["code"] for c in conditions] == [
        "provisional",
        "provisional",
    ]
    osteoarthritis, tight = (c["code"]["coding"] for c in conditions)
    assert [c["code"] for c in osteoarthritis if c["system"] == ICD10CM] == ["M17.9"]
    assert [c for c in tight if c["system"] == ICD10CM] == []  # no code fits: none forced


def test_a_withheld_plan_is_an_on_hold_care_plan_with_no_activity(client):
    record = stored(client, {"pain": {"intensity": 9}})
    plan = fhir_get(client, record["links"]["exercise_prescription"]).get_json()
    validate(plan)
    assert plan["status"] == "on-hold"
    assert "activity" not in plan
    assert any("withheld" in note["text"].lower() for note in plan["note"])


# -- Bundle --------------------------------------------------------------------------------------


def test_a_stored_assessment_is_a_valid_collection_bundle(client):
    record = stored(client, BAKERS_REPORT)
    response = fhir_get(client, record["links"]["self"])
    assert response.status_code == 200
    assert response.mimetype == FHIR
    bundle = response.get_json()
    validate(bundle)
    assert bundle["type"] == "collection"
    assert client.get(f"{record['links']['self']}/fhir").get_json() == bundle
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert kinds.count("RiskAssessment") == 1
    assert kinds.count("ClinicalImpression") == 1
    assert kinds.count("CarePlan") == 1
    assert kinds.count("Condition") == len(record["likely_causes"])


def test_the_bundle_gives_the_triage_and_red_flags_as_a_risk_assessment(client):
    record = stored(client, examples.POSSIBLE_DVT)
    bundle = fhir_get(client, record["links"]["self"]).get_json()
    validate(bundle)
    risk = next(e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "RiskAssessment")  # fmt: skip
    outcome = risk["prediction"][0]["outcome"]["coding"][0]
    assert outcome["code"] == record["triage"]["level"] == "urgent"
    assert risk["prediction"][0]["qualitativeRisk"]["coding"][0]["code"] == "high"
    assert [b["identifier"]["value"] for b in risk["basis"]] == [
        f["code"] for f in record["triage"]["red_flags"]
    ]
    assert record["disclaimer"] in [n["text"] for n in risk["note"]]


def test_an_incomplete_triage_is_preliminary_and_says_so(client):
    record = stored(client, examples.MINIMAL)
    bundle = fhir_get(client, record["links"]["self"]).get_json()
    risk = next(e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "RiskAssessment")  # fmt: skip
    assert risk["status"] == "preliminary"
    assert "not answered" in risk["prediction"][0]["rationale"]


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_an_open_red_flag_screen_names_its_questions_and_keeps_the_impression_in_progress(
    client,
):
    record = stored(client, examples.MINIMAL)
    bundle = fhir_get(client, record["links"]["self"]).get_json()
    validate(bundle)
    [risk] = _resources(bundle, "RiskAssessment")
    [impression] = _resources(bundle, "ClinicalImpression")
    red_flag_questions = [
        item["question"] for item in record["missing_information"] if item["priority"] == "red_flag"
    ]
    assert red_flag_questions
    for question in red_flag_questions:
        assert question in risk["prediction"][0]["rationale"]
    assert impression["status"] == "in-progress"
    complete = stored(client, examples.SELF_CARE_TECHNIQUE)
    assert complete["triage"]["complete"] is True
    bundle = fhir_get(client, complete["links"]["self"]).get_json()
    assert _resources(bundle, "ClinicalImpression")[0]["status"] == "completed"


def test_a_plan_made_while_red_flag_questions_are_open_is_a_draft_not_to_start_yet(client):
    open_screen = stored(client, examples.MINIMAL)
    assert open_screen["triage"]["complete"] is False
    assert open_screen["exercise_plan"]["status"] == "awaiting_safety_answers"
    plan = fhir_get(client, open_screen["links"]["exercise_prescription"]).get_json()
    validate(plan)
    assert plan["status"] == "draft"
    assert any("Not to be started yet" in note["text"] for note in plan["note"])
    screened = stored(client, examples.SELF_CARE_TECHNIQUE)
    assert screened["exercise_plan"]["status"] == "ready"
    plan = fhir_get(client, screened["links"]["exercise_prescription"]).get_json()
    assert plan["status"] == "active"
    assert not any("Not to be started yet" in note["text"] for note in plan["note"])


def test_every_condition_carries_the_disclaimer(client):
    record = stored(client, BAKERS_REPORT)
    bundle = fhir_get(client, record["links"]["self"]).get_json()
    plan = fhir_get(client, record["links"]["exercise_prescription"]).get_json()
    conditions = _resources(bundle, "Condition") + plan["contained"]
    assert len(conditions) == 2 * len(record["likely_causes"]) > 0
    for condition in conditions:
        assert record["disclaimer"] in [note["text"] for note in condition["note"]]


@pytest.mark.parametrize(
    ("report", "says"),
    [
        (examples.POSSIBLE_DVT, "Urgent: see a clinician today"),
        ({"pain": {"intensity": 3}, "signs": {"weakness": True}}, "Urgent: see a clinician within"),
        (
            {"pain": {"intensity": 3}, "signs": {"unexplained_weight_loss": True}},
            "Urgent: see a clinician within",
        ),
    ],
    ids=["a clot: today", "weakness: within a day", "weight loss: within two weeks"],
)
def test_the_urgent_level_says_the_time_frame_of_its_red_flag(client, report, says):
    """Rules 2.0.0: the level's words are the red flag's own time frame, never the outer
    limit of the level beside a flag asking for sooner (or later)."""
    record = stored(client, report)
    assert record["triage"]["level"] == "urgent"
    frame = record["triage"]["time_frame"]
    bundle = fhir_get(client, record["links"]["self"]).get_json()
    [risk] = _resources(bundle, "RiskAssessment")
    text = risk["prediction"][0]["outcome"]["text"]
    assert text.startswith(says)
    assert frame["text"].split(":")[0].lower() in text
    assert "at the latest" not in text
    assert "Stop stretching:" in risk["prediction"][0]["rationale"]


def test_rules_1_0_0_records_keep_the_urgent_time_limit_of_their_version(app, client):
    record = stored(client, {**examples.POSSIBLE_DVT, "rules_version": "1.0.0"})
    hours = state(app).rules.get("1.0.0").ruleset.parameters
    hours = hours["urgent_care_within_hours"].value
    bundle = fhir_get(client, record["links"]["self"]).get_json()
    [risk] = _resources(bundle, "RiskAssessment")
    text = risk["prediction"][0]["outcome"]["text"]
    assert f"within {hours} hours at the latest" in text
    assert "sooner where a red flag says so" in text
    assert record["triage"]["complete"] is False
    rationale = risk["prediction"][0]["rationale"]
    assert "Not answered:" in rationale  # as 1.0.0 records always read
    assert "contradict" not in rationale


def test_a_rules_version_without_the_urgent_time_limit_stops_the_start_up_naming_it():
    ruleset = types.SimpleNamespace(version="9.9.9", parameters={})
    with pytest.raises(RuntimeError, match=r"rules 9\.9\.9: .*urgent_care_within_hours"):
        prepare_level_texts([types.SimpleNamespace(ruleset=ruleset)])


# -- Errors --------------------------------------------------------------------------------------


def test_a_missing_record_asked_for_as_fhir_is_a_404_outcome(client):
    for path in (
        "/v1/exercise-prescriptions/0190a0a0-0000-7000-8000-000000000000",
        "/v1/assessments/0190a0a0-0000-7000-8000-000000000000",
    ):
        outcome = _outcome(fhir_get(client, path), 404)
        assert outcome["issue"][0]["code"] == "not-found"
        assert _outcome(client.get(f"{path}/fhir"), 404)["issue"][0]["code"] == "not-found"


def test_no_api_key_asked_for_as_fhir_is_a_401_outcome(anonymous_client):
    outcome = _outcome(anonymous_client.get("/v1/questionnaire"), 401)
    assert outcome["issue"][0]["code"] == "login"
    outcome = _outcome(fhir_get(anonymous_client, "/v1/assessments/x"), 401)
    assert outcome["issue"][0]["code"] == "login"


def test_json_clients_still_get_problem_details(client):
    response = client.get("/v1/assessments/0190a0a0-0000-7000-8000-000000000000")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
