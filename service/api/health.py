"""Liveness and readiness."""

from __future__ import annotations

from schemas.responses import HealthSchema, ReadinessSchema
from service.state import state
from service.web import Blueprint, json_response

blp = Blueprint("health", __name__, description="Service health.")


@blp.route("/healthz")
@blp.response(200, HealthSchema)
def healthz():
    """The process is up and its rules are loaded

    For load balancers and orchestrators: answers 200 with the loaded rules versions.
    """
    library = state().rules
    return json_response(
        {
            "status": "ok",
            "rules_versions": library.versions,
            "default_rules_version": library.default_version,
        }
    )


@blp.route("/readyz")
@blp.response(200, ReadinessSchema, description="Ready: rules loaded, database reachable.")
@blp.alt_response(503, schema=ReadinessSchema, description="Not ready; checks says why.")
def readyz():
    """The service can take traffic

    For orchestrators' readiness probes: the rules are loaded, the database answers, and its
    migrations are current. 503 while any of these is not so; the process stays up and
    recovers by itself when the database returns.
    """
    app_state = state()
    checks = {"rules": "loaded" if app_state.rules.versions else "missing"}
    checks.update(app_state.storage.readiness())
    ready = (
        checks["rules"] == "loaded"
        and checks["database"] == "ok"
        and checks["migrations"] == "current"
    )
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )
