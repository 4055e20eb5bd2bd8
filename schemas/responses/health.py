"""Liveness and readiness."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.responses.common import _nested, _s


class ReadinessChecksSchema(Schema):
    rules = _s("loaded when the rules are loaded.")
    database = _s(
        "ok; unreachable (down or timing out); misconfigured (wrong database name, user or "
        "password: see the logs); or full (its disk was full moments ago).",
        validate=validate.OneOf(("ok", "unreachable", "misconfigured", "full")),
    )
    migrations = _s(
        "current, behind (run the migrations), or unknown (database unreachable).",
        validate=validate.OneOf(("current", "behind", "unknown")),
    )


class ReadinessSchema(Schema):
    status = _s("ready, or not_ready.", validate=validate.OneOf(("ready", "not_ready")))
    checks = _nested(ReadinessChecksSchema, "Each check's result.")


class HealthSchema(Schema):
    status = _s("ok when the process is up and the rules are loaded.")
    rules_versions = fields.List(
        fields.String(), required=True, metadata={"description": "Loaded rules versions."}
    )
    default_rules_version = _s("The newest loaded version.")
