"""How many questions the adaptive interview asks, over the clinical cases.

    .venv/bin/python bench/interview.py

Replays every clinical case (tests/rules/cases) through the interview one question at a time,
answering from the case's report and declining what it leaves out (rules/interview/replay.py),
and prints:

- the questions to a complete triage (median, 90th percentile, maximum; the target is a median
  of 8 or fewer), over the cases whose whole report gives a complete triage, and over every
  case, counting up to the moment no red-flag question is left but declined ones;
- the questions the whole interview asks, up to its stop;
- the most questions asked before an emergency was found, over the cases whose whole report
  is an emergency;
- how many cases end with a different level, red flags or stop decision from assessing the
  whole report (it must be none).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rules import load_library, load_report_fields  # noqa: E402
from rules.interview import Interviewer  # noqa: E402
from rules.interview.replay import replay  # noqa: E402
from rules.loading import load_checklists  # noqa: E402
from tests.rules.clinical_cases import load_cases  # noqa: E402

TARGET_MEDIAN = 8


def distribution(counts: list[int]) -> str:
    ordered = sorted(counts)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered):g}, 90th percentile {p90}, maximum {ordered[-1]} "
        f"({len(ordered)} cases)"
    )


def main() -> int:
    evaluator = load_library().get()
    sections = load_report_fields()
    interviewer = Interviewer(evaluator.ruleset, sections, load_checklists(sections))
    complete, every, whole_interview, to_emergency, differing = [], [], [], [], []
    for _, case in load_cases():
        triage = evaluator.assess(case["report"])["triage"]
        walk = replay(interviewer, case["report"])
        screen = walk.last["screen"]
        every.append(walk.to_complete_triage)
        whole_interview.append(len(walk.questions))
        if triage["complete"]:
            complete.append(walk.to_complete_triage)
        if triage["level"] == "emergency":
            to_emergency.append(walk.to_emergency)
        same_flags = [f["code"] for f in screen["red_flags"]] == [
            f["code"] for f in triage["red_flags"]
        ]
        if (
            screen["level"] != triage["level"]
            or screen["stop_stretching"] != triage["stop_stretching"]
            or not (same_flags or screen["level"] == "emergency")
        ):
            differing.append(case["name"])
    median = statistics.median(complete)
    print(f"rules {evaluator.ruleset.version}, {len(every)} clinical cases")
    print(f"questions to a complete triage (complete cases): {distribution(complete)}")
    print(f"questions to a complete triage (every case):     {distribution(every)}")
    print(f"questions in the whole interview:                {distribution(whole_interview)}")
    print(
        f"most questions before an emergency was found: {max(to_emergency)} "
        f"({len(to_emergency)} emergency cases)"
    )
    ruleset = interviewer.ruleset
    red_flag_questions = {
        path for flag in ruleset.red_flags for path in flag.rule.when.fields
    } & set(ruleset.questions)
    print(
        f"the full Questionnaire asks {len(ruleset.questions)} questions, "
        f"{len(red_flag_questions)} of them for the red flags"
    )
    print(f"cases ending with another answer than the whole report: {len(differing)}")
    for name in differing:
        print(f"  {name}")
    print(f"median target {TARGET_MEDIAN}: {'met' if median <= TARGET_MEDIAN else 'NOT met'}")
    return 0 if median <= TARGET_MEDIAN and not differing else 1


if __name__ == "__main__":
    sys.exit(main())
