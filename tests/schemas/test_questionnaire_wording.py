"""The FHIR Questionnaire asks each question in the default rules version's wording, so a form
built from it shows the red-flag questions worded so that "yes" is the worrying answer."""

from __future__ import annotations

from rules import load_library, load_report_fields
from schemas.fhir.questionnaire import HIDDEN, questionnaire_items

RULESET = load_library().get().ruleset
SECTIONS = load_report_fields()


def _items() -> dict[str, dict]:
    red_flag_fields = {f for flag in RULESET.red_flags for f in flag.rule.when.fields}
    groups = questionnaire_items(SECTIONS, red_flag_fields)
    return {item["linkId"]: item for group in groups for item in group["item"]}


def test_every_question_the_default_rules_ask_reads_the_same_in_the_questionnaire():
    items = _items()
    for path, question in RULESET.questions.items():
        assert " ".join(items[path]["text"].split()) == question.question, path


def test_a_field_no_longer_asked_is_hidden_and_optional_but_still_readable():
    item = _items()["pain.subsides_with_rest"]
    assert item["required"] is False
    assert {"url": HIDDEN, "valueBoolean": True} in item["extension"]
    assert "pain.subsides_with_rest" not in RULESET.questions
