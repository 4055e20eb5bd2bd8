"""Popliteal's HTTP service: a thin Flask shell over the pure rules core.

Routes load and validate arguments (schemas), call the core (rules), and write the result out.
"""

from __future__ import annotations

import os
import uuid

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from rules import load_library
from schemas.report import (
    AssessmentPrescriptionRequestSchema,
    AssessRequestSchema,
    ConditionsPrescriptionRequestSchema,
    ReportPrescriptionRequestSchema,
    SymptomReportSchema,
    strict_schema_names,
)
from service.auth import failed_authentication_budget, install_api_key_check
from service.cds_auth import TokenVerifier, load_clients
from service.cli import register_commands
from service.config import Config, config_from_environment
from service.fhir import prepare_level_texts, response_reader
from service.http import (
    FHIR_RESOURCES,
    FHIR_RESPONSES,
    PoplitealApi,
    fhir_schema,
    problem,
    register_error_handlers,
)
from service.hygiene import install_cors, install_security_headers, parse_origins
from service.limits import check_rate_limits, install_rate_limits
from service.logs import REQUEST_ID
from service.observability import install_request_observation
from service.pseudonyms import Pseudonymizer
from service.storage import Storage

JSON_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
HTTP_METHODS = frozenset(("get", "put", "post", "delete", "options", "head", "patch", "trace"))


def create_app(config: type[Config] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(config or config_from_environment())

    # Configuration mistakes stop the service at start-up, naming the setting.
    cors_origins = parse_origins(app.config["CORS_ORIGINS"])
    check_rate_limits(app.config)
    database_url = app.config["DATABASE_URL"]
    if database_url is not None and not database_url.strip():
        raise RuntimeError(
            "DATABASE_URL is set but empty: set it to the database's URL (e.g. "
            "postgresql+psycopg://user:password@host:5432/popliteal), or unset it for the "
            "embedded SQLite file"
        )
    if app.config["CDS_CLIENTS_FILE"] and not app.config["CDS_BASE_URL"]:
        raise RuntimeError(
            "POPLITEAL_CDS_CLIENTS is set but POPLITEAL_CDS_BASE_URL is not: every CDS call "
            "would be refused, since a token's aud must be "
            "{POPLITEAL_CDS_BASE_URL}/cds-services/{id}. Set POPLITEAL_CDS_BASE_URL to this "
            "service's public URL, or unset POPLITEAL_CDS_CLIENTS"
        )
    if app.config["PROXY_HOPS"]:
        # Behind nginx or an ingress: the client's address (for the wrong-key budget) and
        # scheme come from the proxy's X-Forwarded-* headers, trusted for this many hops only.
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)

    # Rules load once, at start-up; a defective rule file stops the service here, naming the
    # file and key, rather than failing requests later.
    library = load_library()
    prepare_level_texts(library)

    # Connections open lazily, in each worker process, on first use.
    storage = Storage(
        database_url or _embedded_database_url(app),
        statement_timeout_ms=app.config["DB_STATEMENT_TIMEOUT_MS"],
    )

    # CDS clients are read at start-up: a defective clients file stops the service here.
    cds_verifier = TokenVerifier(
        load_clients(app.config["CDS_CLIENTS_FILE"], app.config["CDS_ALLOW_LOCAL_JWKS"]),
        app.config["CDS_BASE_URL"],
        app.config["CDS_TOKEN_LEEWAY_SECONDS"],
    )

    pseudonymizer = None
    if cds_verifier.configured:
        secret = app.config["CDS_SUBJECT_SECRET"]
        try:
            pseudonymizer = Pseudonymizer(secret or "")
        except ValueError as error:
            raise RuntimeError(
                f"POPLITEAL_CDS_SUBJECT_SECRET: CDS clients are configured, so {error} (patients' "
                "identifiers are stored only as keyed hashes)"
            ) from None

    # The intake Questionnaire and its response reader are built once, here.
    response_reader()

    api = PoplitealApi(app, spec_kwargs=_spec_kwargs(library))
    app.extensions["popliteal"] = {
        "rules": library,
        "api": api,
        "storage": storage,
        "cds_verifier": cds_verifier,
        # Failed CDS authentications per address: past it, only keys already fetched are
        # used and failures answer 429 (a valid token is still accepted).
        "cds_budget": failed_authentication_budget(app.config, "popliteal-cds-failures"),
        "pseudonymizer": pseudonymizer,
    }
    register_error_handlers(app)
    register_commands(app)

    from service.api import assessment, catalogue, cds_hooks, fhir, health, reassessments, records
    from service.docs import docs_assets

    api.register_blueprint(assessment.blp)
    api.register_blueprint(records.blp)
    api.register_blueprint(reassessments.blp)
    api.register_blueprint(catalogue.blp)
    api.register_blueprint(fhir.blp)
    api.register_blueprint(health.blp)
    api.register_blueprint(cds_hooks.blp)
    app.register_blueprint(docs_assets)
    _finish_spec(api)

    # Order matters: the clock and the request id first (every answer carries the id, every
    # request is logged and measured), then CORS preflights (they carry no key), then the key
    # (the rate limit counts per key), then the limit, then the body's media type.
    install_request_observation(app)

    @app.before_request
    def assign_request_id():
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if REQUEST_ID.match(supplied) else uuid.uuid4().hex

    install_cors(app, cors_origins)
    install_security_headers(app)
    install_api_key_check(app, storage.keys)
    install_rate_limits(app)

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


