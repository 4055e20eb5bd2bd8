"""The card a CDS Hooks call answers: the triage as its indicator, red flags and possible
causes in its detail, and the exercise plan as a CarePlan the clinician can accept.

A pure builder, beside the FHIR ones in ``schemas.fhir``: what it needs of the app and of the
stored records (their URLs, the level texts of their rules version, the plan's CarePlan) is
gathered by ``service.cds.cards`` and handed to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.fhir.resources import RecordHead, triage_level_text, unanswered_red_flag_questions

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


@dataclass(frozen=True)
class PlanOffer:
    """The exercise plan a card offers: its record's id, the URL of its FHIR CarePlan, and
    that CarePlan (``schemas.fhir.resources.care_plan``)."""

    id: str
    url: str
    care_plan: Mapping[str, Any]


def card(
    head: RecordHead,
    assessment: Mapping[str, Any],
    short_level_text: Mapping[str, str],
    *,
    rules_url: str,
    bundle_url: str,
    patient_id: str,
    plan: PlanOffer | None = None,
) -> dict[str, Any]:
    """The card for a stored assessment (``head``, and the assessment it stored), with the
    URLs of its rules version and of its FHIR Bundle, offering ``plan`` (None: no plan to
    offer) to the patient whose chart is open. ``short_level_text``: the level texts of the
    record's rules version for the summary (``level_texts(..., short=True)``)."""
    version = head.rules_version
    answer: dict[str, Any] = {
        "uuid": head.id,
        "summary": _summary(assessment, short_level_text),
        "indicator": _indicator(assessment["triage"]),
        "detail": _detail(assessment, head.created_at, head.level_text),
        "source": {
            "label": f"Popliteal clinical decision support (rules {version})",
            "url": rules_url,
            "topic": {
                "system": "urn:popliteal:fhir:CodeSystem:cds-topic",
                "code": "knee-pain-on-hamstring-stretch",
                "display": "Pain behind the knee when stretching the hamstrings",
            },
        },
        "overrideReasons": OVERRIDE_REASONS,
        "links": [{"label": "Assessment (FHIR Bundle)", "url": bundle_url, "type": "absolute"}],
    }
    if plan is not None:
        _offer_plan(answer, plan, patient_id)
    return answer


def _summary(assessment: Mapping[str, Any], level_text: Mapping[str, str]) -> str:
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


def _detail(assessment: Mapping[str, Any], assessed_at: str, level_text: Mapping[str, str]) -> str:
    triage = assessment["triage"]
    lines = [
        f"**Triage:** {triage_level_text(level_text, triage)}.",
        "",
        f"Assessed {assessed_at} from the patient's answers.",
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


def _indicator(triage: Mapping[str, Any]) -> str:
    indicator = INDICATORS[triage["level"]]
    if not triage["complete"] and indicator == "info":
        # An unfinished red-flag screen is not a routine finding: it needs the clinician to
        # ask the open questions before the advice can be relied on.
        return "warning"
    return indicator


def _offer_plan(answer: dict[str, Any], plan: PlanOffer, patient_id: str) -> None:
    """The plan, linked and suggested as a proposed CarePlan for the patient."""
    # In the client's FHIR server the plan belongs to the patient whose chart is open.
    patient = {"reference": f"Patient/{patient_id}"}
    care_plan = {**plan.care_plan, "subject": patient}
    if "contained" in care_plan:
        care_plan["contained"] = [
            {**contained, "subject": patient} for contained in care_plan["contained"]
        ]
    care_plan.pop("id", None)  # the client's server assigns its own id
    answer["links"].append(
        {"label": "Exercise plan (FHIR CarePlan)", "url": plan.url, "type": "absolute"}
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
