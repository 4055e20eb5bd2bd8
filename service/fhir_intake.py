"""The FHIR intake: the symptom intake Questionnaire of the app's rules, and its
QuestionnaireResponses read as the JSON assess request they stand for. The pure builder and
reader are ``schemas.fhir.questionnaire``; this applies them to the loaded rule library and to
the request. (Stored records as FHIR: ``service.records_as_fhir``.)"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from flask import request
from marshmallow import ValidationError

from rules import RulesLibrary
from rules.terminology import report_field_paths
from schemas.fhir.questionnaire import QuestionnaireResponseError, ResponseReader, questionnaire
from schemas.report import FhirAssessQuerySchema, FhirReportQuerySchema
from service.state import state
from service.web import FhirInputError


def red_flag_fields(library: RulesLibrary) -> set[str]:
    """Every report field a red flag of any loaded rules version reads."""
    known = set(report_field_paths(library.report_sections))
    fields: set[str] = set()
    for evaluator in library:
        for red_flag in evaluator.ruleset.red_flags:
            fields.update(red_flag.rule.when.fields)
    return fields & known


# The intake Questionnaire and its reader are built once per rule library (create_app builds
# them at start-up), and passed the app's: state().rules.
@cache
def intake_questionnaire(library: RulesLibrary) -> dict[str, Any]:
    disclaimer = library.default.ruleset.document["disclaimer"]
    return questionnaire(library.report_sections, red_flag_fields(library), disclaimer)


@cache
def response_reader(library: RulesLibrary) -> ResponseReader:
    return ResponseReader(library.report_sections, intake_questionnaire(library)["version"])


FHIR_ASSESS_QUERY = FhirAssessQuerySchema()
FHIR_REPORT_QUERY = FhirReportQuerySchema()


def assess_request_from_fhir(acceptor, schema, flatten) -> dict[str, Any]:
    """The JSON assess request a QuestionnaireResponse body (and the query) stands for.

    It then goes through the very checks a JSON body goes through (``acceptor`` and
    ``schema``), so both forms accept and refuse the same reports; errors name the linkId."""
    report, subject, options = _read(FHIR_ASSESS_QUERY, flatten)
    if subject is not None:
        report["subject"] = subject
    if not options["store"]:
        report["store"] = False
    return _checked(report, options, acceptor, schema, flatten)


def report_from_fhir(acceptor, schema, flatten) -> dict[str, Any]:
    """The JSON symptom report a QuestionnaireResponse body (and ``rules_version`` in the
    query) stands for, checked as a JSON report is. Its subject is not needed: a report alone
    is never stored."""
    report, _subject, options = _read(FHIR_REPORT_QUERY, flatten)
    return _checked(report, options, acceptor, schema, flatten)


def _read(query_schema, flatten) -> tuple[dict[str, Any], dict | None, dict[str, Any]]:
    """The request's QuestionnaireResponse as a report and its subject, and the query."""
    try:
        response = orjson.loads(request.get_data(cache=True))
    except orjson.JSONDecodeError:
        raise FhirInputError(400, "The request body is not valid JSON.") from None
    try:
        options = query_schema.load(request.args)
    except ValidationError as error:
        raise FhirInputError(422, "Invalid query parameters.", flatten(error.messages)) from None
    try:
        report, subject = response_reader(state().rules).read(response)
    except QuestionnaireResponseError as error:
        raise FhirInputError(
            422, "The QuestionnaireResponse cannot be read as a symptom report.", error.errors
        ) from None
    return dict(report), subject, options


def _checked(body: dict[str, Any], options, acceptor, schema, flatten) -> dict[str, Any]:
    if "rules_version" in options:
        body["rules_version"] = options["rules_version"]
    try:
        return acceptor.validated(body, schema)
    except ValidationError as error:
        raise FhirInputError(
            422, "Some answers are not valid; see the issues.", flatten(error.messages)
        ) from None
