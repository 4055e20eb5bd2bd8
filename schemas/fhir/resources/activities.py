"""A CarePlan's activities: a prescribed exercise with its dose and timing, and an exercise
left out for safety as one not to perform."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.fhir import EXERCISE_SYSTEM, UCUM
from schemas.fhir.resources.head import source_text


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
