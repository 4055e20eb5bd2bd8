"""Liveness."""

from __future__ import annotations

from schemas.responses import HealthSchema
from service.api import rules_library
from service.http import Blueprint, json_response

blp = Blueprint("health", __name__, description="Service health.")


@blp.route("/healthz")
@blp.response(200, HealthSchema)
def healthz():
    """The process is up and its rules are loaded

    For load balancers and orchestrators: answers 200 with the loaded rules versions.
    """
    library = rules_library()
    return json_response(
        {
            "status": "ok",
            "rules_versions": library.versions,
            "default_rules_version": library.default_version,
        }
    )
