"""The /v1 resources."""

from __future__ import annotations

from flask import current_app, g

from rules import Evaluator, RulesLibrary


def rules_library() -> RulesLibrary:
    return current_app.extensions["popliteal"]["rules"]


def evaluator_for(version: str | None) -> Evaluator:
    """The evaluator for a pinned version (or the newest), recorded for X-Rules-Version."""
    evaluator = rules_library().get(version)
    g.rules_version = evaluator.ruleset.version
    return evaluator
