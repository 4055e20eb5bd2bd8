"""``null`` means "not asked": a report with nulls loads exactly as the report without those keys.

Many JSON serialisers send ``null`` for a field they have no value for. Both the fast acceptor
and the marshmallow schema must take such a report as if the keys had been left out (never as
"no"), and both must still refuse a null on the one required answer, saying it is required.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from rules import load_report_fields
from schemas.fast import ASSESS_REQUEST_EXTRA_FIELDS, ReportAcceptor
from schemas.report import RULES_VERSIONS, AssessRequestSchema, SymptomReportSchema
from tests.schemas.test_fast_acceptor import VALID_REPORTS

SECTIONS = load_report_fields()
SCHEMA = SymptomReportSchema()
ACCEPTOR = ReportAcceptor(SECTIONS, RULES_VERSIONS)
ASSESS_SCHEMA = AssessRequestSchema()
ASSESS_ACCEPTOR = ReportAcceptor(SECTIONS, RULES_VERSIONS, ASSESS_REQUEST_EXTRA_FIELDS)
REQUIRED = {
    (section, field)
    for section, body in SECTIONS.items()
    for field, spec in body["fields"].items()
    if spec.get("required")
}


def absent_places(report: dict) -> list[tuple[str, ...]]:
    """Every optional key the report leaves out: rules_version, whole sections, and fields of
    the sections it has."""
    places: list[tuple[str, ...]] = [] if "rules_version" in report else [("rules_version",)]
    for section, body in SECTIONS.items():
        if section not in report:
            places.append((section,))
            continue
        places.extend(
            (section, field)
            for field in body["fields"]
            if field not in report[section] and (section, field) not in REQUIRED
        )
    return places


def with_nulls(report: dict, places, section_as_fields: bool = False) -> dict:
    """The report with each place sent as null; an absent section either as null or, with
    ``section_as_fields``, as an object whose every field is null."""
    sent = copy.deepcopy(report)
    for place in places:
        if len(place) == 2:
            sent[place[0]][place[1]] = None
        elif place[0] in SECTIONS and section_as_fields:
            sent[place[0]] = dict.fromkeys(SECTIONS[place[0]]["fields"])
        else:
            sent[place[0]] = None
    return sent


def loaded(schema, report):
    try:
        return schema.load(report)
    except ValidationError as error:
        return error.messages


# The loaded form of a report: marshmallow leaves an empty object for a section all of whose
# fields were null, and so does the fast acceptor; compare with the same empty section.
def _expected(report: dict, places, section_as_fields: bool) -> dict:
    expected = copy.deepcopy(report)
    if section_as_fields:
        for place in places:
            if len(place) == 1 and place[0] in SECTIONS:
                expected[place[0]] = {}
    return expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(VALID_REPORTS, st.data(), st.booleans())
def test_nulls_and_absent_keys_are_interchangeable(report, data, section_as_fields):
    places = data.draw(st.lists(st.sampled_from(absent_places(report)), unique=True))
    sent = with_nulls(report, places, section_as_fields)
    expected = _expected(report, places, section_as_fields)
    assert ACCEPTOR.accept(sent) == expected
    assert loaded(SCHEMA, sent) == loaded(SCHEMA, expected) == expected


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(VALID_REPORTS, st.data())
def test_the_sent_report_is_not_changed_by_taking_its_nulls_out(report, data):
    places = data.draw(st.lists(st.sampled_from(absent_places(report)), min_size=1, unique=True))
    sent = with_nulls(report, places)
    before = copy.deepcopy(sent)
    accepted = ACCEPTOR.accept(sent)
    assert sent == before
    assert None not in accepted.values()
    assert all(None not in body.values() for key, body in accepted.items() if key in SECTIONS)


def test_a_report_of_nulls_only_is_the_bare_required_report():
    every_null = with_nulls({"pain": {"intensity": 3}}, absent_places({"pain": {"intensity": 3}}))
    assert ACCEPTOR.accept(every_null) == {"pain": {"intensity": 3}}
    assert SCHEMA.load(every_null) == {"pain": {"intensity": 3}}


@pytest.mark.parametrize(
    ("report", "path"),
    [
        ({"pain": {"intensity": None}}, ("pain", "intensity")),
        ({"pain": None}, ("pain",)),
        ({"pain": {"intensity": None, "side": None}}, ("pain", "intensity")),
    ],
)
def test_a_null_required_answer_is_refused_as_missing(report, path):
    assert ACCEPTOR.accept(report) is None
    with pytest.raises(ValidationError) as refused:
        SCHEMA.load(report)
    messages = refused.value.messages
    for key in path:
        messages = messages[key]
    assert messages == ["Missing data for required field."]


@pytest.mark.parametrize(
    "extra", [{"store": None}, {"subject": None}, {"subject": {"system": None, "value": "x"}}]
)
def test_null_is_not_absent_outside_the_report(extra):
    """store and subject are instructions to the service, not answers: a null is refused."""
    body = {"pain": {"intensity": 3}, **extra}
    assert ASSESS_ACCEPTOR.accept(body) is None
    with pytest.raises(ValidationError):
        ASSESS_SCHEMA.load(body)


def test_the_assess_request_takes_report_nulls_and_keeps_store_and_subject():
    subject = {"system": "https://fitness.example/ids", "value": "m-1"}
    body = {"pain": {"intensity": 3, "side": None}, "signs": None, "store": False}
    expected = {"pain": {"intensity": 3}, "store": False}
    assert ASSESS_ACCEPTOR.accept({**body, "subject": subject}) == {**expected, "subject": subject}
    assert ASSESS_SCHEMA.load(body) == expected


# -- One message for a whole number out of shape ------------------------------------------------

WHOLE_NUMBER = "Must be a whole number from 0 to 10."


@pytest.mark.parametrize("intensity", [4.5, 5.0, "5", True, [5], {"value": 5}])
def test_a_pain_intensity_that_is_not_a_whole_number_says_so(intensity):
    report = {"pain": {"intensity": intensity}}
    assert ACCEPTOR.accept(report) is None
    with pytest.raises(ValidationError) as refused:
        SCHEMA.load(report)
    assert refused.value.messages == {"pain": {"intensity": [WHOLE_NUMBER]}}


def test_every_whole_number_answer_names_its_own_range():
    for section, body in SECTIONS.items():
        for field, spec in body["fields"].items():
            if spec["kind"] != "integer":
                continue
            report = {"pain": {"intensity": 3}}
            report.setdefault(section, {})[field] = 2.5
            with pytest.raises(ValidationError) as refused:
                SCHEMA.load(report)
            expected = f"Must be a whole number from {spec['minimum']} to {spec['maximum']}."
            assert refused.value.messages[section][field] == [expected], (section, field)
