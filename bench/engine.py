"""In-process cost of the rules core, per call, side by side in one run.

    .venv/bin/python bench/engine.py [--seconds 2]

Times assess() and escalation_check() on three reports (minimal, detailed self-care, urgent)
next to a reference: validating the same report with its marshmallow schema, the cheapest
thing every request already does. Prints microseconds per call and the ratio to the
reference. Rounds alternate between the candidates so that machine noise hits them alike; the
median round is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rules import load_library
from schemas.report import SymptomReportSchema
from service.examples import MINIMAL, POSSIBLE_DVT, SELF_CARE_TECHNIQUE

REPORTS = {"minimal": MINIMAL, "detailed": SELF_CARE_TECHNIQUE, "urgent": POSSIBLE_DVT}


def per_call(function, argument, budget: float) -> float:
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < budget:
        for _ in range(100):
            function(argument)
        calls += 100
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per candidate")
    args = parser.parse_args()
    evaluator = load_library().get()
    candidates = {"schema load (ref)": SymptomReportSchema().load}
    candidates["assess"] = evaluator.assess
    candidates["escalation_check"] = evaluator.escalation_check
    rounds = 5
    print(f"rules {evaluator.ruleset.version}; {rounds} alternating rounds; µs per call (median)")
    print(f"{'report':<10} {'candidate':<18} {'µs':>8} {'× ref':>8}")
    for name, report in REPORTS.items():
        results: dict[str, list[float]] = {key: [] for key in candidates}
        for _ in range(rounds):
            for key, function in candidates.items():
                results[key].append(per_call(function, report, args.seconds / rounds))
        floor = statistics.median(results["schema load (ref)"])
        for key, values in results.items():
            micro = statistics.median(values)
            print(f"{name:<10} {key:<18} {micro:8.1f} {micro / floor:8.2f}")
    print("target: assess well under 100 µs per call")


if __name__ == "__main__":
    main()
