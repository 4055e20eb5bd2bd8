"""A likely cause (or a condition named by the caller) as a FHIR Condition."""

from __future__ import annotations

from typing import Any

from schemas.fhir import CAUSE_SYSTEM, CONDITION_VERIFICATION, ICD10CM_SYSTEM
from schemas.fhir.resources.head import CauseView, RecordHead, subject_reference


def cause_concept(cause: CauseView) -> dict[str, Any]:
    codings = [
        {"system": ICD10CM_SYSTEM, "code": code["code"], "display": code["display"]}
        for code in cause.icd10cm
    ]
    codings.append({"system": CAUSE_SYSTEM, "code": cause.code, "display": cause.name})
    return {"coding": codings, "text": cause.name}


def condition(
    cause: CauseView, head: RecordHead, resource_id: str, disclaimer: str
) -> dict[str, Any]:
    # "differential": one of several possibilities the rules ranked; "provisional": named by
    # the caller. Neither is ever "confirmed": Popliteal examines no one.
    status = "differential" if cause.likelihood else "provisional"
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": resource_id,
        "verificationStatus": {
            "coding": [{"system": CONDITION_VERIFICATION, "code": status}],
            "text": "A possibility, not a diagnosis",
        },
        "code": cause_concept(cause),
        "subject": subject_reference(head.subject),
        "recordedDate": head.created_at,
    }
    notes = []
    if cause.likelihood:
        notes.append(f"Likelihood from the reported signs: {cause.likelihood}.")
    notes.extend(cause.evidence)
    notes.append(disclaimer)
    resource["note"] = [{"text": text} for text in notes]
    return resource
