"""An assessment's plan, read from the assessment's answer.

An assessment's plan is not stored a second time: it is ``prescription_from_assessment`` of the
assessment's answer, a selection of its fields, read from the stored assessment. How answers
themselves are kept is in ``service.storage.packing``.
"""

from __future__ import annotations

from typing import Any

import orjson

from rules import prescription_from_assessment


def plan_of(assessment_answer: dict[str, Any]) -> dict[str, Any]:
    """An assessment's plan: what its plan record answers."""
    return prescription_from_assessment(assessment_answer)


def is_plan_of(plan_answer: dict[str, Any], assessment_answer: dict[str, Any]) -> bool:
    """Whether a plan's answer is exactly the one read from its assessment's answer (same
    fields, same values, same order: the same JSON bytes). Migration 0008 dropped the copies
    of such plans; since 0011 an assessment's plan is never stored apart."""
    try:
        derived = plan_of(assessment_answer)
    except (KeyError, TypeError):  # not an assessment's answer: nothing to read a plan from
        return False
    return orjson.dumps(plan_answer) == orjson.dumps(derived)
