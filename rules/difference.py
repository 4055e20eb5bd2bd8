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
    triage = _triage_difference(before["triage"], after["triage"])
    triage_changed = _triage_changed(triage)
    causes = _added_removed(
        _codes(before["likely_causes"], "code"), _codes(after["likely_causes"], "code")
    )
    leading = {"from": _leading_cause(before), "to": _leading_cause(after)}
    plan = {"from_status": _plan_status(before), "to_status": _plan_status(after)}
    plan_items = _added_removed(_plan_items(before), _plan_items(after))
    recommendations = _added_removed(
        _codes(before["recommendations"], "code"), _codes(after["recommendations"], "code")
    )
    return {
        **triage,
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


def _triage_difference(before: JSON, after: JSON) -> JSON:
    return {
        "level": {
            "from": before["level"],
            "to": after["level"],
            "direction": _direction(before["level"], after["level"]),
        },
        "stop_stretching": {"from": before["stop_stretching"], "to": after["stop_stretching"]},
        "time_frame": {"from": _time_frame(before), "to": _time_frame(after)},
        "complete": {"from": before["complete"], "to": after["complete"]},
        "red_flags": _added_removed(
            _codes(before["red_flags"], "code"), _codes(after["red_flags"], "code")
        ),
    }


def _triage_changed(triage: JSON) -> bool:
    # A clinical lead must hear of every answer that now asks for care at another time, or that
    # now has safety questions to answer, as well as of a new level, red flag or stop.
    return (
        any(
            triage[key]["from"] != triage[key]["to"]
            for key in ("level", "stop_stretching", "time_frame")
        )
        or _moved(triage["red_flags"])
        or (triage["complete"]["from"] and not triage["complete"]["to"])
    )
