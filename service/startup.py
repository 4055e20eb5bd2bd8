"""What create_app does, in parts: the settings checked, the shared objects built, the routes
registered. Everything here runs once, at start-up, so that a mistake stops the service there,
naming what is wrong, rather than failing requests later."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api
from werkzeug.middleware.proxy_fix import ProxyFix

from rules import load_library
from service.auth_failures import failed_authentication_budget
from service.cds.pseudonyms import Pseudonymizer
from service.cds.tokens import TokenVerifier, load_clients
from service.fhir_intake import response_reader
from service.hygiene import parse_origins
from service.limits import check_rate_limits, new_limiter
from service.records_as_fhir import prepare_level_texts
from service.state import AppState
from service.storage import Storage


def check_settings(config) -> frozenset[str]:
    """Configuration mistakes stop the service at start-up, naming the setting. Answers the
    CORS allow-list, which is parsed here."""
    cors_origins = parse_origins(config["CORS_ORIGINS"])
    check_rate_limits(config)
    database_url = config["DATABASE_URL"]
    if database_url is not None and not database_url.strip():
        raise RuntimeError(
            "DATABASE_URL is set but empty: set it to the database's URL (e.g. "
            "postgresql+psycopg://user:password@host:5432/popliteal), or unset it for the "
            "embedded SQLite file"
        )
    if config["CDS_CLIENTS_FILE"] and not config["CDS_BASE_URL"]:
        raise RuntimeError(
            "POPLITEAL_CDS_CLIENTS is set but POPLITEAL_CDS_BASE_URL is not: every CDS call "
            "would be refused, since a token's aud must be "
            "{POPLITEAL_CDS_BASE_URL}/cds-services/{id}. Set POPLITEAL_CDS_BASE_URL to this "
            "service's public URL, or unset POPLITEAL_CDS_CLIENTS"
        )
    return cors_origins


def trust_proxies(app: Flask) -> None:
    if app.config["PROXY_HOPS"]:
        # Behind nginx or an ingress: the client's address (for the wrong-key budget) and
        # scheme come from the proxy's X-Forwarded-* headers, trusted for this many hops only.
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def build_state(app: Flask, database_url: str) -> AppState:
    config = app.config
    # Rules load once, at start-up; a defective rule file stops the service here, naming the
    # file and key, rather than failing requests later.
    library = load_library()
    prepare_level_texts(library)

    # Connections open lazily, in each worker process, on first use.
    storage = Storage(database_url, statement_timeout_ms=config["DB_STATEMENT_TIMEOUT_MS"])

    # CDS clients are read at start-up: a defective clients file stops the service here.
    cds_verifier = TokenVerifier(
        load_clients(config["CDS_CLIENTS_FILE"], config["CDS_ALLOW_LOCAL_JWKS"]),
        config["CDS_BASE_URL"],
        config["CDS_TOKEN_LEEWAY_SECONDS"],
    )
    pseudonymizer = _pseudonymizer(config) if cds_verifier.configured else None

    # The intake Questionnaire and its response reader are built once, here.
    response_reader(library)

    return AppState(
        rules=library,
        storage=storage,
        limiter=new_limiter(),
        cds_verifier=cds_verifier,
        cds_budget=failed_authentication_budget(config, "popliteal-cds-failures"),
        pseudonymizer=pseudonymizer,
    )


def _pseudonymizer(config) -> Pseudonymizer:
    try:
        return Pseudonymizer(config["CDS_SUBJECT_SECRET"] or "")
    except ValueError as error:
        raise RuntimeError(
            f"POPLITEAL_CDS_SUBJECT_SECRET: CDS clients are configured, so {error} (patients' "
            "identifiers are stored only as keyed hashes)"
        ) from None


def register_blueprints(app: Flask, api: Api) -> None:
    """The routes, in the order the OpenAPI document lists them."""
    # Imported here, when an app is made: importing the service package (for its settings,
    # its metrics or its commands) does not import every route and build its documentation.
    from service.api import (
        assessment,
        catalogue,
        cds_hooks,
        fhir,
        health,
        interview,
        reassessments,
        records,
    )
    from service.docs import docs_assets

    api.register_blueprint(assessment.blp)
    api.register_blueprint(interview.blp)
    api.register_blueprint(records.blp)
    api.register_blueprint(reassessments.blp)
    api.register_blueprint(catalogue.blp)
    api.register_blueprint(fhir.blp)
    api.register_blueprint(health.blp)
    api.register_blueprint(cds_hooks.blp)
    app.register_blueprint(docs_assets)
