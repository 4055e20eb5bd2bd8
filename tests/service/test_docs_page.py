"""The /docs page sets no traps: no fixed Idempotency-Key for "Try it out" to send, a fresh one
filled in by the page instead, and an Authorize dialog that says which key goes where and how to
get one. tests/service/test_browser_docs.py tries the same in a real browser."""

from __future__ import annotations

import json
import re

import pytest

from service.docs import SWAGGER_UI_ENDPOINT, docs_page
from service.record_creation import IDEMPOTENCY_HEADER

# Where an OpenAPI parameter (or its schema) can carry a value Swagger UI fills in by itself.
FIXED_VALUE_KEYS = ("example", "examples", "default", "enum", "const")


@pytest.fixture(scope="module")
def spec(app):
    return app.test_client().get("/openapi.json").get_json()


def _idempotency_parameters(node, where="#"):
    """Every parameter object named Idempotency-Key anywhere in the document, with its place."""
    if isinstance(node, dict):
        if str(node.get("name", "")).lower() == IDEMPOTENCY_HEADER.lower() and "in" in node:
            yield where, node
        for key, value in node.items():
            yield from _idempotency_parameters(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _idempotency_parameters(value, f"{where}/{index}")


def test_no_idempotency_key_in_the_spec_has_a_fixed_value(spec):
    found = list(_idempotency_parameters(spec))
    # The three creating operations: assess, exercise prescriptions and reassessments.
    assert len(found) >= 3, found
    for where, parameter in found:
        assert parameter["in"] == "header", where
        fixed = [key for key in FIXED_VALUE_KEYS if key in parameter]
        fixed += [f"schema.{key}" for key in FIXED_VALUE_KEYS if key in parameter["schema"]]
        assert fixed == [], f"{where} gives the key a fixed value: {fixed}"
        # It says what it is for, and that /docs fills a fresh one in.
        description = parameter["description"]
        assert "retry" in description, where
        assert "fresh UUID" in description, where
        assert "/docs" in description, where


def test_the_docs_page_fills_in_a_fresh_key_when_the_field_is_empty(app, anonymous_client):
    assert app.view_functions[SWAGGER_UI_ENDPOINT] is docs_page
    page = anonymous_client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"var IDEMPOTENCY_HEADER = {json.dumps(IDEMPOTENCY_HEADER)};" in html
    assert "config.requestInterceptor = addIdempotencyKey;" in html
    # Random per Execute, and only when the request carries no key of its own.
    assert "crypto.getRandomValues(new Uint8Array(16))" in html
    assert re.search(r"if \(!given && takesIdempotencyKey\(request\)\)", html)
    # Still Swagger UI on this service's spec, started once the page has loaded.
    assert 'var config = {url: "/openapi.json"' in html
    assert "window.ui = SwaggerUIBundle(config);" in html


def test_the_authorize_dialog_says_which_key_is_for_what_and_how_to_get_one(spec):
    schemes = spec["components"]["securitySchemes"]
    api_key, cds = schemes["apiKey"]["description"], schemes["cdsClientJwt"]["description"]
    for description in (api_key, cds):
        # Swagger UI renders Markdown with HTML: an angle-bracketed placeholder vanishes.
        assert re.search("[<>]", description) is None, description
    assert "every /v1 endpoint" in api_key
    assert "./scripts/run" in api_key
    assert "flask --app service.wsgi keys create --tenant NAME" in api_key
    assert "/cds-services" in cds
    assert "JWT" in cds
    assert "not needed for /v1" in cds