def _embedded_database_url(app: Flask) -> str:
    """The zero-set-up default: a SQLite file in the instance folder."""
    return "sqlite:///" + os.path.join(app.instance_path, "popliteal.sqlite3")


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


# Operations that answer FHIR as well as JSON, by content negotiation (Accept).
FHIR_ALTERNATIVES = {
    ("/v1/assessments/{assessment_id}", "get"): "Bundle",
    ("/v1/exercise-prescriptions/{prescription_id}", "get"): "CarePlan",
}


def _finish_spec(api: PoplitealApi) -> None:
    """Say in the spec what marshmallow and flask-smorest leave out."""
    # Error responses are problem+json, not application/json; to a client that speaks FHIR
    # (Accept or Content-Type application/fhir+json), a FHIR OperationOutcome.
    for name in FHIR_RESOURCES:
        api.spec.components.schema(f"Fhir{name}", component=fhir_schema(name))
    for response in api.spec.components.responses.values():
        content = response.get("content")
        if content and "application/json" in content:
            content["application/problem+json"] = content.pop("application/json")
            content.update(FHIR_RESPONSES["OperationOutcome"])
    # Bodies parsed in the view (not by @blp.arguments) are documented by reference.
    api.spec.components.schema("SymptomReport", schema=SymptomReportSchema)
    api.spec.components.schema("AssessRequest", schema=AssessRequestSchema)
    api.spec.components.schema(
        "AssessmentPrescriptionRequest", schema=AssessmentPrescriptionRequestSchema
    )
    api.spec.components.schema("ReportPrescriptionRequest", schema=ReportPrescriptionRequestSchema)
    api.spec.components.schema(
        "ConditionsPrescriptionRequest", schema=ConditionsPrescriptionRequestSchema
    )
    # Request schemas refuse unknown keys (a misspelt safety field must not pass unnoticed).
    strict = strict_schema_names()
    for name, schema in api.spec.components.schemas.items():
        if name in strict:
            schema["additionalProperties"] = False
    # Every /v1 operation needs an API key; health, readiness and the docs do not. Swagger UI
    # shows an Authorize button for this scheme.
    api.spec.components.security_scheme(
        "apiKey",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: Authorization: Bearer <key>. Create one with "
            "`flask --app service.wsgi keys create --tenant NAME`.",
        },
    )
    api.spec.components.security_scheme(
        "cdsClientJwt",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "CDS Hooks 2.0: a JWT signed ES384 or RS384 by a configured CDS "
            "client (iss on the allow-list, aud = this service endpoint, exp within five "
            "minutes, a new jti each call).",
        },
    )
    for path, operations in api.spec._paths.items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            if path.startswith("/v1/"):
                operation["security"] = [{"apiKey": []}]
            alternative = FHIR_ALTERNATIVES.get((path, method))
            if alternative:
                operation["responses"]["200"]["content"].update(FHIR_RESPONSES[alternative])
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if "application/problem+json" in content:
                    content.update(FHIR_RESPONSES["OperationOutcome"])
