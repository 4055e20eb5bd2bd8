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
    fields, same values, same order: the same JSON bytes)."""
    try:
        derived = plan_of(assessment_answer)
    except (KeyError, TypeError):  # not an assessment's answer: nothing to read a plan from
        return False
    return _same_objects(plan_answer, derived) or orjson.dumps(plan_answer) == orjson.dumps(derived)


def _same_objects(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """The same keys in the same order, each value the very same object: then both encode to
    the same bytes, and neither needs encoding. A plan stored with its assessment is made this
    way (``prescription_from_assessment``), which saves two encodings of some 14 kB a write."""
    return list(first) == list(second) and all(first[key] is second[key] for key in second)
