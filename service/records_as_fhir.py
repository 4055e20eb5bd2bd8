"""Stored records as FHIR: an assessment as a collection Bundle, a prescription as a CarePlan,
with the level texts of the rules version that made them and the ICD-10-CM codes of their
causes. The pure builders are ``schemas.fhir.resources``; this looks up, in the app's rules and
records, what they need. (The same records as JSON: ``service.records_as_json``; FHIR input:
``service.fhir_intake``.)"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from flask import g

from schemas.fhir.resources import (
    CauseView,
    RecordHead,
    assessment_bundle,
    care_plan,
    level_texts,
)
from service.evaluation import SHIPPED_RULES
from service.records_as_json import timestamp
from service.state import state
from service.storage import ASSESSMENT, EXERCISE_PRESCRIPTION, Record

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


def record_head(record: Record) -> RecordHead:
    """What every FHIR resource (and CDS card) made from a record says of it."""
    subject = None
    if record.subject is not None:
        subject = {"system": record.subject.system, "value": record.subject.value}
    version = record.rules_version
    return RecordHead(record.id, timestamp(record), version, level_text(version), subject)


def _article_title(rules_version: str) -> str:
    return state().rules.get(rules_version).ruleset.documents["article"]["title"]


def ranked_causes(
    assessment: Mapping[str, Any], report: Mapping[str, Any], classification=None
) -> list[CauseView]:
    """The likely causes of an assessment, each with the ICD-10-CM leaves that fit the
    report (its side and onset); by the app's classification unless one is given."""
    if classification is None:
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
        record_head(record),
        record.response,
        _plan_causes(record),
        article_title=_article_title(record.rules_version),
    )


def bundle_for(record: Record) -> dict[str, Any]:
    plan = state().storage.records.get(g.principal.tenant_id, EXERCISE_PRESCRIPTION, record.plan_id)
    return assessment_bundle(
        record_head(record),
        record.response,
        ranked_causes(record.response, record.request),
        record_head(plan) if plan is not None else None,
        plan.response if plan is not None else None,
        article_title=_article_title(record.rules_version),
    )
