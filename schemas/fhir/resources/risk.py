"""The triage as a RiskAssessment: the level as a risk, its red flags and why it may be
incomplete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.fhir import RED_FLAG_SYSTEM, RISK_PROBABILITY, TRIAGE_SYSTEM
from schemas.fhir.resources.head import RecordHead, subject_reference, triage_level_text

# How the triage level reads as a risk: the chance that the leg needs a clinician's care. A
# representation of the level the rules decided, not a rule of its own: emergency and urgent
# both mean care is needed now or within a day (high), see_professional that it should be
# booked (moderate), self_care that it is not expected (low).
LEVEL_PROBABILITY = {
    "emergency": "high",
    "urgent": "high",
    "see_professional": "moderate",
    "self_care": "low",
}


def _red_flag_basis(red_flag: Mapping[str, Any]) -> str:
    return f"{red_flag['code']} ({red_flag['level']}): {red_flag['message']}"


def unanswered_red_flag_questions(assessment: Mapping[str, Any]) -> list[str]:
    """The questions that leave the triage incomplete: contradictions to confirm, then open
    red-flag questions; each once (a contradiction asks one question of several fields)."""
    return list(
        dict.fromkeys(
            item["question"]
            for item in assessment["missing_information"]
            if item["priority"] in ("contradiction", "red_flag")
        )
    )


def _rationale(assessment: Mapping[str, Any]) -> str:
    """Why the level: the red flags that fired (or that none did), why to stop stretching, and
    while the triage is incomplete, the questions that could still raise it."""
    triage = assessment["triage"]
    rationale = [_red_flag_basis(flag) for flag in triage["red_flags"]] or [
        "No red flag among the answers given."
    ]
    rationale += [f"Stop stretching: {reason['reason']}" for reason in triage["stop_reasons"]]
    if not triage["complete"]:
        rationale.append(
            (
                "Incomplete: some red-flag questions were not answered, or two answers "
                "contradict each other (read the safer way), so a more urgent level cannot be "
                "ruled out. To ask: "
                if any(m["priority"] == "contradiction" for m in assessment["missing_information"])
                # Rules 1.0.0 has no contradictions: its records read as they always did.
                else "Incomplete: some red-flag questions were not answered, so a more urgent "
                "level cannot be ruled out. Not answered: "
            )
            + " ".join(unanswered_red_flag_questions(assessment))
        )
    return " ".join(rationale)


def risk_assessment(head: RecordHead, assessment: Mapping[str, Any]) -> dict[str, Any]:
    triage = assessment["triage"]
    level = triage["level"]
    text = triage_level_text(head.level_text, triage)
    prediction = {
        "outcome": {
            "coding": [{"system": TRIAGE_SYSTEM, "code": level, "display": text}],
            "text": text,
        },
        "qualitativeRisk": {
            "coding": [{"system": RISK_PROBABILITY, "code": LEVEL_PROBABILITY[level]}]
        },
        "rationale": _rationale(assessment),
    }
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": f"{head.id}-triage",
        "status": "final" if triage["complete"] else "preliminary",
        "code": {"text": "Triage of pain behind the knee when stretching the hamstrings"},
        "subject": subject_reference(head.subject),
        "occurrenceDateTime": head.created_at,
        "method": {"text": f"Popliteal rules {head.rules_version}"},
        "prediction": [prediction],
        "note": [{"text": assessment["disclaimer"]}],
    }
    if triage["red_flags"]:
        resource["basis"] = [
            {
                "display": flag["message"],
                "identifier": {"system": RED_FLAG_SYSTEM, "value": flag["code"]},
            }
            for flag in triage["red_flags"]
        ]
    return resource
