"""Popliteal's HTTP service: a thin Flask shell over the pure rules core.

Routes load and validate arguments (schemas), call the core (rules), and write the result out.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, g, request

from rules import load_library
from schemas.report import (
    ConditionsPrescriptionRequestSchema,
    ReportPrescriptionRequestSchema,
    SymptomReportSchema,
    strict_schema_names,
)
from service.config import Config, config_from_environment
from service.http import PoplitealApi, problem, register_error_handlers

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
JSON_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))


def create_app(config: type[Config] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(config or config_from_environment())

    # Rules load once, at start-up; a defective rule file stops the service here, naming the
    # file and key, rather than failing requests later.
    library = load_library()

    api = PoplitealApi(app, spec_kwargs=_spec_kwargs(library))
    app.extensions["popliteal"] = {"rules": library, "api": api}
    register_error_handlers(app)

    from service.api import assessment, catalogue, health
    from service.docs import docs_assets

    api.register_blueprint(assessment.blp)
    api.register_blueprint(catalogue.blp)
    api.register_blueprint(health.blp)
    app.register_blueprint(docs_assets)
    _finish_spec(api)

    @app.before_request
    def assign_request_id():
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if REQUEST_ID.match(supplied) else uuid.uuid4().hex

    @app.before_request
    def require_json_body():
        # Only for routes that take the method: elsewhere the answer is 404 or 405.
        if (
            request.method in JSON_BODY_METHODS
            and request.routing_exception is None
            and not request.is_json
        ):
            return problem(415)
        return None

    @app.after_request
    def add_headers(response):
        response.headers["X-Request-ID"] = getattr(g, "request_id", "")
        version = getattr(g, "rules_version", None)
        if version:
            response.headers["X-Rules-Version"] = version
        return response

    return app


def _spec_kwargs(library) -> dict:
    return {
        "info": {
            "description": (
                "Clinical decision support for **pain behind the knee when stretching the "
                "hamstrings**: triage with red flags, likely causes with their evidence, advice, "
                "exercise prescriptions, and the questions still worth asking. Every rule and "
                "number carries a source.\n\n"
                "**Not a diagnosis.** Results are decision support for people and clinicians; "
                "every assessment carries a disclaimer.\n\n"
                "Errors are RFC 9457 problem details (`application/problem+json`). Every "
                "response carries `X-Request-ID`; responses that used the rules carry "
                f"`X-Rules-Version`. Rules versions loaded: {', '.join(library.versions)}."
            ),
            "license": {"name": "Proprietary"},
        },
        "servers": [{"url": "/", "description": "This server"}],
    }


def _finish_spec(api: PoplitealApi) -> None:
    """Say in the spec what marshmallow and flask-smorest leave out."""
    # Error responses are problem+json, not application/json.
    for response in api.spec.components.responses.values():
        content = response.get("content")
        if content and "application/json" in content:
            content["application/problem+json"] = content.pop("application/json")
    # Bodies parsed in the view (not by @blp.arguments) are documented by reference.
    api.spec.components.schema("SymptomReport", schema=SymptomReportSchema)
    api.spec.components.schema("ReportPrescriptionRequest", schema=ReportPrescriptionRequestSchema)
    api.spec.components.schema(
        "ConditionsPrescriptionRequest", schema=ConditionsPrescriptionRequestSchema
    )
    # Request schemas refuse unknown keys (a misspelt safety field must not pass unnoticed).
    strict = strict_schema_names()
    for name, schema in api.spec.components.schemas.items():
        if name in strict:
            schema["additionalProperties"] = False
