"""Replaying a complete report through the interview, one question at a time: how the measures
of the interview are taken (the tests and the benchmark) and a worked example of a client.

The interview starts from the pain score (the one required answer); each question is then
answered from the full report as the rules read it (an answer in an older wording answers the
question that replaced it, and answers that contradict each other are read the safer way), and
a field the report leaves out is declined."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.conditions import nest
from rules.interview.interviewer import Interviewer

JSON = dict[str, Any]
REQUIRED = "pain.intensity"


@dataclass
class Replay:
    report: JSON  # what the interview collected
    declined: list[str]
    questions: list[JSON] = field(default_factory=list)  # every question asked, in order
    last: JSON = field(default_factory=dict)  # the final answer, with should_stop true
    # How many questions had been asked when the triage was first complete (the screen
    # complete, or every red-flag question left declined), or an emergency first found (None:
    # never).
    to_complete_triage: int | None = None
    to_emergency: int | None = None


def replay(interviewer: Interviewer, full_report: Mapping[str, Any], limit: int = 200) -> Replay:
    answers = interviewer.reading(full_report)
    start = {REQUIRED: answers[REQUIRED]}
    walk = Replay(report=nest(start), declined=[])
    for _ in range(limit):
        answer = interviewer.next(walk.report, walk.declined)
        _note(walk, answer)
        if answer["should_stop"]:
            walk.last = answer
            return walk
        walk.questions.append(answer["question"])
        for path in answer["question"]["fields"]:
            if path in answers:
                section, name = path.split(".")
                walk.report.setdefault(section, {})[name] = answers[path]
            else:
                walk.declined.append(path)
    raise RuntimeError(f"the interview asked more than {limit} questions")


def _note(walk: Replay, answer: JSON) -> None:
    count = len(walk.questions)
    screen = answer["screen"]
    question = answer["question"]
    safety_done = question is None or question["priority"] != "red_flag"
    if walk.to_complete_triage is None and (screen["complete"] or safety_done):
        walk.to_complete_triage = count
    if walk.to_emergency is None and screen["level"] == "emergency":
        walk.to_emergency = count
