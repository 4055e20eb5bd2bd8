"""The adaptive interview (rules/interview): safety questions first, the same answer as the
whole report, and checklists loaded strictly.

Each clinical case and many random reports are replayed one question at a time, answering from
the full report and declining what it leaves out; the interview must end with the triage level,
red flags and stop decision that assessing the full report gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given

from rules import LEVELS, RuleDefinitionError, load_library, load_report_fields
from rules.interview import (
    EMERGENCY_FOUND,
    NOTHING_LEFT_TO_ASK,
    TRIAGE_COMPLETE,
    Interviewer,
    UnknownReportFields,
)
from rules.interview.replay import replay
from rules.loading import CHECKLISTS_FILE, load_checklists
from tests.rules.test_clinical_cases import CASES
from tests.rules.test_safety_properties import PROPERTY, reports

SECTIONS = load_report_fields()
CHECKLISTS = load_checklists(SECTIONS)
DEFAULT = load_library().get()
INTERVIEWER = Interviewer(DEFAULT.ruleset, SECTIONS, CHECKLISTS)
EMERGENCY = LEVELS[-1]
# "Within its first few questions": the emergency checklist comes first, and a sign that needs
# an injury to mean an emergency needs at most three more questions to find one.
MOST_QUESTIONS_TO_AN_EMERGENCY = 4
EMERGENCY_SIGNS = next(c for c in CHECKLISTS if c.id == "checklist.emergency_signs").fields


def codes(flags: list[dict]) -> list[str]:
    return [flag["code"] for flag in flags]


def check_same_answer(full_report: dict) -> None:
    whole = DEFAULT.assess(full_report)["triage"]
    walk = replay(INTERVIEWER, full_report)
    screen = walk.last["screen"]
    assert screen["level"] == whole["level"]
    assert screen["stop_stretching"] == whole["stop_stretching"]
    if walk.last["stop_reason"] == EMERGENCY_FOUND:
        # Stopped at once: every flag found is one the whole report has, the most urgent first.
        assert set(codes(screen["red_flags"])) <= set(codes(whole["red_flags"]))
        assert walk.to_emergency is not None
        assert walk.to_emergency <= MOST_QUESTIONS_TO_AN_EMERGENCY, walk.questions
    else:
        assert codes(screen["red_flags"]) == codes(whole["red_flags"])
        # Never an undecided red flag at the end, unless its question was declined.
        assert set(screen["unanswered_red_flag_questions"]) <= set(walk.declined)
    if whole["level"] == EMERGENCY:
        assert walk.last["stop_reason"] == EMERGENCY_FOUND
    if whole["complete"] and whole["level"] != EMERGENCY:
        assert walk.last["stop_reason"] == TRIAGE_COMPLETE


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=lambda c: c["name"])
def test_the_interview_reaches_the_answer_of_the_whole_report_for_every_clinical_case(case):
    check_same_answer(case["report"])


@given(reports())
@PROPERTY
def test_the_interview_reaches_the_answer_of_the_whole_report_for_random_reports(report):
    check_same_answer(report)


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=lambda c: c["name"])
def test_the_interview_screen_is_the_escalation_check(case):
    walk = replay(INTERVIEWER, case["report"])
    assert walk.last["screen"] == DEFAULT.escalation_check(walk.report)


def test_the_first_question_is_the_emergency_checklist():
    question = INTERVIEWER.next({"pain": {"intensity": 3}})["question"]
    assert question["checklist"] == "checklist.emergency_signs"
    assert question["fields"] == list(EMERGENCY_SIGNS)
    assert question["could_raise_level_to"] == EMERGENCY
    assert question["priority"] == "red_flag"
    texts = [option["text"] for option in question["options"]]
    assert texts == [DEFAULT.ruleset.questions[path].question for path in EMERGENCY_SIGNS]


def test_none_of_these_answers_every_item_and_moves_on():
    signs = dict.fromkeys((path.split(".")[1] for path in EMERGENCY_SIGNS), False)
    answer = INTERVIEWER.next({"pain": {"intensity": 3}, "signs": signs})
    assert not answer["should_stop"]
    assert not set(answer["question"]["fields"]) & set(EMERGENCY_SIGNS)


@pytest.mark.parametrize("sign", ["signs.saddle_numbness", "signs.foot_cold_or_pale"])
def test_an_emergency_answer_ends_the_interview_at_once(sign):
    section, name = sign.split(".")
    answer = INTERVIEWER.next({"pain": {"intensity": 3}, section: {name: True}})
    assert answer["should_stop"] is True
    assert answer["stop_reason"] == EMERGENCY_FOUND
    assert answer["question"] is None
    assert answer["screen"]["level"] == EMERGENCY


def test_a_declined_question_is_not_asked_again():
    declined = list(EMERGENCY_SIGNS)
    answer = INTERVIEWER.next({"pain": {"intensity": 3}}, declined)
    assert not set(answer["question"]["fields"]) & set(declined)
    assert set(EMERGENCY_SIGNS) & set(answer["screen"]["unanswered_red_flag_questions"])


def test_declining_everything_ends_with_nothing_left_to_ask():
    everything = [path for path in DEFAULT.ruleset.questions if path != "pain.intensity"]
    answer = INTERVIEWER.next({"pain": {"intensity": 3}}, everything)
    assert answer["should_stop"] is True
    assert answer["stop_reason"] == NOTHING_LEFT_TO_ASK
    assert answer["screen"]["complete"] is False


def test_a_declined_field_outside_the_vocabulary_is_refused_by_name():
    with pytest.raises(UnknownReportFields) as raised:
        INTERVIEWER.next({"pain": {"intensity": 3}}, ["signs.swelling", "signs.third_knee"])
    assert raised.value.paths == ["signs.third_knee"]


def test_an_answer_that_could_take_a_red_flag_back_is_asked():
    # Calf pain counts as a possible clot unless it is the exertional pattern of an artery:
    # the flag fires while that is unanswered, and the interview asks it.
    report = {"pain": {"intensity": 3, "locations": ["calf"]}}
    assert "possible_deep_vein_thrombosis" in codes(DEFAULT.escalation_check(report)["red_flags"])
    signs = dict.fromkeys((path.split(".")[1] for path in EMERGENCY_SIGNS), False)
    asked = set()
    walk_report = {**report, "signs": signs}
    for _ in range(30):
        answer = INTERVIEWER.next(walk_report)
        if answer["should_stop"]:
            break
        asked.update(answer["question"]["fields"])
        for path in answer["question"]["fields"]:
            section, name = path.split(".")
            walk_report.setdefault(section, {})[name] = _some_answer(path)
    assert "pain.exercise_induced_calf_pain" in asked


def _some_answer(path: str):
    """A harmless answer: no, the smallest number, the last choice, or none of the values."""
    section, name = path.split(".")
    spec = SECTIONS[section]["fields"][name]
    kind = spec["kind"]
    if kind == "choice":
        return spec["values"][-1]
    return {"boolean": False, "integer": spec.get("minimum"), "list": []}[kind]


def test_questions_after_the_red_flags_are_about_the_stop_decision_or_a_cause():
    ruleset = DEFAULT.ruleset
    read = {path for rule in ruleset.stop_rules for path in rule.rule.when.fields}
    read |= {path for cause in ruleset.causes for s in cause.signals for path in s.rule.when.fields}
    later = [
        question
        for _, case in CASES
        for question in replay(INTERVIEWER, case["report"]).questions
        if question["priority"] == "stop_or_causes"
    ]
    assert later
    for question in later:
        assert set(question["fields"]) <= read, question


# --- the checklist file is loaded strictly -----------------------------------------------------


def write_copy(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(CHECKLISTS_FILE.read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "checklists.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_every_checklist_field_is_a_yes_no_question_in_one_checklist_only():
    seen = [path for checklist in CHECKLISTS for path in checklist.fields]
    assert len(seen) == len(set(seen))
    for path in seen:
        section, name = path.split(".")
        assert SECTIONS[section]["fields"][name]["kind"] == "boolean"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda raw: raw[1]["fields"].append(raw[0]["fields"][0]),
            r"checklists.yaml: checklist.same_day_signs.fields\[14\]: "
            r"'signs.saddle_numbness' is already in 'checklist.emergency_signs'",
        ),
        (
            lambda raw: raw[0]["fields"].append("signs.third_knee"),
            r"checklist.emergency_signs.fields\[8\]: 'signs.third_knee' is not a yes/no field",
        ),
        (
            lambda raw: raw[0]["fields"].append("pain.side"),
            r"'pain.side' is not a yes/no field",
        ),
        (
            lambda raw: raw[0]["fields"].append("pain.subsides_with_rest"),
            r"'pain.subsides_with_rest' is not a yes/no field that is still asked",
        ),
        (lambda raw: raw[0].pop("source"), r"checklist.emergency_signs: missing key\(s\): source"),
        (lambda raw: raw[0].update(colour="red"), r"unknown key\(s\): colour"),
        (
            lambda raw: raw[0]["source"].update(url="http://example.org"),
            r"checklist.emergency_signs.source.url: must be an https address",
        ),
        (lambda raw: raw[2].update(id="checklist.emergency_signs"), "duplicate checklist id"),
        (lambda raw: raw[0].update(id="list.emergency"), "ids here start with 'checklist.'"),
        (
            lambda raw: raw[0].update(fields=["signs.swelling"]),
            r"checklist.emergency_signs.fields: a checklist has at least 2 fields",
        ),
    ],
)
def test_a_defective_checklist_file_stops_the_load_naming_the_key(tmp_path, edit, message):
    path = write_copy(tmp_path, edit)
    with pytest.raises(RuleDefinitionError, match=message):
        load_checklists(SECTIONS, path)


def test_an_interview_pinned_to_an_older_rules_version_reaches_that_version_s_answer(library):
    for evaluator in library:
        if evaluator is DEFAULT:
            continue
        interviewer = Interviewer(evaluator.ruleset, SECTIONS, CHECKLISTS)
        for _, case in CASES:
            whole = evaluator.assess(case["report"])["triage"]
            screen = replay(interviewer, case["report"]).last["screen"]
            assert (screen["level"], screen["stop_stretching"]) == (
                whole["level"],
                whole["stop_stretching"],
            ), (evaluator.ruleset.version, case["name"])


def test_a_question_is_not_asked_when_only_declined_answers_could_make_it_matter():
    # A sudden sharp pain while sprinting leads with a hamstring strain. Whether the person
    # warmed up could only make poor technique a likely cause together with a locked knee, and
    # that question was declined: no answer to the warm-up question changes anything now.
    report = {
        "pain": {"intensity": 3, "onset": "sudden", "started_during": "sprinting",
                 "quality": ["sharp"]},
        "stretching": {"bouncing": False, "hold_seconds": 60},
    }  # fmt: skip
    answered = {"pain." + f for f in report["pain"]} | {
        "stretching." + f for f in report["stretching"]
    }
    declined = [
        p for p in DEFAULT.ruleset.questions if p not in answered and p != "stretching.warmed_up"
    ]
    answer = INTERVIEWER.next(report, declined)
    assert answer["should_stop"], answer["question"]
    assert answer["stop_reason"] == NOTHING_LEFT_TO_ASK
    # With the locked-knee question still open, both are worth asking.
    still_open = [p for p in declined if p != "stretching.knee_locked"]
    assert INTERVIEWER.next(report, still_open)["question"]["fields"] == ["stretching.knee_locked"]


def test_every_checklist_source_stands_in_the_documents_of_the_default_rules():
    """The checklists file is shared by versions and loaded apart from them: its article quotes
    must stand in the paragraphs they cite, and its guidelines be the default rules' own."""
    from tests.rules.test_loader import ARTICLE
    from tests.rules.test_loader_2_0_0 import _paragraphs

    documents = DEFAULT.ruleset.document["documents"]
    guidelines = {(g["name"], g["url"]) for g in documents["guidelines"]}
    article = _paragraphs(ARTICLE.read_text(encoding="utf-8")) if ARTICLE.exists() else None
    wrong = []
    for checklist in CHECKLISTS:
        source = checklist.source
        if "guideline" in source:
            if (source["guideline"], source["url"]) not in guidelines:
                wrong.append((checklist.id, source["guideline"]))
        elif article is not None:
            cited = article.get((source["article"], source["paragraph"]), "")
            if source["quote"] not in cited:
                wrong.append((checklist.id, source["quote"]))
    assert not wrong, wrong
