"""Golden outputs: the full assessment of a fixed set of reports, pinned per rules version.

    python -m tests.rules.golden --write            # every loaded version that is unreleased
    python -m tests.rules.golden --write 1.1.0      # one version
    python -m tests.rules.golden --release 1.1.0    # freeze it: released: true

Each file ``tests/rules/golden/VERSION.yaml`` records the digest of the version's rule files,
whether the version is released, and the assessment of every report below. ``test_golden``
fails when either changes. While a version is unreleased its golden file may be rewritten
(review the diff: it is the behaviour change); once released, writing is refused, because a
released version never changes: a change in behaviour is a new rules version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from rules import RulesLibrary, load_library

GOLDEN_DIR = Path(__file__).parent / "golden"

_NO_SIGNS = {
    name: False
    for name in (
        "saddle_numbness", "bladder_or_bowel_changes", "foot_cold_or_pale", "calf_swelling",
        "fever", "weakness", "numbness", "tingling", "swelling", "bruising", "redness",
        "felt_pop", "locking_or_catching", "knee_giving_way", "lump_behind_knee",
    )
}  # fmt: skip
_NO_LIMITS = {
    "unable_to_bear_weight": False,
    "difficulty_walking": False,
    "difficulty_stairs": False,
    "difficulty_daily_tasks": False,
}

# Representative reports: one per red flag family, per leading cause and per kind of plan.
REPORTS: dict[str, dict[str, Any]] = {
    "minimal": {"pain": {"intensity": 2}},
    "technique problem": {
        "pain": {
            "intensity": 3,
            "locations": ["behind_knee", "back_of_thigh"],
            "side": "right",
            "quality": ["pulling"],
            "radiates_down_leg": False,
            "onset": "gradual",
            "started_during": "stretching",
            "duration_days": 4,
            "subsides_with_rest": True,
            "worse_with": ["stretching"],
        },
        "signs": {**_NO_SIGNS, "warmth": False},
        "function": _NO_LIMITS,
        "stretching": {"bouncing": True, "hold_seconds": 10, "warmed_up": False},
        "history": {"knee_problems": False, "hamstring_injury": False, "recent_immobility": False},
        "profile": {"age": 34, "activity_level": "active"},
    },
    "possible blood clot": {
        "pain": {"intensity": 6, "locations": ["behind_knee", "calf"], "subsides_with_rest": True},
        "signs": {"calf_swelling": True, "warmth": True},
        "history": {"recent_immobility": True},
    },
    "sciatica with tingling": {
        "pain": {
            "intensity": 5,
            "locations": ["behind_knee", "buttock", "lower_back"],
            "quality": ["shooting"],
            "radiates_down_leg": True,
            "subsides_with_rest": True,
        },
        "signs": {"tingling": True, "weakness": False, "saddle_numbness": False},
        "history": {"back_problems": True},
    },
    "complete and calm": {
        "pain": {"intensity": 1, "duration_days": 2},
        "signs": _NO_SIGNS,
        "function": _NO_LIMITS,
    },
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
    # Added with rules 2.0.0 (older versions' golden files keep the reports they were written with).
    "breathless with a swollen calf": {
        "pain": {"intensity": 4, "locations": ["behind_knee", "calf"]},
        "signs": {"calf_swelling": True, "breathlessness": True},
    },
    "tense calf after a sprint": {
        "pain": {"intensity": 9, "started_during": "sprinting", "onset": "sudden"},
        "signs": {"calf_tense": True, "pain_out_of_proportion": True},
    },
    "eases with rest but worse at night": {
        "pain": {"intensity": 5, "subsides_with_rest": True, "worse_with": ["night"]},
        "profile": {"age": 52},
    },
    "teenager with knee and hip pain": {
        "pain": {"intensity": 4, "locations": ["behind_knee", "hip"]},
        "profile": {"age": 13},
    },
    "possible strain behind a stronger cause": {
        "pain": {"intensity": 2, "quality": ["pulling"], "locations": ["back_of_thigh"]},
        "signs": {"numbness": True, "bruising": True},
    },
}


class GoldenError(Exception):
    """A golden file may not be written (it belongs to a released version)."""


def golden_file(version: str, directory: Path = GOLDEN_DIR) -> Path:
    return directory / f"{version}.yaml"


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: much faster
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def read_golden(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - safe loader


def render(library: RulesLibrary, version: str, released: bool = False) -> dict[str, Any]:
    evaluator = library.get(version)
    return {
        "version": version,
        "released": released,
        "digest": evaluator.ruleset.digest,
        "cases": [
            {"name": name, "report": report, "assessment": evaluator.assess(report)}
            for name, report in REPORTS.items()
        ],
    }


class _Dumper(_BaseDumper):
    """Writes every value in full (no &anchors and *aliases), so a diff reads as the change."""

    def ignore_aliases(self, data):
        return True


def dump(golden: dict[str, Any]) -> str:
    return yaml.dump(golden, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def write(library: RulesLibrary, version: str, directory: Path = GOLDEN_DIR) -> Path:
    """(Re)write the golden file of an unreleased version; refuse a released one."""
    path = golden_file(version, directory)
    if path.exists() and read_golden(path).get("released") is True:
        raise GoldenError(
            f"rules {version} is released: its golden outputs never change. Copy "
            f"rules/versions/{version} to a new version, change that, and write its golden file."
        )
    path.write_text(dump(render(library, version)), encoding="utf-8")
    return path


def release(library: RulesLibrary, version: str, directory: Path = GOLDEN_DIR) -> Path:
    """Mark a version released, once its golden file matches its rules exactly."""
    path = golden_file(version, directory)
    if not path.exists():
        raise GoldenError(f"no golden file for {version}: write it first")
    current = render(library, version, released=True)
    recorded = read_golden(path)
    if {**recorded, "released": True} != current:
        raise GoldenError(f"the golden file of {version} is out of date: write it first")
    path.write_text(dump(current), encoding="utf-8")
    return path


def digest_problem(golden: dict[str, Any], digest: str) -> str | None:
    """Why the rule files no longer match their golden file, or None when they do."""
    if golden["digest"] == digest:
        return None
    version = golden["version"]
    if golden.get("released") is True:
        return (
            f"the rule files of released rules {version} changed. A released version never "
            f"changes: restore rules/versions/{version}, copy it to a new version folder, make "
            "the change there and add a CHANGELOG entry."
        )
    return (
        f"the rule files of unreleased rules {version} changed since its golden outputs were "
        f"written: run `python -m tests.rules.golden --write {version}` and review the diff."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="write unreleased golden files")
    action.add_argument("--release", action="store_true", help="mark versions released")
    parser.add_argument("versions", nargs="*", help="default: every loaded version")
    args = parser.parse_args(argv)
    library = load_library()
    versions = args.versions or library.versions
    status = 0
    for version in versions:
        path = golden_file(version)
        if args.write and not args.versions and path.exists() and read_golden(path)["released"]:
            continue  # released: nothing to write
        try:
            done = release(library, version) if args.release else write(library, version)
        except GoldenError as error:
            print(error, file=sys.stderr)
            status = 1
        else:
            print(f"wrote {done.name}")
    return status


if __name__ == "__main__":
    sys.exit(main())
