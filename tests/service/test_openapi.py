"""The OpenAPI description: committed, complete, and served with an offline Swagger UI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from service import examples
from service.docs import MINIMUM_SWAGGER_UI, swagger_ui_version

SPEC_FILE = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
EXPORT_COMMAND = "flask --app service.wsgi openapi write --format=json openapi/openapi.json"
# What flask-smorest's /docs page loads, all from this service.
SWAGGER_UI_ASSETS = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css")


@pytest.fixture(scope="module")
def spec(app):
    return app.test_client().get("/openapi.json").get_json()


def test_the_committed_spec_matches_the_code(spec):
    committed = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    assert committed == spec, f"openapi/openapi.json is stale: run `{EXPORT_COMMAND}`"


def _walk_properties(schema_name, schema):
    for name, prop in schema.get("properties", {}).items():
        yield f"{schema_name}.{name}", prop


def test_every_schema_field_has_a_description(spec):
    undocumented = [
        path
        for schema_name, schema in spec["components"]["schemas"].items()
        if schema_name != "PaginationMetadata"  # flask-smorest's own, unused here
        for path, prop in _walk_properties(schema_name, schema)
        if not prop.get("description")
    ]
    assert undocumented == []


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_every_operation_is_described(spec):
    for path, method, operation in _operations(spec):
        assert operation.get("summary"), f"{method} {path} has no summary"
        assert operation.get("description"), f"{method} {path} has no description"


def test_every_request_body_has_a_realistic_example(spec):
    bodies = 0
    for path, method, operation in _operations(spec):
        body = operation.get("requestBody")
        if body is None:
            continue
        bodies += 1
        for media_type, content in body["content"].items():
            assert content.get("examples") or content.get("example"), (
                f"{method} {path} {media_type}"
            )
    # assess, escalation check, interview (JSON and FHIR), prescriptions, reassessments, CDS
    # service and feedback
    assert bodies == 8


def test_the_main_responses_have_examples(spec):
    for path in ("/v1/assess", "/v1/escalation-check", "/v1/exercise-prescriptions"):
        content = spec["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
        assert content["example"]["rules_version"] == "2.0.0"


# Not errors: readiness answers its checks, with 503 while a check fails.
STATUS_DOCUMENTS = {("/readyz", "503")}


def test_errors_are_documented_as_problem_details_or_for_fhir_clients_operation_outcomes(spec):
    for path, method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if (path, status) in STATUS_DOCUMENTS:
                assert "Readiness" in str(response), response
                continue
            if status.startswith(("4", "5")) or status == "default":
                if "$ref" in response:
                    name = response["$ref"].rsplit("/", 1)[-1]
                    response = spec["components"]["responses"][name]
                content = response["content"]
                assert list(content) == ["application/problem+json", "application/fhir+json"], (
                    f"{method} {path} {status}"
                )
                assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
                assert content["application/fhir+json"]["schema"]["$ref"].endswith(
                    "/FhirOperationOutcome"
                )


def test_request_objects_are_closed(spec):
    schemas = spec["components"]["schemas"]
    for name in (
        "SymptomReport",
        "PainReport",
        "SignsReport",
        "ConditionsPrescriptionRequest",
        "AssessRequest",
        "AssessmentPrescriptionRequest",
        "ReassessmentRequest",
        "Subject",
    ):
        assert schemas[name]["additionalProperties"] is False, name


def test_swagger_ui_loads_only_local_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(urls) == [f"/docs/assets/{name}" for name in SWAGGER_UI_ASSETS]
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.data) > 1000, url
    assert '"/openapi.json"' in html
    # No address of another host anywhere in the page: not as an asset, not in Swagger UI's
    # configuration (the validator badge, which would call validator.swagger.io, is off).
    assert re.findall(r"\b(?:https?|wss?|ftp):|=\s*[\"']//", html, flags=re.IGNORECASE) == []
    assert '"validatorUrl": null' in html


def test_the_served_swagger_ui_is_not_older_than_the_pinned_minimum(anonymous_client):
    bundle = anonymous_client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    served = swagger_ui_version(bundle.get_data(as_text=True))
    assert served >= MINIMUM_SWAGGER_UI, (
        f"/docs serves Swagger UI {'.'.join(map(str, served))}, older than the minimum "
        f"{'.'.join(map(str, MINIMUM_SWAGGER_UI))} (service/docs.py): upgrade flask-swagger-ui"
    )


def test_the_swagger_ui_version_is_read_from_the_bundle_and_an_old_one_is_too_old():
    # As Swagger UI 4.15.5's (swagger-ui-bundle 1.1.0's) minified bundle declares itself.
    old_bundle = (
        'const{GIT_DIRTY:mn,GIT_COMMIT:gn,PACKAGE_VERSION:vn,BUILD_TIME:yn}={PACKAGE_VERSION:"4.15.5",'
        'GIT_COMMIT:"gc858a26",GIT_DIRTY:!0,BUILD_TIME:"Wed, 09 Nov 2022 06:53:00 GMT"};'
    )
    assert swagger_ui_version(old_bundle) == (4, 15, 5)
    assert swagger_ui_version(old_bundle) < MINIMUM_SWAGGER_UI
    assert swagger_ui_version('{PACKAGE_VERSION:"5.100.2",GIT_COMMIT:"g0"}') == (5, 100, 2)
    with pytest.raises(ValueError, match="no PACKAGE_VERSION"):
        swagger_ui_version("window.SwaggerUIBundle = function () {};")


def test_every_v1_operation_needs_a_key_and_documents_what_that_can_answer(spec):
    for path, method, operation in _operations(spec):
        if path.startswith("/v1/"):
            assert operation["security"] == [{"apiKey": []}], f"{method} {path}"
            assert {"401", "429", "503"} <= set(operation["responses"]), f"{method} {path}"
        elif path.startswith("/cds-services/"):
            # CDS Hooks calls carry the CDS client's JWT, not an API key.
            assert operation["security"] == [{"cdsClientJwt": []}], f"{method} {path}"
            assert {"400", "401", "404"} <= set(operation["responses"]), f"{method} {path}"
        else:
            assert "security" not in operation, f"{method} {path}"
    scheme = spec["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


# --- A spec that generates idiomatic clients ---------------------------------------------------


def _schemas_in(document):
    """Every dict of the document that may be a schema (examples are data: left out)."""
    if isinstance(document, dict):
        yield document
        for key, value in document.items():
            if key not in ("example", "examples"):
                yield from _schemas_in(value)
    elif isinstance(document, list):
        for value in document:
            yield from _schemas_in(value)


def _reference(prop):
    """The component a property refers to, directly or through a one-item allOf."""
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    (only,) = prop["allOf"]
    return only["$ref"].rsplit("/", 1)[-1]


SHARED_ENUMERATIONS = (
    "TriageLevel",
    "TimeFrameCode",
    "PlanStatus",
    "ExercisePhase",
    "PrescriptionBasis",
    "RulesVersionNumber",
)


def _enum(schema) -> tuple:
    return tuple(value for value in schema.get("enum", ()) if value is not None)


def test_each_shared_enumeration_is_one_component_that_every_field_refers_to(spec):
    schemas = spec["components"]["schemas"]
    levels = ["self_care", "see_professional", "urgent", "emergency"]
    assert schemas["TriageLevel"]["enum"] == levels
    leveled = [
        ("Triage", "level"),
        ("RedFlag", "level"),
        ("Escalation", "level"),
        ("AssessmentSummary", "level"),
        ("MissingInformation", "could_raise_level_to"),
        ("LevelChange", "from"),
        ("LevelChange", "to"),
    ]
    for schema, field in leveled:
        assert _reference(schemas[schema]["properties"][field]) == "TriageLevel", (schema, field)
    assert _reference(schemas["PlanItem"]["properties"]["phase"]) == "ExercisePhase"
    assert _reference(schemas["Exercise"]["properties"]["kind"]) == "ExercisePhase"
    assert _reference(schemas["ExercisePlan"]["properties"]["status"]) == "PlanStatus"
    assert _reference(schemas["RedFlag"]["properties"]["time_frame"]) == "TimeFrameCode"
    # No copy of a shared list is left inline anywhere, in a schema or a parameter.
    shared = {tuple(schemas[name]["enum"]) for name in SHARED_ENUMERATIONS}
    others = {name: s for name, s in schemas.items() if name not in SHARED_ENUMERATIONS}
    inline = [s["enum"] for s in _schemas_in([others, spec["paths"]]) if _enum(s) in shared]
    assert inline == []


def test_a_field_that_may_be_null_is_its_component_or_null(spec):
    schemas = spec["components"]["schemas"]
    plan = schemas["Assessment"]["properties"]["exercise_plan"]
    assert plan["nullable"] is True
    assert plan["allOf"] == [{"$ref": "#/components/schemas/ExercisePlan"}]
    assert "exercise_plan" in schemas["Assessment"]["required"]
    # apispec's "anyOf the component or an empty nullable object" is gone everywhere: clients
    # generated from it have an empty class for the null.
    empty_objects = [
        schema
        for schema in _schemas_in(spec)
        if schema.get("type") == "object"
        and schema.get("nullable")
        and not schema.get("properties")
        and not schema.get("additionalProperties")
    ]
    assert empty_objects == []


def test_addresses_are_uris(spec):
    formats = {schema.get("format") for schema in _schemas_in(spec)}
    assert "url" not in formats
    schemas = spec["components"]["schemas"]
    assert schemas["HookRequest"]["properties"]["fhirServer"]["format"] == "uri"
    assert schemas["Source"]["properties"]["url"]["format"] == "uri"


def test_no_operation_with_a_json_body_documents_a_query_parameter(spec):
    """A JSON body's settings (store, rules_version) go in the body; a query parameter beside
    it is a 422. With a QuestionnaireResponse body they are query parameters, and the FHIR
    body's description says so."""
    for path, method, operation in _operations(spec):
        body = operation.get("requestBody", {}).get("content", {})
        if "application/json" in body:
            queries = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            assert queries == [], f"{method} {path}"
    assess = spec["paths"]["/v1/assess"]["post"]["requestBody"]["description"]
    assert "`store=false`" in assess
    assert "`rules_version`" in assess


def test_a_query_parameter_beside_a_json_body_is_refused(client):
    response = client.post("/v1/assess?store=false", json=examples.MINIMAL)
    assert response.status_code == 422
    assert "store" in response.get_json()["errors"]
