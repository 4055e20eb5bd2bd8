"""The adaptive interview: the next question to ask about a report so far, and when to stop.

Safety questions come first, most urgent red flag first; then the questions whose answers could
still change the stop decision or the leading cause, by how much they could change it. A
checklist asks several yes/no questions at once (``rules/checklists.yaml``). Stateless and pure:
the report so far and the fields the person declined are all it reads.

    interviewer = Interviewer(evaluator.ruleset, load_report_fields(), load_checklists(...))
    interviewer.next(report, declined=["history.cancer"])   # -> JSON-ready dict
"""

from __future__ import annotations

from rules.interview.interviewer import (
    EMERGENCY_FOUND,
    NOTHING_LEFT_TO_ASK,
    STOP_REASONS,
    TRIAGE_COMPLETE,
    Interviewer,
    UnknownReportFields,
)

__all__ = [
    "EMERGENCY_FOUND",
    "NOTHING_LEFT_TO_ASK",
    "STOP_REASONS",
    "TRIAGE_COMPLETE",
    "Interviewer",
    "UnknownReportFields",
]
