"""Strict loading: a defective rule file stops the start-up, naming the file and the key."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from rules import RuleDefinitionError, UnknownRulesVersion, load_library
from rules.loader import VERSIONS_DIR, load_ruleset

RELEASED = VERSIONS_DIR / "1.0.0"
ARTICLE = Path(__file__).resolve().parents[3] / "shared" / "source" / "article.txt"


@pytest.fixture
def copy(tmp_path):
    """A writable copy of the released rule set, as versions/1.0.0 under tmp_path."""
    target = tmp_path / "versions" / "1.0.0"
    shutil.copytree(RELEASED, target)
    return target


def edit(folder: Path, filename: str, old: str, new: str) -> None:
    path = folder / filename
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {filename}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


DEFECTS = [
    (
        "an unknown key",
        "red_flags.yaml",
        "  code: possible_cauda_equina_syndrome\n",
        "  code: possible_cauda_equina_syndrome\n  severity: high\n",
        r"red_flags\.yaml: rf\.cauda_equina: unknown key\(s\): severity",
    ),
    (
        "a missing source",
        "stop_rules.yaml",
        "  source: {article: prevention, paragraph: 2}\n\n- id: stop.intense_pain",
        "\n- id: stop.intense_pain",
        r"stop_rules\.yaml: stop\.sharp_pain: missing key\(s\): source",
    ),
    (
        "a duplicate rule id",
        "stop_rules.yaml",
        "- id: stop.intense_pain",
        "- id: stop.sharp_pain",
        r"stop_rules\.yaml: stop\.sharp_pain: duplicate rule id 'stop\.sharp_pain' \(first at",
    ),
    (
        "a duplicate YAML key",
        "parameters.yaml",
        "mild_pain_max:\n  value: 3\n",
        "mild_pain_max:\n  value: 3\n  value: 4\n",
        r"parameters\.yaml.*duplicate key 'value'",
    ),
    (
        "an unknown parameter in a condition",
        "red_flags.yaml",
        "param: intense_pain_threshold}",
        "param: severe_pain_threshold}",
        r"red_flags\.yaml: rf\.intense_pain_not_settling\.when: unknown parameter",
    ),
    (
        "a number written into a condition",
        "red_flags.yaml",
        "param: intense_pain_threshold}",
        "value: 7}",
        r"red_flags\.yaml: rf\.intense_pain_not_settling\.when: 'at_least' takes exactly the keys",
    ),
    (
        "a number written into an advice text",
        "recommendations.yaml",
        "for {ice_minutes_min} to {ice_minutes_max} minutes",
        "for 15 to {ice_minutes_max} minutes",
        r"recommendations\.yaml: ice\.text: a number is written into the text",
    ),
    (
        "an unknown field",
        "red_flags.yaml",
        "is_true: signs.saddle_numbness",
        "is_true: signs.saddle_numb",
        r"red_flags\.yaml: rf\.cauda_equina\.when: unknown field 'signs\.saddle_numb'",
    ),
    (
        "an unknown value of a field",
        "causes.yaml",
        "values: [sprinting, kicking, change_of_direction]",
        "values: [sprinting, jumping]",
        r"causes\.yaml: hamstring_strain\.signals\..*'jumping' is not a value of "
        r"'pain\.started_during'",
    ),
    (
        "a version that does not match its folder",
        "ruleset.yaml",
        "version: 1.0.0",
        "version: 1.0.1",
        r"ruleset\.yaml: version: '1\.0\.1' does not match its folder",
    ),
    (
        "a guideline never cited",
        "ruleset.yaml",
        "guidelines:\n",
        "guidelines:\n  unused_guideline:\n    name: Unused\n    url: https://example.org/\n",
        r"ruleset\.yaml: guidelines: guideline\(s\) never cited: unused_guideline",
    ),
    (
        "a paragraph the article does not have",
        "stop_rules.yaml",
        "source: {article: prevention, paragraph: 2}",
        "source: {article: prevention, paragraph: 9}",
        r"stop_rules\.yaml: stop\.sharp_pain\.source: section 'prevention' has paragraphs 1 to 2",
    ),
    (
        "a dose given as a number instead of a parameter",
        "prescription.yaml",
        "dose: {minutes: warm_up_cardio_minutes}",
        "dose: {minutes: 5}",
        r"prescription\.yaml: programme\.0\.dose\.minutes: doses name a parameter",
    ),
    (
        "a negative parameter",
        "parameters.yaml",
        "mild_pain_max:\n  value: 3\n",
        "mild_pain_max:\n  value: -3\n",
        r"parameters\.yaml: mild_pain_max\.value: expected a non-negative number",
    ),
]


@pytest.mark.parametrize(
    ("filename", "old", "new", "message"),
    [defect[1:] for defect in DEFECTS],
    ids=[defect[0] for defect in DEFECTS],
)
def test_a_defect_fails_the_load_naming_file_and_key(copy, filename, old, new, message):
    edit(copy, filename, old, new)
    with pytest.raises(RuleDefinitionError) as raised:
        load_ruleset(copy)
    assert re.search(message, str(raised.value)), str(raised.value)
    assert "rules/versions/1.0.0/" in str(raised.value)


def test_a_missing_rule_file_is_named(copy):
    (copy / "causes.yaml").unlink()
    with pytest.raises(RuleDefinitionError, match=r"causes\.yaml: file is missing"):
        load_ruleset(copy)


def test_a_folder_that_is_not_a_version_is_refused(tmp_path):
    shutil.copytree(RELEASED, tmp_path / "versions" / "latest")
    with pytest.raises(RuleDefinitionError, match="not a SemVer version"):
        load_library.__wrapped__(tmp_path / "versions")


def test_versions_load_side_by_side_and_the_newest_is_the_default(copy):
    newer = copy.parent / "1.1.0"
    shutil.copytree(copy, newer)
    edit(newer, "ruleset.yaml", "version: 1.0.0", "version: 1.1.0")
    edit(
        newer,
        "parameters.yaml",
        "intense_pain_threshold:\n  value: 7",
        "intense_pain_threshold:\n  value: 8",
    )
    library = load_library.__wrapped__(copy.parent)
    assert library.versions == ["1.0.0", "1.1.0"]
    assert library.get().ruleset.version == "1.1.0"
    report = {"pain": {"intensity": 7, "subsides_with_rest": False}}
    assert library.get("1.0.0").escalation_check(report)["level"] == "urgent"
    assert library.get("1.1.0").escalation_check(report)["level"] == "self_care"
    with pytest.raises(UnknownRulesVersion) as raised:
        library.get("2.0.0")
    assert raised.value.available == ["1.0.0", "1.1.0"]


def _article_sections(text: str) -> list[tuple[str, int]]:
    """(heading, paragraph count) in reading order; the untitled opening is 'Introduction'."""
    sections: list[list] = [["Introduction", 0]]
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        if len(line) < 100 and not line.endswith((".", "!", "?")):
            sections.append([line, 0])
        else:
            sections[-1][1] += 1
    return [(heading, count) for heading, count in sections]


def test_the_rule_set_mirrors_the_article_and_cites_every_paragraph():
    if not ARTICLE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the source article is missing at {ARTICLE.name}; CI must check it")
        pytest.skip("the source article is not beside this checkout")
    article = _article_sections(ARTICLE.read_text(encoding="utf-8"))
    ruleset = load_library().get("1.0.0").ruleset
    declared = [(s["heading"], s["paragraphs"]) for s in ruleset.documents["article"]["sections"]]
    assert declared == article
    keys = {
        s["heading"]: key
        for key, s in zip(
            [k for k, _ in sorted(_section_keys(ruleset).items(), key=lambda kv: kv[1])],
            ruleset.documents["article"]["sections"],
            strict=True,
        )
    }
    uncited = [
        f"{heading} paragraph {n}"
        for heading, count in article
        for n in range(1, count + 1)
        if (keys[heading], n) not in ruleset.cited_paragraphs
    ]
    assert uncited == []


def _section_keys(ruleset) -> dict[str, int]:
    """Article section keys in the order ruleset.yaml declares them."""
    import yaml

    raw = yaml.safe_load((RELEASED / "ruleset.yaml").read_text(encoding="utf-8"))
    return {key: index for index, key in enumerate(raw["article"]["sections"])}
