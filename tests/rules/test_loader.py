"""Strict loading: a defective rule file stops the start-up, naming the file and the key.

Each defect is made in a temporary copy of the released rule set, by editing the parsed YAML
(so the tests follow the rule files as they evolve) or, where the defect is textual, the text.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules import RuleDefinitionError, UnknownRulesVersion, load_library
from rules.loader import VERSIONS_DIR, load_ruleset

RELEASED = VERSIONS_DIR / "1.0.0"
REPO_ROOT = Path(__file__).resolve().parents[2]
# The clinical source lives outside the repository, beside the checkout; POPLITEAL_ARTICLE
# points elsewhere.
ARTICLE = Path(
    os.environ.get("POPLITEAL_ARTICLE") or REPO_ROOT.parent / "shared" / "source" / "article.txt"
)


@pytest.fixture
def copy(tmp_path) -> Path:
    """A writable copy of rules 1.0.0, as versions/1.0.0 under tmp_path."""
    target = tmp_path / "versions" / "1.0.0"
    shutil.copytree(RELEASED, target)
    return target


def read(folder: Path, filename: str) -> Any:
    return yaml.safe_load((folder / filename).read_text(encoding="utf-8"))


def write(folder: Path, filename: str, data: Any) -> None:
    (folder / filename).write_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


def _find(node: Any, predicate: Callable[[dict], bool]) -> dict | None:
    """The first mapping inside ``node`` (depth first) for which ``predicate`` holds."""
    if isinstance(node, dict):
        if predicate(node):
            return node
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _find(child, predicate)
        if found is not None:
            return found
    return None


def _with_condition(rules: list[dict], predicate: Callable[[dict], bool]) -> tuple[dict, dict]:
    """The first rule whose condition has a part matching ``predicate``, and that part."""
    for rule in rules:
        part = _find(rule.get("when"), predicate)
        if part is not None:
            return rule, part
    raise AssertionError("no rule has such a condition; the test needs updating")


# --- one defect at a time ---------------------------------------------------------------------
# Each defect edits the copy and returns (file, key path, the problem) the error must name.


def unknown_key(folder):
    flags = read(folder, "red_flags.yaml")
    flags[0]["severity"] = "high"
    write(folder, "red_flags.yaml", flags)
    return "red_flags.yaml", flags[0]["id"], r"unknown key\(s\): severity"


def missing_source(folder):
    rules = read(folder, "stop_rules.yaml")
    del rules[0]["source"]
    write(folder, "stop_rules.yaml", rules)
    return "stop_rules.yaml", rules[0]["id"], r"missing key\(s\): source"


def missing_source_of_a_parameter(folder):
    parameters = read(folder, "parameters.yaml")
    first = next(iter(parameters))
    del parameters[first]["source"]
    write(folder, "parameters.yaml", parameters)
    return "parameters.yaml", first, r"missing key\(s\): source"


def duplicate_rule_id(folder):
    rules = read(folder, "stop_rules.yaml")
    rules[1]["id"] = rules[0]["id"]
    write(folder, "stop_rules.yaml", rules)
    first = re.escape(rules[0]["id"])
    return "stop_rules.yaml", rules[0]["id"], rf"duplicate rule id '{first}' \(first at"


def duplicate_rule_id_across_files(folder):
    flag_id = read(folder, "red_flags.yaml")[0]["id"]
    rules = read(folder, "stop_rules.yaml")
    rules[0]["id"] = flag_id
    write(folder, "stop_rules.yaml", rules)
    first = re.escape(flag_id)
    return "stop_rules.yaml", flag_id, rf"duplicate rule id '{first}' \(first at .*red_flags\.yaml"


def duplicate_yaml_key(folder):
    path = folder / "parameters.yaml"
    first = next(iter(read(folder, "parameters.yaml")))
    path.write_text(path.read_text(encoding="utf-8") + f"\n{first}:\n  value: 1\n", "utf-8")
    return "parameters.yaml", "", rf"duplicate key '{first}'"


def unknown_parameter_in_condition(folder):
    flags = read(folder, "red_flags.yaml")
    flag, part = _with_condition(flags, lambda node: "param" in node)
    part["param"] = "no_such_threshold"
    write(folder, "red_flags.yaml", flags)
    return "red_flags.yaml", f"{flag['id']}.when", r"unknown parameter 'no_such_threshold'"


def number_instead_of_parameter(folder):
    flags = read(folder, "red_flags.yaml")
    flag, part = _with_condition(flags, lambda node: "param" in node)
    part["param"] = 7
    write(folder, "red_flags.yaml", flags)
    return "red_flags.yaml", f"{flag['id']}.when", r"unknown parameter 7"


def number_as_a_condition_value(folder):
    flags = read(folder, "red_flags.yaml")
    flag, part = _with_condition(flags, lambda node: "param" in node)
    del part["param"]
    part["value"] = 7
    write(folder, "red_flags.yaml", flags)
    return "red_flags.yaml", f"{flag['id']}.when", r"takes exactly the keys \['field', 'param'\]"


def digit_in_advice_text(folder):
    advice = read(folder, "recommendations.yaml")
    advice[0]["text"] += " Do this 3 times a day."
    write(folder, "recommendations.yaml", advice)
    return "recommendations.yaml", f"{advice[0]['code']}.text", "a number is written into the text"


def digit_in_exercise_text(folder):
    exercises = read(folder, "exercises.yaml")
    exercises[0]["steps"][0] += " for 5 minutes"
    write(folder, "exercises.yaml", exercises)
    return "exercises.yaml", f"{exercises[0]['id']}.steps[0]", "a number in an exercise text"


def unknown_placeholder_in_text(folder):
    advice = read(folder, "recommendations.yaml")
    advice[0]["text"] += " Wait {no_such_parameter} days."
    write(folder, "recommendations.yaml", advice)
    return "recommendations.yaml", advice[0]["code"], "unknown parameter 'no_such_parameter'"


def unknown_field(folder):
    flags = read(folder, "red_flags.yaml")
    flags[0]["when"] = {"is_true": "signs.no_such_sign"}
    write(folder, "red_flags.yaml", flags)
    return "red_flags.yaml", f"{flags[0]['id']}.when", r"unknown field 'signs\.no_such_sign'"


def field_of_the_wrong_kind(folder):
    flags = read(folder, "red_flags.yaml")
    flags[0]["when"] = {"is_true": "pain.intensity"}
    write(folder, "red_flags.yaml", flags)
    return "red_flags.yaml", f"{flags[0]['id']}.when", r"'pain\.intensity' is a integer"


def unknown_enum_value(folder):
    causes = read(folder, "causes.yaml")
    for cause in causes:
        for signal in cause["signals"]:
            part = _find(signal["when"], lambda node: "field" in node and "value" in node)
            if part is not None:
                field = part["field"]
                part["value"] = "no_such_value"
                write(folder, "causes.yaml", causes)
                return (
                    "causes.yaml",
                    f"{cause['code']}.signals.{signal['id']}.when",
                    rf"'no_such_value' is not a value of '{re.escape(field)}'",
                )
    raise AssertionError("no cause signal compares a field with a value")


def unknown_condition_form(folder):
    flags = read(folder, "red_flags.yaml")
    flags[0]["when"] = {"maybe": "signs.swelling"}
    write(folder, "red_flags.yaml", flags)
    return "red_flags.yaml", f"{flags[0]['id']}.when", "unknown condition form 'maybe'"


def version_not_semver(folder):
    ruleset = read(folder, "ruleset.yaml")
    ruleset["version"] = "1.0"
    write(folder, "ruleset.yaml", ruleset)
    return "ruleset.yaml", "version", "not a SemVer version: '1.0'"


def version_not_matching_folder(folder):
    ruleset = read(folder, "ruleset.yaml")
    ruleset["version"] = "1.0.1"
    write(folder, "ruleset.yaml", ruleset)
    return "ruleset.yaml", "version", r"'1\.0\.1' does not match its folder '1\.0\.0'"


def guideline_never_cited(folder):
    ruleset = read(folder, "ruleset.yaml")
    ruleset["guidelines"]["unused_guideline"] = {"name": "Unused", "url": "https://example.org/"}
    write(folder, "ruleset.yaml", ruleset)
    return "ruleset.yaml", "guidelines", r"guideline\(s\) never cited: unused_guideline"


def unknown_guideline_cited(folder):
    rules = read(folder, "stop_rules.yaml")
    rules[0]["source"] = {"guideline": "no_such_guideline"}
    write(folder, "stop_rules.yaml", rules)
    return "stop_rules.yaml", f"{rules[0]['id']}.source", "unknown guideline 'no_such_guideline'"


def paragraph_the_article_lacks(folder):
    sections = read(folder, "ruleset.yaml")["article"]["sections"]
    rules = read(folder, "stop_rules.yaml")
    section = next(iter(sections))
    count = sections[section]["paragraphs"]
    rules[0]["source"] = {"article": section, "paragraph": count + 1}
    write(folder, "stop_rules.yaml", rules)
    return (
        "stop_rules.yaml",
        f"{rules[0]['id']}.source",
        rf"section '{section}' has paragraphs 1 to {count}, got {count + 1}",
    )


def paragraph_zero(folder):
    rules = read(folder, "stop_rules.yaml")
    section = rules[0]["source"].get("article") or "introduction"
    rules[0]["source"] = {"article": section, "paragraph": 0}
    write(folder, "stop_rules.yaml", rules)
    return "stop_rules.yaml", f"{rules[0]['id']}.source", "got 0"


def unknown_article_section(folder):
    rules = read(folder, "stop_rules.yaml")
    rules[0]["source"] = {"article": "no_such_section", "paragraph": 1}
    write(folder, "stop_rules.yaml", rules)
    return "stop_rules.yaml", f"{rules[0]['id']}.source", "unknown article section"


def dose_as_a_number(folder):
    prescription = read(folder, "prescription.yaml")
    item = prescription["programme"][0]
    key = next(iter(item["dose"]))
    item["dose"][key] = 5
    write(folder, "prescription.yaml", prescription)
    return "prescription.yaml", f"programme.0.dose.{key}", "doses name a parameter"


def negative_parameter(folder):
    parameters = read(folder, "parameters.yaml")
    first = next(iter(parameters))
    parameters[first]["value"] = -3
    write(folder, "parameters.yaml", parameters)
    return "parameters.yaml", f"{first}.value", "expected a non-negative number"


def unknown_level(folder):
    flags = read(folder, "red_flags.yaml")
    flags[0]["level"] = "whenever"
    write(folder, "red_flags.yaml", flags)
    return "red_flags.yaml", flags[0]["id"], "whenever"


DEFECTS = [
    unknown_key,
    missing_source,
    missing_source_of_a_parameter,
    duplicate_rule_id,
    duplicate_rule_id_across_files,
    duplicate_yaml_key,
    unknown_parameter_in_condition,
    number_instead_of_parameter,
    number_as_a_condition_value,
    digit_in_advice_text,
    digit_in_exercise_text,
    unknown_placeholder_in_text,
    unknown_field,
    field_of_the_wrong_kind,
    unknown_enum_value,
    unknown_condition_form,
    version_not_semver,
    version_not_matching_folder,
    guideline_never_cited,
    unknown_guideline_cited,
    paragraph_the_article_lacks,
    paragraph_zero,
    unknown_article_section,
    dose_as_a_number,
    negative_parameter,
    unknown_level,
]


def test_the_unedited_copy_loads(copy):
    """The baseline of every defect test: the copy itself is sound."""
    assert load_ruleset(copy).version == "1.0.0"


def assert_defect_stops_the_load(folder: Path, defect) -> None:
    """Make ``defect`` in the rule-set copy at ``folder``: loading it must fail, naming the
    file, the key and the problem the defect returns."""
    filename, key, problem = defect(folder)
    with pytest.raises(RuleDefinitionError) as raised:
        load_ruleset(folder)
    message = str(raised.value)
    assert f"rules/versions/{folder.name}/{filename}" in message, message
    assert key in message, f"the key {key!r} is not named: {message}"
    assert re.search(problem, message), message


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.__name__ for d in DEFECTS])
def test_a_defect_fails_the_load_naming_file_and_key(copy, defect):
    assert_defect_stops_the_load(copy, defect)


def test_a_defect_stops_the_whole_library_at_start_up(copy):
    unknown_key(copy)
    with pytest.raises(RuleDefinitionError, match=r"red_flags\.yaml: .*unknown key"):
        load_library(copy.parent)


def test_a_missing_rule_file_is_named(copy):
    (copy / "causes.yaml").unlink()
    with pytest.raises(RuleDefinitionError, match=r"causes\.yaml: file is missing"):
        load_ruleset(copy)


def test_a_folder_that_is_not_a_semver_version_is_refused(tmp_path):
    shutil.copytree(RELEASED, tmp_path / "versions" / "latest")
    with pytest.raises(RuleDefinitionError, match=r"versions/latest: .*not a SemVer version"):
        load_library(tmp_path / "versions")


# --- versions side by side --------------------------------------------------------------------


def test_versions_load_side_by_side_and_the_newest_is_the_default(copy):
    newer = copy.parent / "1.1.0"
    shutil.copytree(copy, newer)
    ruleset = read(newer, "ruleset.yaml")
    ruleset["version"] = "1.1.0"
    write(newer, "ruleset.yaml", ruleset)
    parameters = read(newer, "parameters.yaml")
    parameters["intense_pain_threshold"]["value"] = 8
    write(newer, "parameters.yaml", parameters)
    # 1.10.0 sorts after 1.9.0 only by number, not by text: the newest is chosen numerically.
    shutil.copytree(newer, copy.parent / "1.10.0")
    ruleset["version"] = "1.10.0"
    write(copy.parent / "1.10.0", "ruleset.yaml", ruleset)

    library = load_library(copy.parent)
    assert library.versions == ["1.0.0", "1.1.0", "1.10.0"]
    assert library.default_version == "1.10.0"
    assert library.get() is library.get("1.10.0")
    report = {"pain": {"intensity": 7, "subsides_with_rest": False}}
    assert library.get("1.0.0").escalation_check(report)["level"] == "urgent"
    assert library.get("1.1.0").escalation_check(report)["level"] != "urgent"
    assert library.get("1.0.0").assess(report)["rules_version"] == "1.0.0"
    with pytest.raises(UnknownRulesVersion) as raised:
        library.get("2.0.0")
    assert raised.value.available == ["1.0.0", "1.1.0", "1.10.0"]
    assert "2.0.0" in str(raised.value)


def test_the_project_library_defaults_to_its_newest_version(library):
    newest = max(library.versions, key=lambda v: tuple(int(p) for p in v.split(".")))
    assert library.get().ruleset.version == newest
    assert "1.0.0" in library.versions


# --- traceability to the source article -------------------------------------------------------


def article_sections(text: str) -> list[tuple[str, int]]:
    """(heading, number of paragraphs) in reading order.

    A heading is a short line without a final full stop; every other non-empty line is a
    paragraph. The opening paragraph has no heading and is cited as "Introduction"."""
    sections: list[list] = [["Introduction", 0]]
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        if len(line) < 100 and not line.endswith((".", "!", "?", ":")):
            sections.append([line, 0])
        else:
            sections[-1][1] += 1
    return [(heading, count) for heading, count in sections if heading != "Introduction" or count]


def test_the_article_parser_finds_headings_and_paragraphs():
    text = "Opening words of the article.\nA Heading\nFirst.\n\nSecond one.\nOther Heading\nOnly.\n"
    assert article_sections(text) == [("Introduction", 1), ("A Heading", 2), ("Other Heading", 1)]


@pytest.fixture
def article() -> list[tuple[str, int]]:
    # A clone on its own has no article beside it. What the rules cite is checked against
    # ruleset.yaml's own copy of the headings and paragraph counts in any case (below); only
    # that copy's agreement with the article itself needs the file.
    if not ARTICLE.exists():
        pytest.skip(f"the source article is not at {ARTICLE} (set POPLITEAL_ARTICLE)")
    return article_sections(ARTICLE.read_text(encoding="utf-8"))


def _declared_sections(version: str) -> dict:
    return read(VERSIONS_DIR / version, "ruleset.yaml")["article"]["sections"]


@pytest.mark.parametrize("version", load_library().versions)
def test_the_rule_set_mirrors_the_article(article, version):
    declared = _declared_sections(version)
    assert [(s["heading"], s["paragraphs"]) for s in declared.values()] == article, (
        "ruleset.yaml's article sections must match the article's headings and paragraph counts"
    )


@pytest.mark.parametrize("version", load_library().versions)
def test_the_rule_set_cites_every_paragraph_of_the_article(library, version):
    ruleset = library.get(version).ruleset
    declared = _declared_sections(version)
    uncited = [
        f"{section['heading']} ({key}) paragraph {n}"
        for key, section in declared.items()
        for n in range(1, section["paragraphs"] + 1)
        if (key, n) not in ruleset.cited_paragraphs
    ]
    assert not uncited, f"article paragraphs no rule cites: {uncited}"
