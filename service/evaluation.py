"""Symptom reports at the edge: how a body is read and checked, which rules version evaluates
it, and the one evaluation path of an assessment.

The report endpoints declare their body with ``@blp.arguments`` like any other, and their
blueprint parses it with ``ReportParser``: a valid JSON body is accepted by the fast checker
(equivalent to the marshmallow schema, and ten times cheaper); a FHIR QuestionnaireResponse is
read as the report it stands for (``service.fhir_intake``); anything else goes through
webargs and the schema, for its field-by-field errors. The checkers are built at import, when
there is no app, from the rules shipped with this build: the library create_app loads too
(``SHIPPED_RULES``), as ``schemas.report`` builds the schemas from it. Requests read the app's
library through ``state().rules``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from flask import g, request
from flask_smorest import abort
from marshmallow import Schema
from werkzeug.exceptions import UnsupportedMediaType

from rules import Evaluator, load_library
from schemas.fast import ASSESS_REQUEST_EXTRA_FIELDS, ReportAcceptor
from schemas.fhir import FHIR_MEDIA_TYPE
from schemas.report import RULES_VERSIONS, AssessRequestSchema, SymptomReportSchema
from service.fhir_intake import assess_request_from_fhir, report_from_fhir
from service.state import state
from service.web import JSONParser, flatten_errors, sends_fhir

SHIPPED_RULES = load_library()

# Schema instances, built once: a schema class passed here would be rebuilt on every request.
REPORT = SymptomReportSchema()
ASSESS_REQUEST = AssessRequestSchema()
REPORT_ACCEPTOR = ReportAcceptor(SHIPPED_RULES.report_sections, RULES_VERSIONS)
ASSESS_REQUEST_ACCEPTOR = ReportAcceptor(
    SHIPPED_RULES.report_sections, RULES_VERSIONS, ASSESS_REQUEST_EXTRA_FIELDS
)

QUESTIONNAIRE_RESPONSE_AS_JSON = (
    "This body is a FHIR QuestionnaireResponse: send it with Content-Type: "
    f"{FHIR_MEDIA_TYPE} to be read as one, or send the JSON symptom report instead."
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
            message="Query parameters are only for QuestionnaireResponse bodies; a JSON body "
            "carries its own settings (rules_version, and store on POST /v1/assess).",
            errors={name: ["Not a query parameter here."] for name in request.args},
        )


@dataclass(frozen=True)
class ReportBody:
    """How one report endpoint reads its body: the fast checker of its JSON form, and how a
    QuestionnaireResponse becomes that form (``from_fhir(acceptor, schema, flatten)``)."""

    acceptor: ReportAcceptor
    from_fhir: Callable[..., dict[str, Any]]


class ReportParser(JSONParser):
    """The argument parser of the report endpoints: a JSON body of a schema it knows is let
    through by its fast checker; a FHIR body is read as the report it stands for; anything
    else is webargs' and marshmallow's, whose errors are the 400 or 422. Every other schema
    is parsed exactly as by JSONParser."""

    def __init__(self, bodies: dict[Schema, ReportBody]) -> None:
        super().__init__()
        self._bodies = bodies

    def parse(self, argmap, req=None, *, location=None, **kwargs):
        body = self._bodies.get(argmap) if location == "json" else None
        if body is None:
            return super().parse(argmap, req, location=location, **kwargs)
        if sends_fhir():
            return body.from_fhir(body.acceptor, argmap, flatten_errors)
        refuse_query_parameters()
        data = request.get_data(cache=True)
        try:
            sent = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            sent = None  # webargs answers the 400
        accepted = body.acceptor.accept(sent)
        if accepted is not None:
            return accepted
        if type(sent) is dict and sent.get("resourceType") == "QuestionnaireResponse":
            raise UnsupportedMediaType(description=QUESTIONNAIRE_RESPONSE_AS_JSON)
        return super().parse(argmap, req, location=location, **kwargs)


REPORT_PARSER = ReportParser(
    {
        ASSESS_REQUEST: ReportBody(ASSESS_REQUEST_ACCEPTOR, assess_request_from_fhir),
        REPORT: ReportBody(REPORT_ACCEPTOR, report_from_fhir),
    }
)


def assess_report(report: dict) -> tuple[dict, dict]:
    """A validated symptom report (without store or subject; its rules_version, if any, pins
    the version) -> what is stored as the request, and the assessment.

    The one evaluation path of POST /v1/assess, of reassessments and of the reassess command,
    so that a stored report re-evaluated under a version gets exactly what POST /v1/assess
    gives that report under that version. Takes rules_version out of ``report``."""
    sent, _, assessment = assessment_of(evaluator_for, report)
    return sent, assessment


def assessment_of(
    evaluator_of: Callable[[str | None], Evaluator], report: dict
) -> tuple[dict, Evaluator, dict]:
    """``assess_report`` with the evaluator looked up by ``evaluator_of`` (the fast path's has
    no Flask context): what is stored as the request, the evaluator, and the assessment."""
    sent = dict(report)
    evaluator = evaluator_of(report.pop("rules_version", None))
    return sent, evaluator, evaluator.assess(report)


def escalation_of(
    evaluator_of: Callable[[str | None], Evaluator], report: dict
) -> tuple[Evaluator, dict]:
    """The red-flag screen of a validated report under its rules_version (if any): the
    evaluator and the check. The one path of POST /v1/escalation-check, in Flask and in the
    fast path; ``report`` is left as it was."""
    report = dict(report)
    evaluator = evaluator_of(report.pop("rules_version", None))
    return evaluator, evaluator.escalation_check(report)
