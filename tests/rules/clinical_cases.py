"""The clinical cases (tests/rules/cases/*.yaml), read in one place: by the rules tests, the
fast-path and storage tests, the interview and record-size benchmarks and the training of the
stored-record dictionaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).parent / "cases"


def load_cases() -> list[tuple[str, Any]]:
    """Every case with the name of its file, in file order."""
    cases = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(loaded, list), f"{path.name}: a case file is a list of cases"
        assert loaded, f"{path.name}: no cases"
        cases.extend((path.name, case) for case in loaded)
    return cases


def case_reports() -> list[dict]:
    """The report of every case that has one."""
    return [
        case["report"]
        for _, case in load_cases()
        if isinstance(case, dict) and isinstance(case.get("report"), dict)
    ]
