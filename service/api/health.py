"""Liveness and readiness."""

from __future__ import annotations

from schemas.responses import HealthSchema, ReadinessSchema
from service.evaluation import SHIPPED_RULES
from service.state import state
from service.web import Blueprint, json_response

blp = Blueprint("health", __name__, description="Service health.")
# Every check passed, in the words readyz uses.
READY = {"rules": "loaded", "database": "ok", "migrations": "current"}


def _health(library) -> dict:
    return {
        "status": "ok",
        "rules_versions": library.versions,
        "default_rules_version": library.default_version,
    }


@blp.route("/healthz")
@blp.response(200, HealthSchema, example=_health(SHIPPED_RULES))
def healthz():
    """The process is up and its rules are loaded

    For load balancers and orchestrators: answers 200 with the loaded rules versions.
    """
    return json_response(_health(state().rules))


@blp.route("/readyz")
@blp.response(
    200,
    ReadinessSchema,
    description="Ready: rules loaded, database reachable.",
    example={"status": "ready", "checks": READY},
)
@blp.alt_response(
    503,
    schema=ReadinessSchema,
    description="Not ready; checks says why.",
    example={
        "status": "not_ready",
        "checks": {**READY, "database": "unreachable", "migrations": "unknown"},
    },
)
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
