"""Golden outputs: a rules version's files and its outputs for fixed reports are pinned.

For a released version a change fails with the advice to make a new version; for an unreleased
one, with the command that rewrites its golden file (see ``tests/rules/golden.py``).
"""

from __future__ import annotations

import pytest
import yaml

from tests.rules.golden import (
    GOLDEN_DIR,
    REPORTS,
    GoldenError,
    digest_problem,
    read_golden,
    release,
    write,
)

GOLDEN = {path.stem: read_golden(path) for path in sorted(GOLDEN_DIR.glob("*.yaml"))}
GOLDEN_CASES = [
    pytest.param(version, case, id=f"{version}: {case['name']}")
    for version, golden in GOLDEN.items()
    for case in golden["cases"]
]


def test_every_loaded_version_has_golden_outputs(library):
    missing = set(library.versions) - set(GOLDEN)
    assert not missing, (
        f"rules versions without golden outputs: {sorted(missing)}; "
        "write them with: python -m tests.rules.golden --write VERSION"
    )
    assert set(GOLDEN) <= set(library.versions), "a golden file for a version that is not loaded"


@pytest.mark.parametrize("version", sorted(GOLDEN))
def test_the_rule_files_are_those_the_golden_outputs_were_written_for(library, version):
    golden = GOLDEN[version]
    assert golden["version"] == version
    assert isinstance(golden["released"], bool)
    assert len(golden["cases"]) >= 15
    problem = digest_problem(golden, library.get(version).ruleset.digest)
    assert problem is None, problem


@pytest.mark.parametrize(("version", "case"), GOLDEN_CASES)
def test_a_version_gives_its_golden_outputs(library, version, case):
    state = "released" if GOLDEN[version]["released"] else "unreleased"
    assert library.get(version).assess(case["report"]) == case["assessment"], (
        f"the output of {state} rules {version} changed for {case['name']!r}"
    )


# --- the golden writer itself ----------------------------------------------------------------


def test_a_changed_released_version_is_told_to_become_a_new_version():
    golden = {"version": "1.0.0", "released": True, "digest": "a" * 64}
    assert digest_problem(golden, "a" * 64) is None
    assert "make the change there" in digest_problem(golden, "b" * 64)
    assert "new version" in digest_problem(golden, "b" * 64)
    unreleased = {**golden, "released": False}
    assert "--write 1.0.0" in digest_problem(unreleased, "b" * 64)


def test_golden_files_are_written_only_for_unreleased_versions(library, tmp_path):
    version = library.versions[-1]
    path = write(library, version, tmp_path)
    written = read_golden(path)
    assert written["released"] is False
    assert [case["name"] for case in written["cases"]] == list(REPORTS)
    assert "*id" not in path.read_text(encoding="utf-8"), "no YAML aliases in golden files"
    write(library, version, tmp_path)  # unreleased: may be rewritten

    release(library, version, tmp_path)
    assert read_golden(path)["released"] is True
    before = path.read_text(encoding="utf-8")
    with pytest.raises(GoldenError, match="new version"):
        write(library, version, tmp_path)
    assert path.read_text(encoding="utf-8") == before


def test_an_out_of_date_golden_file_cannot_be_released(library, tmp_path):
    version = library.versions[-1]
    path = write(library, version, tmp_path)
    golden = read_golden(path)
    golden["cases"][0]["assessment"]["triage"]["level"] = "emergency"
    path.write_text(yaml.safe_dump(golden), encoding="utf-8")
    with pytest.raises(GoldenError, match="out of date"):
        release(library, version, tmp_path)
