"""Bad input: a clear problem+json error with the right status, never a 500 or a stack trace."""

from __future__ import annotations

import pytest

VALID = {"pain": {"intensity": 3}}
ENDPOINTS = ["/v1/assess", "/v1/escalation-check"]


def assert_problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["type"]
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"pain": {"intensity": "5"}}, "pain.intensity", "integer"),
        ({"pain": {"intensity": 5.0}}, "pain.intensity", "integer"),
        ({"pain": {"intensity": True}}, "pain.intensity", "integer"),
        ({"pain": {"intensity": 11}}, "pain.intensity", "less than or equal to 10"),
        ({"pain": {"intensity": -1}}, "pain.intensity", "greater than or equal to 0"),
        ({"pain": {"intensity": 3}, "signs": {"swelling": 0}}, "signs.swelling", "boolean"),
        ({"pain": {"intensity": 3}, "signs": {"swelling": "yes"}}, "signs.swelling", "boolean"),
        ({"pain": {"intensity": 3}, "signs": {"swelling": None}}, "signs.swelling", "null"),
        ({"pain": {"intensity": 3}, "signs": {"swollen": True}}, "signs.swollen", "Unknown"),
        ({"pain": {"intensity": 3}, "sings": {}}, "sings", "Unknown"),
        ({"pain": {"intensity": 3, "quality": ["stabbing"]}}, "pain.quality.0", "one of"),
        ({"pain": {"intensity": 3, "quality": ["sharp", "sharp"]}}, "pain.quality", "repeat"),
        ({"pain": {"intensity": 3, "side": "middle"}}, "pain.side", "one of"),
        ({"pain": {"intensity": 3, "duration_days": 3651}}, "pain.duration_days", "less than"),
        ({"pain": {"intensity": 3}, "profile": {"age": 4}}, "profile.age", "greater than"),
        ({"pain": {}}, "pain.intensity", "required"),
        ({}, "pain", "required"),
        ({"pain": {"intensity": 3}, "rules_version": "9.9.9"}, "rules_version", "available"),
        ({"pain": {"intensity": 3}, "rules_version": 1}, "rules_version", "string"),
        ({"pain": "bad"}, "pain", "Invalid input type"),
        ([], "body", "Invalid input type"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(client, endpoint, body, field, fragment):
    problem = assert_problem(client.post(endpoint, json=body), 422)
    assert field in problem["errors"], problem["errors"]
    assert any(fragment.lower() in message.lower() for message in problem["errors"][field])


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"pain": {"intensity": NaN}}', b"[" * 5000, b"\xff\xfe", b'{"pain": }'],
    ids=["truncated", "NaN", "too deep", "not UTF-8", "syntax"],
)
def test_malformed_json_is_400(client, endpoint, raw):
    assert_problem(client.post(endpoint, data=raw, content_type="application/json"), 400)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_content_type_is_415(client, endpoint, content_type):
    kwargs = {"data": b'{"pain": {"intensity": 3}}'}
    if content_type:
        kwargs["content_type"] = content_type
    assert_problem(client.post(endpoint, **kwargs), 415)


def test_json_with_a_vendor_type_is_accepted(client):
    response = client.post(
        "/v1/assess", data=b'{"pain": {"intensity": 3}}', content_type="application/vnd.x+json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_body_over_64_kib_is_413(client, endpoint):
    padding = "x" * (64 * 1024)
    body = f'{{"pain": {{"intensity": 3}}, "pad": "{padding}"}}'.encode()
    assert_problem(client.post(endpoint, data=body, content_type="application/json"), 413)


def test_a_body_just_under_the_limit_is_parsed_not_refused(client):
    padding = "x" * (64 * 1024 - 100)
    body = f'{{"pain": {{"intensity": 3}}, "pad": "{padding}"}}'.encode()
    assert len(body) < 64 * 1024
    problem = assert_problem(
        client.post("/v1/assess", data=body, content_type="application/json"), 422
    )
    assert "pad" in problem["errors"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("get", "/v1/assess", "OPTIONS, POST"),
        ("put", "/v1/escalation-check", "OPTIONS, POST"),
        ("delete", "/v1/exercises", "GET, HEAD, OPTIONS"),
        ("post", "/healthz", "GET, HEAD, OPTIONS"),
    ],
)
def test_wrong_method_is_405_with_allow(client, method, path, allow):
    response = getattr(client, method)(path, json=VALID)
    assert_problem(response, 405)
    assert response.headers["Allow"] == allow


def test_an_unexpected_error_is_a_500_problem_without_details(client, monkeypatch):
    from rules.engine import Evaluator

    def explode(self, report):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(Evaluator, "assess", explode)
    response = client.post("/v1/assess", json=VALID)
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert "retry" in body["detail"]
