"""What a version's rule files hold once loaded, and the rule set as served by
GET /v1/rules/{version}: every rule with its condition, parameters and source, as loaded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.loading.prescription import Prescription
from rules.model import (
    Cause,
    Contradiction,
    Exercise,
    Parameter,
    Recommendation,
    RedFlag,
    StopRule,
    TimeFrame,
)

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class LoadedRules:
    time_frames: dict[str, TimeFrame]
    red_flags: tuple[RedFlag, ...]
    causes: tuple[Cause, ...]
    contradictions: tuple[Contradiction, ...]
    exercises: dict[str, Exercise]
    stop_rules: tuple[StopRule, ...]
    presuppositions: dict[str, dict[str, Any]]
    recommendations: tuple[Recommendation, ...]
    prescription: Prescription


def served_document(release: JSON, parameters: Mapping[str, Parameter], rules: LoadedRules) -> JSON:
    """``release`` is what the version says of itself: version, released, summary, digest,
    disclaimer and documents, in that order."""
    return {
        **release,
        "parameters": [p.as_json() for p in parameters.values()],
        "red_flags": [flag.rule.definition for flag in rules.red_flags],
        "stop_rules": [rule.rule.definition for rule in rules.stop_rules],
        "causes": [
            {**cause.catalogue, "signals": [s.rule.definition for s in cause.signals]}
            for cause in rules.causes
        ],
        "recommendations": [rec.rule.definition for rec in rules.recommendations],
        "exercises": [exercise.catalogue for exercise in rules.exercises.values()],
        "prescription": _prescription(rules.prescription),
    } | _later(rules)


def _prescription(prescription: Prescription) -> JSON:
    return {
        "programme": [
            {
                "exercise_id": item.exercise.id,
                "phase": item.phase,
                "dose": item.dose_parameters,
                "per_side": item.per_side,
            }
            for item in prescription.programme
        ],
        "progression": prescription.progression,
        "safety": list(prescription.safety),
        **{
            kind: [rule.rule.definition for rule in getattr(prescription, kind)]
            for kind in ("withhold", "exclude", "adjust", "review")
        },
    }


def _later(rules: LoadedRules) -> JSON:
    """What only rules 2.0.0 and later have, served only when present, so that an older
    version's document stays as it was released."""
    later = {
        "time_frames": [frame.output for frame in rules.time_frames.values()],
        "contradictions": [c.rule.definition for c in rules.contradictions],
        "presuppositions": [{"name": name, **p} for name, p in rules.presuppositions.items()],
    }
    return {key: value for key, value in later.items() if value}
