"""A prescription as a CarePlan: its status and notes, the conditions it addresses and its
activities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.fhir import TITLE, URN_UUID
from schemas.fhir.resources.activities import activity, do_not_perform
from schemas.fhir.resources.condition import condition
from schemas.fhir.resources.head import CauseView, RecordHead, subject_reference

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
    status, notes = _plan_status(prescription)
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
        resource.update(_addressed(causes, head, prescription["disclaimer"], condition_references))
    if plan is not None:
        # Exercises left out for safety are activities not to perform, so that an EHR shows
        # them as such rather than losing them.
        activities = [activity(item, article_title) for item in plan["items"]]
        activities += [do_not_perform(item) for item in plan.get("excluded", ())]
        if activities:
            resource["activity"] = activities
    resource["note"] = [{"text": text} for text in notes]
    return resource


def _plan_status(prescription: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The CarePlan's status, and the notes that say why (and what stops the exercise)."""
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
    return status, notes


def _addressed(
    causes: Sequence[CauseView],
    head: RecordHead,
    disclaimer: str,
    condition_references: Sequence[str] | None,
) -> dict[str, Any]:
    """The CarePlan's ``addresses``: its causes as Conditions contained in it, or, with
    ``condition_references``, the Conditions those point at."""
    if condition_references is not None:
        return {
            "addresses": [
                {"reference": reference, "display": cause.name}
                for reference, cause in zip(condition_references, causes, strict=True)
            ]
        }
    return {
        "contained": [
            condition(cause, head, f"condition-{index}", disclaimer)
            for index, cause in enumerate(causes, 1)
        ],
        "addresses": [
            {"reference": f"#condition-{index}", "display": cause.name}
            for index, cause in enumerate(causes, 1)
        ],
    }
