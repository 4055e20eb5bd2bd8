"""FHIR content negotiation as the FHIR R4 specification writes it
(https://hl7.org/fhir/R4/http.html#mime-type and #parameters): the fhirVersion parameter of
Accept and Content-Type, the older application/json+fhir media type, and the _format query
parameter, on every address that serves FHIR."""

from __future__ import annotations

import pytest

from tests.service.fhir_client import answer_questionnaire, validate

FHIR = "application/fhir+json"
PROBLEM = "application/problem+json"
REPORT = {
    "pain": {"intensity": 4, "side": "left", "locations": ["behind_knee"]},
    "signs": {"lump_behind_knee": True, "stiffness": True, "swelling": True},
    "history": {"arthritis": True},
}

# (address, whether it also serves plain JSON, the FHIR resource it serves)
ENDPOINTS = {
    "assessment": ("{assessment}", True, "Bundle"),
    "assessment/fhir": ("{assessment}/fhir", False, "Bundle"),
    "prescription": ("{prescription}", True, "CarePlan"),
    "prescription/fhir": ("{prescription}/fhir", False, "CarePlan"),
    "questionnaire": ("/v1/questionnaire", False, "Questionnaire"),
}
NEGOTIATED = [name for name, (_, both, _) in ENDPOINTS.items() if both]


@pytest.fixture(scope="module")
def addresses(tenant) -> dict[str, str]:
    response = tenant.client.post("/v1/assess", json=REPORT)
    assert response.status_code == 201, response.get_json()
    links = response.get_json()["links"]
    return {"assessment": links["self"], "prescription": links["exercise_prescription"]}


def _path(name: str, addresses: dict[str, str]) -> str:
    return ENDPOINTS[name][0].format(**addresses)


def _is_fhir(response, resource: str) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == FHIR
    body = response.get_json()
    assert body["resourceType"] == resource
    validate(body)


def _is_refusal(response, status: int, *named: str) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    # The client said it cannot read an R4 OperationOutcome: the problem shape.
    assert response.mimetype == PROBLEM
    detail = response.get_json()["detail"]
    for words in named:
        assert words in detail, detail
    return detail


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize(
    "accept",
    [
        "application/fhir+json; fhirVersion=4.0",
        "application/fhir+json;fhirVersion=4.0.1",
        "Application/FHIR+JSON; fhirversion=4.0",
        "application/json+fhir",
        "application/json+fhir; fhirVersion=4.0",
        "application/fhir+json; fhirVersion=3.0, application/fhir+json; fhirVersion=4.0; q=0.9",
    ],
)
def test_r4_asked_for_by_accept_is_served(client, addresses, name, accept):
    response = client.get(_path(name, addresses), headers={"Accept": accept})
    _is_fhir(response, ENDPOINTS[name][2])


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize("version", ["3.0", "1.0.2", "4.3", "5.0.0"])
def test_another_fhir_version_is_a_406_naming_the_versions_served(client, addresses, name, version):
    accept = f"application/fhir+json; fhirVersion={version}"
    response = client.get(_path(name, addresses), headers={"Accept": accept})
    _is_refusal(response, 406, f"fhirVersion {version}", "4.0 or 4.0.1")


@pytest.mark.parametrize("name", NEGOTIATED)
def test_another_version_with_plain_json_also_acceptable_gets_the_json(client, addresses, name):
    accept = "application/fhir+json; fhirVersion=3.0, application/json; q=0.5"
    response = client.get(_path(name, addresses), headers={"Accept": accept})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "resourceType" not in response.get_json()


@pytest.mark.parametrize("name", NEGOTIATED)
def test_without_a_fhir_accept_the_json_record_is_the_default(client, addresses, name):
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/json"}):
        response = client.get(_path(name, addresses), headers=headers)
        assert response.mimetype == "application/json", headers


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize(
    "format_",
    [
        "json",
        "application/json",
        "application/fhir+json",
        "application/json+fhir",
        "application/fhir+json; fhirVersion=4.0",
    ],
)
def test_format_asks_for_fhir_json_whatever_accept_says(client, addresses, name, format_):
    response = client.get(
        _path(name, addresses),
        query_string={"_format": format_},
        headers={"Accept": "application/json"},
    )
    _is_fhir(response, ENDPOINTS[name][2])


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize(
    "format_",
    [
        "xml",
        "application/fhir+xml",
        "text/xml",
        "ttl",
        "html",
        "application/fhir+json; fhirVersion=3.0",
    ],
)
def test_format_naming_what_is_not_served_is_a_406(client, addresses, name, format_):
    response = client.get(_path(name, addresses), query_string={"_format": format_})
    _is_refusal(response, 406, "4.0 or 4.0.1", "_format=json")


def test_a_missing_record_asked_for_with_fhir_version_is_still_a_404_outcome(client):
    path = "/v1/assessments/0190a0a0-0000-7000-8000-000000000000"
    response = client.get(path, headers={"Accept": "application/fhir+json; fhirVersion=4.0"})
    assert response.status_code == 404
    assert response.mimetype == FHIR
    assert response.get_json()["resourceType"] == "OperationOutcome"


# -- FHIR bodies --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def questionnaire_response(tenant) -> dict:
    questionnaire = tenant.client.get("/v1/questionnaire").get_json()
    return answer_questionnaire(questionnaire, {"pain.intensity": 3})


def _post(client, body: dict, content_type: str):
    return client.post("/v1/assess?store=false", json=body, content_type=content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/fhir+json; fhirVersion=4.0",
        "application/fhir+json; fhirVersion=4.0.1",
        "application/json+fhir",
        "application/json+fhir; fhirVersion=4.0",
    ],
)
def test_an_r4_questionnaire_response_is_read_under_either_media_type(
    client, questionnaire_response, content_type
):
    plain = _post(client, questionnaire_response, FHIR)
    response = _post(client, questionnaire_response, content_type)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["triage"] == plain.get_json()["triage"]


@pytest.mark.parametrize("version", ["3.0", "5.0"])
def test_a_body_of_another_fhir_version_is_a_415(client, questionnaire_response, version):
    response = _post(client, questionnaire_response, f"{FHIR}; fhirVersion={version}")
    _is_refusal(response, 415, f"fhirVersion={version}", "4.0 or 4.0.1")


def test_the_spec_documents_format_and_the_406_where_fhir_is_served(app):
    spec = app.test_client().get("/openapi.json").get_json()
    served = {
        (path, method)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method != "parameters"
        and FHIR in operation.get("responses", {}).get("200", {}).get("content", {})
    }
    assert {
        ("/v1/assessments/{assessment_id}", "get"),
        ("/v1/assessments/{assessment_id}/fhir", "get"),
        ("/v1/exercise-prescriptions/{prescription_id}", "get"),
        ("/v1/exercise-prescriptions/{prescription_id}/fhir", "get"),
        ("/v1/questionnaire", "get"),
    } <= served
    for path, method in served:
        operation = spec["paths"][path][method]
        assert "_format" in [parameter["name"] for parameter in operation["parameters"]]
        assert PROBLEM in operation["responses"]["406"]["content"]
