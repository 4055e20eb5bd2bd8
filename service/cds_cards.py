"""The card a CDS Hooks call answers: the triage as its indicator, red flags and possible
causes in its detail, and the exercise plan as a CarePlan the clinician can accept."""

from __future__ import annotations

from typing import Any

from flask import current_app

from schemas.fhir.resources import triage_level_text, unanswered_red_flag_questions
from service.fhir import care_plan_for, level_text
from service.records import assessment_path, prescription_path, timestamp

# The card's urgency in the CDS Hooks 2.0 scale (Card attributes, `indicator`: info, warning,
# critical; https://cds-hooks.hl7.org/2.0/#card-attributes): both levels that need care within
# a day are critical, booking a professional is a warning, self-care is information.
INDICATORS = {
    "emergency": "critical",
    "urgent": "critical",
    "see_professional": "warning",
    "self_care": "info",
}
OVERRIDE_REASONS = [
    {"system": "urn:popliteal:fhir:CodeSystem:cds-override", "code": code, "display": display}
    for code, display in (
        ("already-assessed", "The knee has already been assessed by a clinician"),
        ("clinical-judgement", "Clinical judgement differs"),
        ("patient-declined", "The patient declined the exercise plan"),
    )
]
# CDS Hooks 2.0, Card attributes (https://cds-hooks.hl7.org/2.0/#card-attributes): a summary
# is under 140 characters.
SUMMARY_LIMIT = 139


def _summary(assessment: dict[str, Any], level_text: dict[str, str]) -> str:
    """The level, then what must not be missed, then the leading possible cause: each part
    whole or not at all, so that nothing reads cut off (the detail has everything)."""
    triage = assessment["triage"]
    causes = assessment["likely_causes"]
    summary = f"Knee pain on stretching - {triage_level_text(level_text, triage)}"
    parts = []
    if triage["stop_stretching"]:
        parts.append("stop stretching")
    if not triage["complete"]:
        parts.append("red-flag questions unanswered")
    if causes:
        parts.append(f"possible {causes[0]['name'].lower()}")
    for part in parts:
        if len(summary) + 2 + len(part) <= SUMMARY_LIMIT:
            summary += f"; {part}"
    return summary


def _detail(record, level_text: dict[str, str]) -> str:
    assessment = record.response
    triage = assessment["triage"]
    lines = [
        f"**Triage:** {triage_level_text(level_text, triage)}.",
        "",
        f"Assessed {timestamp(record)} from the patient's answers.",
    ]
    if triage["red_flags"]:
        lines += ["", "**Red flags**"]
        lines += [f"- {flag['message']}" for flag in triage["red_flags"]]
    if triage["stop_stretching"]:
        lines += ["", "**Stop stretching**"]
        lines += [f"- {reason['reason']}" for reason in triage["stop_reasons"]]
    if not triage["complete"]:
        lines += [
            "",
            "**Red-flag questions not answered**, so a more urgent level is not ruled out:",
        ]
        lines += [f"- {question}" for question in unanswered_red_flag_questions(assessment)]
    if assessment["likely_causes"]:
        lines += ["", "**Possible causes** (possibilities, not a diagnosis)"]
        for cause in assessment["likely_causes"]:
            evidence = "; ".join(e["description"] for e in cause["evidence"])
            lines.append(f"- {cause['name']} ({cause['likelihood']} likelihood): {evidence}")
    lines += ["", f"_{assessment['disclaimer']}_"]
    return "\n".join(lines)


def _indicator(triage: dict[str, Any]) -> str:
    indicator = INDICATORS[triage["level"]]
    if not triage["complete"] and indicator == "info":
        # An unfinished red-flag screen is not a routine finding: it needs the clinician to
        # ask the open questions before the advice can be relied on.
        return "warning"
    return indicator


def card(record, plan, patient_id: str) -> dict[str, Any]:
    """The card for a stored assessment and its plan (None: no plan to offer)."""
    assessment = record.response
    base = current_app.config["CDS_BASE_URL"]
    version = record.rules_version
    answer: dict[str, Any] = {
        "uuid": record.id,
        "summary": _summary(assessment, level_text(version, short=True)),
        "indicator": _indicator(assessment["triage"]),
        "detail": _detail(record, level_text(version)),
        "source": {
            "label": f"Popliteal clinical decision support (rules {version})",
            "url": f"{base}/v1/rules/{version}",
            "topic": {
                "system": "urn:popliteal:fhir:CodeSystem:cds-topic",
                "code": "knee-pain-on-hamstring-stretch",
                "display": "Pain behind the knee when stretching the hamstrings",
            },
        },
        "overrideReasons": OVERRIDE_REASONS,
        "links": [
            {
                "label": "Assessment (FHIR Bundle)",
                "url": f"{base}{assessment_path(record.id)}/fhir",
                "type": "absolute",
            }
        ],
    }
    if plan is not None:
        _offer_plan(answer, plan, patient_id, base)
    return answer


def _offer_plan(answer: dict[str, Any], plan, patient_id: str, base: str) -> None:
    """The plan, linked and suggested as a proposed CarePlan for the patient."""
    care_plan = care_plan_for(plan)
    # In the client's FHIR server the plan belongs to the patient whose chart is open.
    patient = {"reference": f"Patient/{patient_id}"}
    care_plan["subject"] = patient
    for contained in care_plan.get("contained", []):
        contained["subject"] = patient
    care_plan.pop("id", None)  # the client's server assigns its own id
    answer["links"].append(
        {
            "label": "Exercise plan (FHIR CarePlan)",
            "url": f"{base}{prescription_path(plan.id)}/fhir",
            "type": "absolute",
        }
    )
    answer["suggestions"] = [
        {
            "label": "Add the proposed exercise plan to the chart",
            "uuid": plan.id,
            "isRecommended": care_plan["status"] == "active",
            "actions": [
                {
                    "type": "create",
                    "description": "Create the exercise plan as a proposed CarePlan.",
                    "resource": care_plan,
                }
            ],
        }
    ]
    answer["selectionBehavior"] = "at-most-one"
