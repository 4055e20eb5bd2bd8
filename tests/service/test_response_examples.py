"""Every answer the spec documents has an example, and every example is an answer the service
could give: it validates against the response's marshmallow schema and against the spec's own
JSON Schema for it, and a FHIR example against the R4 resource model and its bindings.

The examples are made by the service itself (``service.response_examples``), so the last test
checks that they are what it really answers for the same request.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonschema
import pydantic
import pytest
from apispec.ext.marshmallow import MarshmallowPlugin

from service import response_examples
from tests.service.fhir_client import validate as validate_fhir

METHODS = ("get", "post", "put", "patch", "delete")
FHIR_JSON = "application/fhir+json"
# Operations whose every success is an empty answer: the erasures (204) and CDS feedback.
NO_CONTENT = [
    "DELETE /v1/assessments/{assessment_id}",
    "DELETE /v1/exercise-prescriptions/{prescription_id}",
    "POST /cds-services/{service_id}/feedback",
]
# What a stored record carries besides its content, and so differs from one request to another.
RECORD_HEAD = ("id", "created_at", "request_id", "links", "assessment_id", "request")


@pytest.fixture(scope="module")
def spec(app) -> dict[str, Any]:
    return app.test_client().get("/openapi.json").get_json()


@pytest.fixture(scope="module")
def marshmallow_schemas(app) -> dict[str, type]:
    """The spec's component names and the marshmallow schemas they were made from."""
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    plugin = next(p for p in api.spec.plugins if isinstance(p, MarshmallowPlugin))
    # A reference key starts with the schema class (then only, exclude and the like: unused).
    return {name: key[0] for key, name in plugin.converter.refs.items()}


def _operations(spec) -> Iterator[tuple[str, dict]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def _answers(spec) -> Iterator[tuple[str, str, dict, list]]:
    """(operation status media type, media type, schema, example values) of every success
    answer with content."""
    for label, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            for media_type, media in response.get("content", {}).items():
                values = [media["example"]] if "example" in media else []
                values += [named["value"] for named in media.get("examples", {}).values()]
                yield f"{label} {status} {media_type}", media_type, media["schema"], values


def _as_json_schema(schema: Any) -> Any:
    """OpenAPI 3.0's nullable in JSON Schema's words: the schema, or null."""
    if isinstance(schema, list):
        return [_as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {
        key: value if key in ("example", "examples", "enum") else _as_json_schema(value)
        for key, value in schema.items()
        if key != "nullable"
    }
    if schema.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def _spec_errors(spec, schema: dict, value: Any) -> list[str]:
    # The components go beside the schema, so that its #/components/... references resolve.
    document = {"allOf": [_as_json_schema(schema)]}
    document["components"] = _as_json_schema(copy.deepcopy(spec["components"]))
    validator = jsonschema.Draft4Validator(document)
    errors = validator.iter_errors(value)
    return [f"{list(error.absolute_path)}: {error.message}" for error in errors]


def test_every_operation_documents_an_example_of_every_success(spec):
    answers = list(_answers(spec))
    assert [label for label, _, _, values in answers if not values] == []
    with_content = {" ".join(label.split()[:2]) for label, *_ in answers}
    without = sorted(label for label, _ in _operations(spec) if label not in with_content)
    assert without == NO_CONTENT
    # Twenty operations answer something; some in two media types or with two statuses.
    assert len(with_content) == len(list(_operations(spec))) - len(NO_CONTENT) >= 20


def test_every_example_validates_against_the_spec_and_the_response_schema(
    spec, marshmallow_schemas
):
    checked = 0
    for label, media_type, schema, values in _answers(spec):
        name = schema.get("$ref", "").rsplit("/", 1)[-1]
        for value in values:
            assert _spec_errors(spec, schema, value) == [], label
            if media_type == FHIR_JSON:
                validate_fhir(value)
            elif name in marshmallow_schemas:
                assert marshmallow_schemas[name]().validate(value) == {}, label
            checked += 1
    assert checked >= 25


def test_the_examples_can_fail(spec, marshmallow_schemas):
    """The checks above notice an example that is not an answer."""
    broken = copy.deepcopy(response_examples.STORED_ASSESSMENT)
    broken["triage"]["level"] = "very_urgent"
    schema = {"$ref": "#/components/schemas/AssessmentRecord"}
    assert _spec_errors(spec, schema, broken) != []
    assert marshmallow_schemas["AssessmentRecord"]().validate(broken) != {}
    del broken["triage"]["level"]
    assert _spec_errors(spec, schema, broken) != []
    unplanned = {**response_examples.STORED_ASSESSMENT, "exercise_plan": None}
    assert _spec_errors(spec, schema, unplanned) == []
    unattached = {k: v for k, v in response_examples.CARE_PLAN.items() if k != "subject"}
    with pytest.raises(pydantic.ValidationError, match="subject"):
        validate_fhir(unattached)


def test_the_cds_card_offers_a_valid_care_plan():
    for card in response_examples.CDS_CARDS["cards"]:
        for suggestion in card["suggestions"]:
            for action in suggestion["actions"]:
                validate_fhir(action["resource"])


def test_the_stored_examples_are_what_the_service_stores(client):
    example = response_examples.STORED_ASSESSMENT
    created = client.post("/v1/assess", json={**example["report"], "subject": example["subject"]})
    assert created.status_code == 201, created.get_json()
    answer = created.get_json()
    assert _content(answer) == _content(example)
    plan = client.get(answer["links"]["exercise_prescription"]).get_json()
    assert _content(plan) == _content(response_examples.STORED_PRESCRIPTION)
    page = client.get("/v1/assessments", query_string={"limit": 1}).get_json()
    assert _content(page["items"][0]) == _content(response_examples.ASSESSMENT_PAGE["items"][0])


def _content(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in RECORD_HEAD}
