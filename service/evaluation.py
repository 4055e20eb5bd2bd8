"""Symptom reports at the edge: how a body is read and checked, which rules version evaluates
it, and the one evaluation path of an assessment.

A valid body is accepted by the fast checker (equivalent to the marshmallow schema, and ten
times cheaper); anything else goes through the schema, for its field-by-field errors. Both are
built at import, when there is no app, from the rules shipped with this build: the library
create_app loads too (``SHIPPED_RULES``), as ``schemas.report`` builds the schemas from it.
Requests read the app's library through ``state().rules``.
"""

from __future__ import annotations

import orjson
from flask import g, request
from flask_smorest import abort

from rules import Evaluator, load_library
from schemas.fast import ASSESS_REQUEST_EXTRA_FIELDS, ReportAcceptor
from schemas.report import RULES_VERSIONS, AssessRequestSchema, SymptomReportSchema
from service.state import state
from service.web import Blueprint

SHIPPED_RULES = load_library()

# Schema instances, built once: a schema class passed here would be rebuilt on every request.
REPORT = SymptomReportSchema()
ASSESS_REQUEST = AssessRequestSchema()
REPORT_ACCEPTOR = ReportAcceptor(SHIPPED_RULES.report_sections, RULES_VERSIONS)
ASSESS_REQUEST_ACCEPTOR = ReportAcceptor(
    SHIPPED_RULES.report_sections, RULES_VERSIONS, ASSESS_REQUEST_EXTRA_FIELDS
)


def evaluator_for(version: str | None) -> Evaluator:
    """The evaluator for a pinned version (or the newest), recorded for X-Rules-Version."""
    evaluator = state().rules.get(version)
    g.rules_version = evaluator.ruleset.version
    return evaluator


def refuse_query_parameters() -> None:
    """A JSON request's settings (store, rules_version) belong in its body. A query would be
    ambiguous, and silently ignoring ?store=false would store what the client meant not to."""
    if request.args:
        abort(
            422,
            message="Query parameters are only for QuestionnaireResponse bodies (POST /v1/assess); "
            "put store and rules_version in the JSON body.",
            errors={name: ["Not a query parameter here."] for name in request.args},
        )


def parse_body(acceptor: ReportAcceptor, schema) -> dict:
    """The request's body, validated.

    A valid body is accepted by the fast checker (equivalent to the schema, and ten times
    cheaper); anything else goes through the marshmallow schema, which raises the 400 or 422
    with its field-by-field messages.
    """
    refuse_query_parameters()
    data = request.get_data(cache=True)
    if data:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = None
        if body is not None and acceptor.accepts(body):
            return body
    return Blueprint.ARGUMENTS_PARSER.parse(schema, request, location="json")


def assess_report(report: dict) -> tuple[dict, dict]:
    """A validated symptom report (without store or subject; its rules_version, if any, pins
    the version) -> what is stored as the request, and the assessment.

    The one evaluation path of POST /v1/assess, of reassessments and of the reassess command,
    so that a stored report re-evaluated under a version gets exactly what POST /v1/assess
    gives that report under that version. Takes rules_version out of ``report``."""
    sent = dict(report)
    evaluator = evaluator_for(report.pop("rules_version", None))
    return sent, evaluator.assess(report)
