"""The clinical hazard log (docs/hazard-log.yaml) names only controls that exist: rules of the
default rules version, test functions, and clinical cases by their names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from rules import load_library
from tests.rules.test_clinical_cases import CASES

ROOT = Path(__file__).resolve().parents[1]
LOG = yaml.safe_load((ROOT / "docs" / "hazard-log.yaml").read_text(encoding="utf-8"))
KEYS = {"id", "hazard", "causes", "controls", "severity", "likelihood", "residual"}
SEVERITIES = ("minor", "moderate", "major", "catastrophic")
LIKELIHOODS = ("very low", "low", "medium", "high", "very high")


def rule_ids(ruleset) -> set[str]:
    ids = {flag.rule.id for flag in ruleset.red_flags}
    ids |= {rule.rule.id for rule in ruleset.stop_rules}
    ids |= {c.rule.id for c in ruleset.contradictions}
    ids |= {rec.rule.id for rec in ruleset.recommendations}
    ids |= {s.rule.id for cause in ruleset.causes for s in cause.signals}
    for kind in ("withhold", "exclude", "adjust", "review"):
        ids |= {rule.rule.id for rule in getattr(ruleset, kind)}
    return ids


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def missing_controls(hazard: dict, known_rules: set[str], known_cases: set[str]) -> list[str]:
    controls = hazard["controls"]
    missing = [f"rule {r}" for r in controls.get("rules", []) if r not in known_rules]
    for test in controls.get("tests", []):
        path, _, name = test.partition("::")
        file = ROOT / path
        if not file.is_file() or not name.startswith("test_") or name not in functions_in(file):
            missing.append(f"test {test}")
    missing += [f"case {c!r}" for c in controls.get("cases", []) if c not in known_cases]
    return missing


KNOWN_RULES = rule_ids(load_library().get().ruleset)
KNOWN_CASES = {case["name"] for _, case in CASES}


@pytest.mark.parametrize("hazard", LOG, ids=[h["id"] for h in LOG])
def test_every_hazard_names_only_controls_that_exist(hazard):
    assert set(hazard) == KEYS, hazard["id"]
    assert hazard["severity"] in SEVERITIES
    assert hazard["likelihood"] in LIKELIHOODS
    controls = hazard["controls"]
    assert set(controls) <= {"rules", "tests", "cases"}
    assert any(controls.values())
    assert missing_controls(hazard, KNOWN_RULES, KNOWN_CASES) == [], hazard["id"]


def test_hazard_ids_are_unique_and_in_order():
    ids = [h["id"] for h in LOG]
    assert ids == [f"H-{n:02d}" for n in range(1, len(ids) + 1)]


def test_a_control_that_does_not_exist_is_found():
    hazard = {
        "controls": {
            "rules": ["rf.no_such_flag"],
            "tests": ["tests/test_hazard_log.py::test_nothing_of_that_name"],
            "cases": ["No case is named this."],
        }
    }
    assert len(missing_controls(hazard, KNOWN_RULES, KNOWN_CASES)) == 3
