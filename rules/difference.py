"""What changed between two assessments of one report: the triage, the red flags, the possible
causes, the plan and the advice, as data.

Pure: two assessments in (as ``Evaluator.assess`` returns them, or as they were stored), one
JSON-ready dict out. It compares stable codes and ids, never texts, so a reworded message or a
re-dosed exercise is not a change; the two assessments themselves show those.

    assessment_difference(stored, evaluator.assess(report))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rules.model import LEVEL_RANK

JSON = dict[str, Any]

RAISED, LOWERED, UNCHANGED = "raised", "lowered", "unchanged"


def _codes(items: Iterable[JSON], key: str) -> list[str]:
    """The codes of ``items`` in their order (most urgent or most likely first), once each."""
    return list(dict.fromkeys(item[key] for item in items))


def _added_removed(before: list[str], after: list[str]) -> JSON:
    """Codes only in ``after`` (in its order) and codes only in ``before`` (in its order)."""
    was, now = set(before), set(after)
    return {
        "added": [code for code in after if code not in was],
        "removed": [code for code in before if code not in now],
    }


def _direction(before: str, after: str) -> str:
    rank_before, rank_after = LEVEL_RANK[before], LEVEL_RANK[after]
    if rank_after > rank_before:
        return RAISED
    if rank_after < rank_before:
        return LOWERED
    return UNCHANGED


def _plan_status(assessment: JSON) -> str | None:
    plan = assessment.get("exercise_plan")
    return plan["status"] if plan else None


def _plan_items(assessment: JSON) -> list[str]:
    plan = assessment.get("exercise_plan")
    return _codes(plan["items"], "exercise_id") if plan else []


def _leading_cause(assessment: JSON) -> str | None:
    causes = assessment["likely_causes"]
    return causes[0]["code"] if causes else None


def _time_frame(triage: JSON) -> str | None:
    """The time frame's code (rules 2.0.0 and later; None before, or when no flag fired)."""
    frame = triage.get("time_frame")
    return frame["code"] if frame else None


def _moved(change: JSON) -> bool:
    return bool(change["added"] or change["removed"])


def assessment_difference(before: JSON, after: JSON) -> JSON:
    """How ``after`` differs from ``before`` (two assessments, typically of the same report
    under two rules versions).

    - ``level``: ``from``, ``to`` and ``direction`` (raised, lowered or unchanged: towards
      emergency is raised);
    - ``stop_stretching``, ``time_frame`` (its code, or null), ``complete``, ``leading_cause``
      (the first likely cause, or null): ``from`` and ``to``;
    - ``red_flags``, ``causes`` (likely cause codes), ``plan_items`` (exercise ids) and
      ``recommendations`` (advice codes): ``added`` and ``removed``;
    - ``plan``: ``from_status`` and ``to_status``, null when the plan is withheld;
    - ``triage_changed``: the level, the red flags, stop stretching or the time frame differ, or
      the triage is no longer complete;
    - ``changed``: the triage, the likely causes or the leading one, or the plan (status or
      items) differ. Advice, completeness and texts alone do not count as a change.
    """
    triage_before, triage_after = before["triage"], after["triage"]
    level_before, level_after = triage_before["level"], triage_after["level"]
    red_flags = _added_removed(
        _codes(triage_before["red_flags"], "code"), _codes(triage_after["red_flags"], "code")
    )
    causes = _added_removed(
        _codes(before["likely_causes"], "code"), _codes(after["likely_causes"], "code")
    )
    leading = {"from": _leading_cause(before), "to": _leading_cause(after)}
    plan = {"from_status": _plan_status(before), "to_status": _plan_status(after)}
    plan_items = _added_removed(_plan_items(before), _plan_items(after))
    recommendations = _added_removed(
        _codes(before["recommendations"], "code"), _codes(after["recommendations"], "code")
    )
    stop = {"from": triage_before["stop_stretching"], "to": triage_after["stop_stretching"]}
    frame = {"from": _time_frame(triage_before), "to": _time_frame(triage_after)}
    complete = {"from": triage_before["complete"], "to": triage_after["complete"]}
    # A clinical lead must hear of every answer that now asks for care at another time, or that
    # now has safety questions to answer, as well as of a new level, red flag or stop.
    triage_changed = (
        level_before != level_after
        or _moved(red_flags)
        or stop["from"] != stop["to"]
        or frame["from"] != frame["to"]
        or (complete["from"] and not complete["to"])
    )
    return {
        "level": {
            "from": level_before,
            "to": level_after,
            "direction": _direction(level_before, level_after),
        },
        "stop_stretching": stop,
        "time_frame": frame,
        "complete": complete,
        "red_flags": red_flags,
        "causes": causes,
        "leading_cause": leading,
        "plan": plan,
        "plan_items": plan_items,
        "recommendations": recommendations,
        "triage_changed": triage_changed,
        "changed": (
            triage_changed
            or _moved(causes)
            or leading["from"] != leading["to"]
            or plan["from_status"] != plan["to_status"]
            or _moved(plan_items)
        ),
    }
