"""Stored assessments and exercise prescriptions as FHIR R4 resources.

A prescription becomes a CarePlan; an assessment becomes a collection Bundle with a
RiskAssessment (the triage and its red flags), a ClinicalImpression (the likely causes), one
Condition per likely cause and the CarePlan. Nothing here claims certainty: every Condition
is ``differential`` (one possibility among several) or ``provisional``, and the disclaimer
travels with every resource as a note.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.fhir import (
    CAUSE_SYSTEM,
    CONDITION_VERIFICATION,
    EXERCISE_SYSTEM,
    ICD10CM_SYSTEM,
    RED_FLAG_SYSTEM,
    RISK_PROBABILITY,
    TITLE,
    TRIAGE_SYSTEM,
    UCUM,
    URN_UUID,
)

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
# A plan not to be started yet (open red-flag questions, or a professional to see first) is a
# draft; only a ready plan is active.
PLAN_STATUS = {
    "ready": "active",
    "pending_professional_review": "draft",
    "awaiting_safety_answers": "draft",
}
NOT_YET_NOTE = (
    "Not to be started yet: some red-flag questions were not answered. Answer them and "
    "assess again before any exercise; a red flag would change or withhold this plan."
)


def level_texts(urgent_within_hours: float, *, short: bool = False) -> dict[str, str]:
    """How each triage level reads, with the urgent level's time limit taken from the rules
    version that made the record (parameter ``urgent_care_within_hours``). The limit is the
    outer one: a red flag may ask for sooner (a suspected clot: today), so the text says so
    rather than let a clinician read the limit as the advice. ``short``: for a CDS card's
    summary, which has room for little else."""
    hours = f"{urgent_within_hours:g}"
    urgent = (
        f"Urgent: a clinician within {hours} h at the latest"
        if short
        else f"Urgent: see a clinician within {hours} hours at the latest, sooner where a red "
        "flag says so"
    )
    return {
        "emergency": "Emergency: seek care now",
        "urgent": urgent,
        "see_professional": "See a doctor or physical therapist",
        "self_care": "Self-care",
    }


def triage_level_text(level_text: Mapping[str, str], triage: Mapping[str, Any]) -> str:
    """The level in words for one assessment. From rules 2.0.0 on each red flag has its own
    time frame, and the text says that one ("Urgent: see a clinician today") rather than the
    level's outer limit, so a record never reads "within 24 hours" beside a flag saying "today"
    or "within 14 days"."""
    level = triage["level"]
    when = (triage.get("time_frame") or {}).get("when")
    if not when or level not in ("urgent", "see_professional"):
        return level_text[level]
    if level == "urgent":
        return f"Urgent: see a clinician {when}"
    return f"See a doctor or physical therapist {when}"


@dataclass(frozen=True)
class RecordHead:
    """What every resource says of the stored record it comes from."""

    id: str
    created_at: str
    rules_version: str
    level_text: Mapping[str, str]  # level_texts() of that rules version
    subject: Mapping[str, str] | None = None


@dataclass(frozen=True)
class CauseView:
    """A condition a plan addresses or an assessment ranks, with the codes that fit it."""

    code: str
    name: str
    icd10cm: Sequence[Mapping[str, str]] = field(default_factory=tuple)
    likelihood: str | None = None  # None: named by the caller, not ranked by the rules
    evidence: Sequence[str] = field(default_factory=tuple)


def subject_reference(subject: Mapping[str, str] | None) -> dict[str, Any]:
    """The record's subject as a logical reference by identifier. Without one, a display
    that says so: FHIR requires a subject on these resources."""
    if subject is None:
        return {"display": "Not identified: the report was sent without a subject"}
    return {"identifier": {"system": subject["system"], "value": subject["value"]}}


def source_text(source: Mapping[str, Any], article_title: str | None = None) -> str:
    if source.get("document") == "article":
        title = f"“{article_title}”" if article_title else "the source article"
        return f"{title}, section “{source['section']}”, paragraph {source['paragraph']}"
    text = str(source.get("document"))
    if source.get("section"):
        text += f", {source['section']}"
    if source.get("url"):
        text += f" ({source['url']})"
    return text


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


def _dose_text(item: Mapping[str, Any]) -> str:
    dose = item["dose"]
    parts = []
    if "minutes" in dose:
        parts.append(f"{dose['minutes']} minutes")
    if "hold_seconds" in dose:
        parts.append(f"hold {dose['hold_seconds']} seconds")
    if "sets" in dose and "repetitions_min" in dose:
        parts.append(
            f"{dose['sets']} sets of {dose['repetitions_min']}-{dose['repetitions_max']} "
            "repetitions"
        )
    elif "sets" in dose:
        parts.append(f"{dose['sets']} sets")
    if "repetitions" in dose:
        parts.append(f"{dose['repetitions']} repetitions")
    if "times_per_week" in dose:
        parts.append(f"{dose['times_per_week']} times a week")
    else:
        parts.append("before each session")
    if item.get("per_side"):
        parts.append("on each leg")
    if item.get("intensity") == "pain_free":
        parts.append("in a pain-free range only")
    elif item.get("intensity") == "reduced":
        parts.append("at reduced intensity")
    return ", ".join(parts)


def _timing(dose: Mapping[str, Any]) -> dict[str, Any]:
    repeat: dict[str, Any] = {}
    if "times_per_week" in dose:
        repeat.update(frequency=dose["times_per_week"], period=1, periodUnit="wk")
    if "minutes" in dose:
        repeat.update(duration=dose["minutes"], durationUnit="min")
    timing: dict[str, Any] = {"repeat": repeat}
    if "times_per_week" not in dose:
        timing["code"] = {"text": "Before each stretching or strengthening session"}
    return timing


def _quantity(dose: Mapping[str, Any]) -> dict[str, Any] | None:
    if "sets" in dose:
        return {"value": dose["sets"], "unit": "sets", "system": UCUM, "code": "{sets}"}
    if "repetitions" in dose:
        return {
            "value": dose["repetitions"],
            "unit": "repetitions",
            "system": UCUM,
            "code": "{repetitions}",
        }
    if "minutes" in dose:
        return {"value": dose["minutes"], "unit": "min", "system": UCUM, "code": "min"}
    return None


def activity(item: Mapping[str, Any], article_title: str | None) -> dict[str, Any]:
    description = [f"Dose: {_dose_text(item)}."]
    description += [f"Caution: {text}" for text in item.get("cautions", ())]
    description += [f"Adjusted: {a['reason']}" for a in item.get("adjustments", ())]
    description.append(f"Progression: {item['progression']}")
    description.append(f"Steps: {' '.join(item['steps'])}")
    description.append(f"Source: {source_text(item['source'], article_title)}.")
    detail: dict[str, Any] = {
        "kind": "ServiceRequest",
        "code": {
            "coding": [
                {"system": EXERCISE_SYSTEM, "code": item["exercise_id"], "display": item["name"]}
            ],
            "text": item["name"],
        },
        "status": "not-started",
        "doNotPerform": False,
        "scheduledTiming": _timing(item["dose"]),
        "description": "\n".join(description),
    }
    quantity = _quantity(item["dose"])
    if quantity:
        detail["quantity"] = quantity
    return {"detail": detail}


def do_not_perform(excluded: Mapping[str, Any]) -> dict[str, Any]:
    reasons = [reason["reason"] for reason in excluded["reasons"]]
    return {
        "detail": {
            "kind": "ServiceRequest",
            "code": {
                "coding": [
                    {
                        "system": EXERCISE_SYSTEM,
                        "code": excluded["exercise_id"],
                        "display": excluded["name"],
                    }
                ],
                "text": excluded["name"],
            },
            "reasonCode": [{"text": reason} for reason in reasons],
            "status": "not-started",
            "doNotPerform": True,
            "description": "Do not do this exercise for now. " + " ".join(reasons),
        }
    }


def care_plan(
    head: RecordHead,
    prescription: Mapping[str, Any],
    causes: Sequence[CauseView],
    *,
    article_title: str | None = None,
    condition_references: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A prescription as a CarePlan (intent ``proposal``: decision support, not an order).

    The conditions it addresses are contained in it, unless ``condition_references`` points
    at Conditions elsewhere (in the same Bundle)."""
    plan = prescription.get("exercise_plan")
    withheld = prescription.get("exercise_plan_withheld") or []
    triage = prescription.get("triage")  # None for conditions named by a clinician
    notes: list[str] = []
    if plan is None:
        status = "on-hold"
        notes += [f"Plan withheld: {reason['reason']}" for reason in withheld]
    else:
        status = PLAN_STATUS[plan["status"]]
        notes += [f"Plan status: {reason['reason']}" for reason in plan["status_reasons"]]
        if triage is not None and not triage["complete"]:
            # An open safety screen: the plan may change once the questions are answered, so
            # an EHR must not take it as one to follow now. From rules 2.0.0 the plan's own
            # status (awaiting_safety_answers) says so, with its reason among the notes above.
            status = "draft"
            if plan["status"] != "awaiting_safety_answers":
                notes.append(NOT_YET_NOTE)
        notes += [f"Stop rule: {rule['text']}" for rule in plan.get("safety", ())]
    stop_reasons = prescription.get("stop_reasons") or (triage or {}).get("stop_reasons") or []
    notes += [f"Stop stretching: {reason['reason']}" for reason in stop_reasons]
    notes.append(
        f"Made by Popliteal rules {head.rules_version} from “{article_title or TITLE}” and "
        "the guidelines cited with each rule (GET /v1/rules/"
        f"{head.rules_version})."
    )
    notes.append(prescription["disclaimer"])

    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": head.id,
        "identifier": [{"system": URN_UUID, "value": f"urn:uuid:{head.id}"}],
        "status": status,
        "intent": "proposal",
        "category": [{"text": "Exercise therapy"}],
        "title": f"Exercise plan: {TITLE.lower()}",
        "description": (
            "Stretching and strengthening proposed by clinical decision support. Do every "
            "exercise gently and stop at sharp pain."
            if plan is not None
            else "No exercise for now: the plan is withheld until it is safe (see the notes)."
        ),
        "subject": subject_reference(head.subject),
        "created": head.created_at,
    }
    if causes:
        if condition_references is None:
            resource["contained"] = [
                condition(cause, head, f"condition-{index}", prescription["disclaimer"])
                for index, cause in enumerate(causes, 1)
            ]
            resource["addresses"] = [
                {"reference": f"#condition-{index}", "display": cause.name}
                for index, cause in enumerate(causes, 1)
            ]
        else:
            resource["addresses"] = [
                {"reference": reference, "display": cause.name}
                for reference, cause in zip(condition_references, causes, strict=True)
            ]
    if plan is not None:
        # Exercises left out for safety are activities not to perform, so that an EHR shows
        # them as such rather than losing them.
        activities = [activity(item, article_title) for item in plan["items"]]
        activities += [do_not_perform(item) for item in plan.get("excluded", ())]
        if activities:
            resource["activity"] = activities
    resource["note"] = [{"text": text} for text in notes]
    return resource


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


def risk_assessment(head: RecordHead, assessment: Mapping[str, Any]) -> dict[str, Any]:
    triage = assessment["triage"]
    level = triage["level"]
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
    text = triage_level_text(head.level_text, triage)
    prediction = {
        "outcome": {
            "coding": [{"system": TRIAGE_SYSTEM, "code": level, "display": text}],
            "text": text,
        },
        "qualitativeRisk": {
            "coding": [{"system": RISK_PROBABILITY, "code": LEVEL_PROBABILITY[level]}]
        },
        "rationale": " ".join(rationale),
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
