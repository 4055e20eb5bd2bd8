"""Popliteal's HTTP service: a thin Flask shell over the pure rules core.

Routes load and validate arguments (schemas), call the core (rules), and write the result out.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, g, request

from rules import load_library
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
    _document_problem_media_type(api)

    @app.before_request
    def assign_request_id():
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if REQUEST_ID.match(supplied) else uuid.uuid4().hex

    @app.before_request
    def require_json_body():
        if request.method in JSON_BODY_METHODS and not request.is_json:
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


def _document_problem_media_type(api: PoplitealApi) -> None:
    """flask-smorest documents its error responses as application/json; ours are problem+json."""
    responses = api.spec.components.responses
    for response in responses.values():
        content = response.get("content")
        if content and "application/json" in content:
            content["application/problem+json"] = content.pop("application/json")
