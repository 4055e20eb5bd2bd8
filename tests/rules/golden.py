"""Golden outputs: the full assessment of a fixed set of reports, pinned per released version.

    python -m tests.rules.golden VERSION     # write tests/rules/golden/VERSION.yaml

Writing is refused when the file exists: a released version's outputs never change. A change
in behaviour is a new rules version, with golden outputs of its own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from rules import load_library
from service import examples

GOLDEN_DIR = Path(__file__).parent / "golden"

_NO = {
    "signs": {
        name: False
        for name in (
            "saddle_numbness", "bladder_or_bowel_changes", "foot_cold_or_pale", "calf_swelling",
            "fever", "weakness", "numbness", "tingling", "swelling", "bruising", "redness",
            "felt_pop", "locking_or_catching", "knee_giving_way", "lump_behind_knee",
        )
    },
    "function": {
        name: False
        for name in (
            "unable_to_bear_weight", "difficulty_walking", "difficulty_stairs",
            "difficulty_daily_tasks",
        )
    },
}  # fmt: skip

REPORTS = {
    "minimal": examples.MINIMAL,
    "technique problem": examples.SELF_CARE_TECHNIQUE,
    "possible blood clot": examples.POSSIBLE_DVT,
    "sciatica with tingling": examples.SCIATICA_TINGLING,
    "complete and calm": {"pain": {"intensity": 1, "duration_days": 2}, **_NO},
    "saddle numbness": {"pain": {"intensity": 4}, "signs": {"saddle_numbness": True}},
    "cold foot": {"pain": {"intensity": 5}, "signs": {"foot_cold_or_pale": True}},
    "cannot bear weight": {"pain": {"intensity": 6}, "function": {"unable_to_bear_weight": True}},
    "hot swollen knee": {"pain": {"intensity": 5}, "signs": {"fever": True, "swelling": True}},
    "weak and numb": {"pain": {"intensity": 4}, "signs": {"weakness": True, "numbness": True}},
    "intense not settling": {"pain": {"intensity": 8, "subsides_with_rest": False}},
    "torn in a sprint": {
        "pain": {"intensity": 7, "onset": "sudden", "started_during": "sprinting"},
        "signs": {"felt_pop": True, "bruising": True},
    },
    "baker's cyst": {
        "pain": {"intensity": 3},
        "signs": {"lump_behind_knee": True, "stiffness": True},
        "history": {"arthritis": True},
        "profile": {"age": 58},
    },
    "meniscus": {
        "pain": {"intensity": 4, "started_during": "change_of_direction"},
        "signs": {"locking_or_catching": True},
    },
    "moderate pulling": {"pain": {"intensity": 5, "quality": ["pulling"]}},
    "imbalance": {"pain": {"intensity": 2}, "profile": {"quadriceps_dominant": True}},
    "sharp while stretching": {
        "pain": {"intensity": 4, "quality": ["sharp"], "started_during": "stretching"},
        "stretching": {"forcing_through_pain": True},
    },
    "persistent": {"pain": {"intensity": 3, "duration_days": 40}},
    "piriformis": {"pain": {"intensity": 3, "locations": ["buttock"], "worse_with": ["sitting"]}},
    "referred": {"pain": {"intensity": 3, "locations": ["lower_back", "hip"]}},
}


def golden_file(version: str) -> Path:
    return GOLDEN_DIR / f"{version}.yaml"


def render(version: str) -> dict:
    evaluator = load_library().get(version)
    return {
        "version": version,
        "digest": evaluator.ruleset.digest,
        "cases": [
            {"name": name, "report": report, "assessment": evaluator.assess(report)}
            for name, report in REPORTS.items()
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version")
    args = parser.parse_args()
    path = golden_file(args.version)
    if path.exists():
        sys.exit(f"{path.name} exists: released outputs never change; make a new rules version")
    path.write_text(
        yaml.safe_dump(render(args.version), sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8",
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
