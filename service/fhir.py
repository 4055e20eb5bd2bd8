"""Stored records as FHIR, and FHIR QuestionnaireResponses as reports: the glue between the
records, the rules and the pure FHIR builders in ``schemas.fhir``."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import orjson
from flask import g, request
from marshmallow import ValidationError

from rules import RulesLibrary
from rules.terminology import report_field_paths
from schemas.fhir.questionnaire import QuestionnaireResponseError, ResponseReader, questionnaire
from schemas.fhir.resources import (
    CauseView,
    RecordHead,
    assessment_bundle,
    care_plan,
    level_texts,
)
from schemas.report import FhirAssessQuerySchema
from service.evaluation import SHIPPED_RULES
from service.records import timestamp
from service.state import state
from service.storage import ASSESSMENT, EXERCISE_PRESCRIPTION, Record
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


def assess_request_from_fhir(acceptor, schema, flatten) -> dict[str, Any]:
    """The JSON assess request a QuestionnaireResponse body (and the query) stands for.

    It then goes through the very checks a JSON body goes through (``acceptor`` and
    ``schema``), so both forms accept and refuse the same reports; errors name the linkId."""
    try:
        response = orjson.loads(request.get_data(cache=True))
    except orjson.JSONDecodeError:
        raise FhirInputError(400, "The request body is not valid JSON.") from None
    try:
        options = FHIR_ASSESS_QUERY.load(request.args)
    except ValidationError as error:
        raise FhirInputError(422, "Invalid query parameters.", flatten(error.messages)) from None
    try:
        report, subject = response_reader(state().rules).read(response)
    except QuestionnaireResponseError as error:
        raise FhirInputError(
            422, "The QuestionnaireResponse cannot be read as a symptom report.", error.errors
        ) from None
    body: dict[str, Any] = dict(report)
    if subject is not None:
        body["subject"] = subject
    if not options["store"]:
        body["store"] = False
    if "rules_version" in options:
        body["rules_version"] = options["rules_version"]
    try:
        return acceptor.validated(body, schema)
    except ValidationError as error:
        raise FhirInputError(
            422, "Some answers are not valid; see the issues.", flatten(error.messages)
        ) from None


URGENT_LIMIT = "urgent_care_within_hours"


@cache
def level_text(rules_version: str, *, short: bool = False) -> dict[str, str]:
    """How the triage levels of a rules version read (once per version).

    A text depends on the version alone, so it is looked up in the rules shipped with this
    build (the library create_app loads), and can be had without an app."""
    parameters = SHIPPED_RULES.get(rules_version).ruleset.parameters
    return level_texts(parameters[URGENT_LIMIT].value, short=short)


def prepare_level_texts(library) -> None:
    """At start-up: every rules version gives the urgent level its time limit, which every
    FHIR export and CDS card of its records shows; the texts are built here, not on a request."""
    for evaluator in library:
        ruleset = evaluator.ruleset
        if URGENT_LIMIT not in ruleset.parameters:
            raise RuntimeError(
                f"rules {ruleset.version}: parameters.yaml needs {URGENT_LIMIT}, the urgent "
                "level's time limit, which FHIR exports and CDS cards show"
            )
        level_text(ruleset.version)
        level_text(ruleset.version, short=True)


def _head(record: Record) -> RecordHead:
    subject = None
    if record.subject is not None:
        subject = {"system": record.subject.system, "value": record.subject.value}
    version = record.rules_version
    return RecordHead(record.id, timestamp(record), version, level_text(version), subject)


def _article_title(rules_version: str) -> str:
    return state().rules.get(rules_version).ruleset.documents["article"]["title"]


def ranked_causes(assessment: Mapping[str, Any], report: Mapping[str, Any]) -> list[CauseView]:
    """The likely causes of an assessment, each with the ICD-10-CM leaves that fit the
    report (its side and onset)."""
    classification = state().rules.classification
    return [
        CauseView(
            code=cause["code"],
            name=cause["name"],
            icd10cm=[c.as_dict() for c in classification.codes_for(cause["code"], report)],
            likelihood=cause["likelihood"],
            evidence=[e["description"] for e in cause["evidence"]],
        )
        for cause in assessment["likely_causes"]
    ]


def named_causes(codes: list[str], rules_version: str) -> list[CauseView]:
    """Conditions a caller named (a clinician, typically): no ranking, no side."""
    library = state().rules
    causes = library.get(rules_version).ruleset.causes_by_code
    return [
        CauseView(
            code=code,
            name=causes[code].catalogue["name"],
            icd10cm=[c.as_dict() for c in library.classification.codes_for(code, None)],
        )
        for code in codes
    ]


def _plan_causes(record: Record) -> list[CauseView]:
    """What a stored prescription addresses, from what it was made from."""
    request = record.request
    if "conditions" in request:
        return named_causes(request["conditions"], record.rules_version)
    if "report" in request:
        report = dict(request["report"])
        report.pop("rules_version", None)
        assessment = state().rules.get(record.rules_version).assess(report)
        return ranked_causes(assessment, report)
    if record.assessment_id:
        source = state().storage.records.get(
            g.principal.tenant_id, ASSESSMENT, record.assessment_id
        )
        if source is not None:
            return ranked_causes(source.response, source.request)
    return []


def care_plan_for(record: Record) -> dict[str, Any]:
    return care_plan(
        _head(record),
        record.response,
        _plan_causes(record),
        article_title=_article_title(record.rules_version),
    )


def bundle_for(record: Record) -> dict[str, Any]:
    plan = state().storage.records.get(g.principal.tenant_id, EXERCISE_PRESCRIPTION, record.plan_id)
    return assessment_bundle(
        _head(record),
        record.response,
        ranked_causes(record.response, record.request),
        _head(plan) if plan is not None else None,
        plan.response if plan is not None else None,
        article_title=_article_title(record.rules_version),
    )
