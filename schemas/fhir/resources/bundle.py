"""An assessment as a collection Bundle: its RiskAssessment, a ClinicalImpression of the likely
causes, a Condition per cause and the CarePlan, referring to each other by ``urn:uuid``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.fhir import URN_UUID
from schemas.fhir.resources.care_plan import care_plan
from schemas.fhir.resources.condition import condition
from schemas.fhir.resources.head import CauseView, RecordHead, subject_reference, triage_level_text
from schemas.fhir.resources.risk import risk_assessment


def clinical_impression(
    head: RecordHead,
    assessment: Mapping[str, Any],
    condition_references: Sequence[str],
    causes: Sequence[CauseView],
) -> dict[str, Any]:
    triage = assessment["triage"]
    questions = [item["question"] for item in assessment.get("missing_information", ())]
    summary = f"Triage: {triage_level_text(head.level_text, triage)}. " + (
        "Possible causes, most likely first: "
        + "; ".join(f"{c.name} ({c.likelihood})" for c in causes)
        + "."
        if causes
        else "No cause stands out from the answers given."
    )
    resource: dict[str, Any] = {
        "resourceType": "ClinicalImpression",
        "id": f"{head.id}-impression",
        # In progress while red-flag questions are open: the impression may still change.
        "status": "completed" if triage["complete"] else "in-progress",
        "description": "Decision-support assessment of a symptom report",
        "subject": subject_reference(head.subject),
        "effectiveDateTime": head.created_at,
        "date": head.created_at,
        "protocol": [f"urn:popliteal:rules:{head.rules_version}"],
        "summary": summary,
        "note": [{"text": assessment["disclaimer"]}],
    }
    if causes:
        resource["finding"] = []
        for reference, cause in zip(condition_references, causes, strict=True):
            finding: dict[str, Any] = {
                "itemReference": {"reference": reference, "display": cause.name}
            }
            if cause.evidence:
                finding["basis"] = "; ".join(cause.evidence)
            resource["finding"].append(finding)
    if questions:
        resource["note"].append(
            {"text": "Still worth asking: " + " ".join(questions)},
        )
    return resource


def _entry_url(record_id: str, part: str) -> str:
    """A stable urn:uuid for a part of a record: the same record always gives the same URLs."""
    return f"urn:uuid:{uuid.uuid5(uuid.UUID(record_id), part)}"


def assessment_bundle(
    head: RecordHead,
    assessment: Mapping[str, Any],
    causes: Sequence[CauseView],
    prescription_head: RecordHead | None,
    prescription: Mapping[str, Any] | None,
    *,
    article_title: str | None = None,
) -> dict[str, Any]:
    """The assessment as a collection Bundle whose entries refer to each other by
    ``urn:uuid`` full URLs."""
    condition_urls = [_entry_url(head.id, f"condition-{i}") for i in range(1, len(causes) + 1)]
    entries = [
        {"fullUrl": _entry_url(head.id, "triage"), "resource": risk_assessment(head, assessment)},
        {
            "fullUrl": _entry_url(head.id, "impression"),
            "resource": clinical_impression(head, assessment, condition_urls, causes),
        },
    ]
    disclaimer = assessment["disclaimer"]
    for index, (url, cause) in enumerate(zip(condition_urls, causes, strict=True), 1):
        resource = condition(cause, head, f"{head.id}-condition-{index}", disclaimer)
        entries.append({"fullUrl": url, "resource": resource})
    if prescription_head is not None and prescription is not None:
        entries.append(
            {
                "fullUrl": f"urn:uuid:{prescription_head.id}",
                "resource": care_plan(
                    prescription_head,
                    prescription,
                    causes,
                    article_title=article_title,
                    condition_references=condition_urls,
                ),
            }
        )
    return {
        "resourceType": "Bundle",
        "id": head.id,
        "identifier": {"system": URN_UUID, "value": f"urn:uuid:{head.id}"},
        "type": "collection",
        "timestamp": head.created_at,
        "entry": entries,
    }
