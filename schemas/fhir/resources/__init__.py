"""Stored assessments and exercise prescriptions as FHIR R4 resources.

A prescription becomes a CarePlan; an assessment becomes a collection Bundle with a
RiskAssessment (the triage and its red flags), a ClinicalImpression (the likely causes), one
Condition per likely cause and the CarePlan. Nothing here claims certainty: every Condition
is ``differential`` (one possibility among several) or ``provisional``, and the disclaimer
travels with every resource as a note.

A module per resource; this front door re-exports the builders, and importers use
``schemas.fhir.resources``.
"""

from __future__ import annotations

from schemas.fhir.resources.activities import activity, do_not_perform
from schemas.fhir.resources.bundle import assessment_bundle, clinical_impression
from schemas.fhir.resources.care_plan import NOT_YET_NOTE, PLAN_STATUS, care_plan
from schemas.fhir.resources.condition import cause_concept, condition
from schemas.fhir.resources.head import (
    CauseView,
    RecordHead,
    level_texts,
    source_text,
    subject_reference,
    triage_level_text,
)
from schemas.fhir.resources.risk import (
    LEVEL_PROBABILITY,
    risk_assessment,
    unanswered_red_flag_questions,
)

__all__ = [
    "LEVEL_PROBABILITY",
    "NOT_YET_NOTE",
    "PLAN_STATUS",
    "CauseView",
    "RecordHead",
    "activity",
    "assessment_bundle",
    "care_plan",
    "cause_concept",
    "clinical_impression",
    "condition",
    "do_not_perform",
    "level_texts",
    "risk_assessment",
    "source_text",
    "subject_reference",
    "triage_level_text",
    "unanswered_red_flag_questions",
]
