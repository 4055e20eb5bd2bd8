"""Strict loading of what rules 2.0.0 added: time frames, contradictions read the safer way,
advice presuppositions, plan statuses, citations that say what they cite, and questions worded
per version. Each defect is made in a copy of rules 2.0.0 and must stop the load, naming the
file and the key; the citations are checked against the article itself."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from rules import RuleDefinitionError, load_report_fields
from rules.loader import VERSIONS_DIR, load_ruleset, questions_for, replacements_for
from tests.rules.test_loader import (
    ARTICLE,
    article_sections,
    assert_defect_stops_the_load,
    read,
    write,
)

CURRENT = VERSIONS_DIR / "2.0.0"


@pytest.fixture
def copy(tmp_path) -> Path:
    target = tmp_path / "versions" / "2.0.0"
    shutil.copytree(CURRENT, target)
    return target


def _item(items: list[dict], key: str, value: str) -> dict:
    return next(item for item in items if item.get(key) == value)


def advice_without_its_presupposition(folder):
    advice = read(folder, "recommendations.yaml")
    item = _item(advice, "code", "gradual_progression")
    item["when"] = {"is_true": "assessment.has_plan"}  # no longer implies stretches in the plan
    write(folder, "recommendations.yaml", advice)
    return "recommendations.yaml", "gradual_progression", r"presupposes 'stretches_in_plan'"


def advice_naming_no_presuppositions(folder):
    advice = read(folder, "recommendations.yaml")
    del _item(advice, "code", "compression")["presupposes"]
    write(folder, "recommendations.yaml", advice)
    return "recommendations.yaml", "compression", r"missing key\(s\): presupposes"


def unknown_presupposition(folder):
    advice = read(folder, "recommendations.yaml")
    _item(advice, "code", "compression")["presupposes"].append("no_fracture")
    write(folder, "recommendations.yaml", advice)
    return "recommendations.yaml", "compression", r"unknown presupposition 'no_fracture'"


def red_flag_without_a_time_frame(folder):
    flags = read(folder, "red_flags.yaml")
    del flags[0]["time_frame"]
    write(folder, "red_flags.yaml", flags)
    return "red_flags.yaml", flags[0]["id"], r"every red flag names a time frame"


def time_frame_of_another_level(folder):
    flags = read(folder, "red_flags.yaml")
    flag = _item(flags, "id", "rf.possible_dvt")
    flag["time_frame"] = "routine"
    write(folder, "red_flags.yaml", flags)
    return "red_flags.yaml", "rf.possible_dvt", r"'routine' is for levels \['see_professional'\]"


def safer_reading_of_another_answer(folder):
    found = read(folder, "contradictions.yaml")
    found[0]["read_as"] = {"signs.fever": True}
    write(folder, "contradictions.yaml", found)
    return "contradictions.yaml", found[0]["id"], r"'signs.fever' is not one of the contradicting"


def contradiction_confirming_nothing_it_reads(folder):
    found = read(folder, "contradictions.yaml")
    found[0]["confirm"] = ["signs.fever"]
    write(folder, "contradictions.yaml", found)
    return "contradictions.yaml", found[0]["id"], r"confirm none of the answers that contradict"


def unknown_plan_status(folder):
    plan = read(folder, "prescription.yaml")
    plan["review"][1]["status"] = "maybe"
    write(folder, "prescription.yaml", plan)
    return "prescription.yaml", plan["review"][1]["id"], r"status.*must be one of"


def article_citation_without_a_quote(folder):
    rules = read(folder, "stop_rules.yaml")
    rules[0]["source"] = {"article": "prevention", "paragraph": 2}
    write(folder, "stop_rules.yaml", rules)
    return "stop_rules.yaml", rules[0]["id"], r"missing key\(s\): quote"


DEFECTS = [
    advice_without_its_presupposition,
    advice_naming_no_presuppositions,
    unknown_presupposition,
    red_flag_without_a_time_frame,
    time_frame_of_another_level,
    safer_reading_of_another_answer,
    contradiction_confirming_nothing_it_reads,
    unknown_plan_status,
    article_citation_without_a_quote,
]


def test_the_unedited_copy_loads(copy):
    assert load_ruleset(copy).version == "2.0.0"


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.__name__ for d in DEFECTS])
def test_a_defect_fails_the_load_naming_file_and_key(copy, defect):
    assert_defect_stops_the_load(copy, defect)


# --- questions per version ------------------------------------------------------------------------


def test_a_reworded_question_keeps_its_old_wording_for_older_versions():
    sections = load_report_fields()
    old, new = questions_for(sections, "1.0.0"), questions_for(sections, "2.0.0")
    path = "function.unable_to_bear_weight"
    assert "Answer true if you cannot" in old[path].question
    assert new[path].question.startswith("Are you unable")
    assert "pain.subsides_with_rest" in old
    assert "pain.subsides_with_rest" not in new  # replaced by pain.persists_at_rest
    assert replacements_for(sections, "1.0.0") == ()
    assert replacements_for(sections, "2.0.0") == (
        ("pain.subsides_with_rest", "pain.persists_at_rest", True),
    )


# --- citations say what they cite -----------------------------------------------------------------


def _mappings(node: Any, keep):
    """Every mapping inside ``node`` (depth first) for which ``keep`` holds."""
    if isinstance(node, dict):
        if keep(node):
            yield node
        for value in node.values():
            yield from _mappings(value, keep)
    elif isinstance(node, list):
        for value in node:
            yield from _mappings(value, keep)


def _sources(node: Any):
    """The article citations in ``node``."""
    return _mappings(node, lambda m: m.get("document") == "article" and "paragraph" in m)


def _paragraphs(text: str) -> dict[tuple[str, int], str]:
    """(heading, paragraph number) -> text, read as tests/rules/test_loader.py reads headings."""
    headings = {heading for heading, _ in article_sections(text)}
    found: dict[tuple[str, int], str] = {}
    heading, number = "Introduction", 0
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        if line in headings:
            heading, number = line, 0
            continue
        number += 1
        found[(heading, number)] = line
    return found


def test_every_article_citation_of_the_default_rules_carries_a_quote(library):
    sources = list(_sources(library.get().ruleset.document))
    assert len(sources) > 80
    missing = [s for s in sources if not s.get("quote")]
    assert not missing, missing[:3]


def test_every_quote_stands_in_the_paragraph_it_cites(library):
    if not ARTICLE.exists():
        pytest.skip(f"the source article is not at {ARTICLE} (set POPLITEAL_ARTICLE)")
    paragraphs = _paragraphs(ARTICLE.read_text(encoding="utf-8"))
    wrong = [
        (s["section"], s["paragraph"], s["quote"])
        for s in _sources(library.get().ruleset.document)
        if s["quote"] not in paragraphs[(s["section"], s["paragraph"])]
    ]
    assert not wrong, wrong


def test_a_quote_that_is_not_in_its_paragraph_is_found():
    text = "Opening.\nA Heading\nThe first paragraph says this.\nThe second says that.\n"
    paragraphs = _paragraphs(text)
    assert "says this" in paragraphs[("A Heading", 1)]
    assert "says this" not in paragraphs[("A Heading", 2)]


def test_every_guideline_citation_of_the_default_rules_names_its_recommendation(library):
    document = library.get().ruleset.document
    rules = {key: value for key, value in document.items() if key != "documents"}
    cited = list(_mappings(rules, lambda m: "url" in m and "document" in m))
    assert len(cited) > 30
    missing = [s["document"] for s in cited if not s.get("recommendation")]
    assert not missing, sorted(set(missing))


@pytest.mark.parametrize(
    ("replaced_by", "problem"),
    [
        ({"field": "pain.persists_at_rest", "opposite": "maybe"}, r"opposite: true or false"),
        ({"field": "pain.persists_at_rest"}, r"missing key\(s\): opposite"),
        ({"field": "pain.duration_days", "opposite": True}, r"is not a boolean field"),
        ("pain.persists_at_rest", r"expected a mapping"),
    ],
    ids=["not a boolean", "missing opposite", "another kind", "not a mapping"],
)
def test_a_malformed_replacement_stops_the_load_naming_the_field(tmp_path, replaced_by, problem):
    from rules.loader import REPORT_FIELDS_FILE

    sections = read(REPORT_FIELDS_FILE.parent, REPORT_FIELDS_FILE.name)
    sections["pain"]["fields"]["subsides_with_rest"]["replaced_by"] = replaced_by
    write(tmp_path, "report_fields.yaml", sections)
    with pytest.raises(RuleDefinitionError, match=problem) as raised:
        load_report_fields(tmp_path / "report_fields.yaml")
    assert "subsides_with_rest" in str(raised.value)
