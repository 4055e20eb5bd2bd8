"""A released rules version never changes: neither its files nor its outputs."""

from __future__ import annotations

import pytest
import yaml

from rules import load_library
from tests.rules.golden import GOLDEN_DIR, golden_file

RELEASED = sorted(path.stem for path in GOLDEN_DIR.glob("*.yaml"))


def test_every_loaded_version_has_golden_outputs():
    assert RELEASED, "no golden outputs at all"
    assert set(load_library().versions) <= set(RELEASED), (
        "a loaded rules version has no golden outputs: python -m tests.rules.golden VERSION"
    )


@pytest.fixture(scope="module", params=RELEASED)
def golden(request):
    return yaml.safe_load(golden_file(request.param).read_text(encoding="utf-8"))


def test_the_rule_files_of_a_released_version_are_unchanged(golden):
    ruleset = load_library().get(golden["version"]).ruleset
    assert ruleset.digest == golden["digest"], (
        f"the files of released rules {golden['version']} changed; released versions are "
        "immutable: copy the folder to a new version and change that"
    )


def test_a_released_version_gives_the_same_outputs(golden):
    evaluator = load_library().get(golden["version"])
    assert len(golden["cases"]) >= 15
    for case in golden["cases"]:
        assert evaluator.assess(case["report"]) == case["assessment"], case["name"]
