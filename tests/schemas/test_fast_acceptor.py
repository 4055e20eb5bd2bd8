"""The fast report checker must accept exactly what the marshmallow schema accepts.

If it accepted more, invalid reports would reach the rules; if it accepted less, valid reports
would only be slower (they fall back to marshmallow). Both directions are checked on generated
reports: valid ones, and ones with one field broken in each way a client can break it.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from rules import load_report_fields
from schemas.fast import ASSESS_REQUEST_EXTRA_FIELDS, ReportAcceptor
from schemas.report import RULES_VERSIONS, AssessRequestSchema, SymptomReportSchema

SECTIONS = load_report_fields()
SCHEMA = SymptomReportSchema()
ACCEPTOR = ReportAcceptor(SECTIONS, RULES_VERSIONS)

WRONG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=4000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.text(max_size=8), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _valid_value(spec):
    kind = spec["kind"]
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(min_value=spec["minimum"], max_value=spec["maximum"])
    if kind == "choice":
        return st.sampled_from(spec["values"])
    return st.lists(st.sampled_from(spec["values"]), unique=True, max_size=len(spec["values"]))


def _section(body, required):
    fields = body["fields"]
    needed = {name: _valid_value(spec) for name, spec in fields.items() if spec.get("required")}
    optional = {name: _valid_value(spec) for name, spec in fields.items() if name not in needed}
    return st.fixed_dictionaries(needed, optional=optional)


VALID_REPORTS = st.fixed_dictionaries(
    {"pain": _section(SECTIONS["pain"], True)},
    optional={
        **{name: _section(body, False) for name, body in SECTIONS.items() if name != "pain"},
        "rules_version": st.sampled_from(RULES_VERSIONS),
    },
)


def marshmallow_accepts(report) -> bool:
    try:
        SCHEMA.load(report)
    except ValidationError:
        return False
    return True


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(VALID_REPORTS)
def test_valid_reports_are_accepted_by_both(report):
    assert marshmallow_accepts(report)
    assert ACCEPTOR.accepts(report)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(VALID_REPORTS, st.randoms(use_true_random=False), WRONG_VALUES, st.text(max_size=10))
def test_broken_reports_get_the_same_verdict(report, rnd, wrong, stray_key):
    broken = _break(report, rnd, wrong, stray_key)
    assert ACCEPTOR.accepts(broken) == marshmallow_accepts(broken), broken


def _break(report, rnd: random.Random, wrong, stray_key):
    report = {k: (dict(v) if isinstance(v, dict) else v) for k, v in report.items()}
    how = rnd.randrange(6)
    sections = [k for k, v in report.items() if isinstance(v, dict)]
    section = rnd.choice(sections)
    if how == 0 and report[section]:  # a field gets a value of any type
        field = rnd.choice(list(report[section]))
        report[section][field] = wrong
    elif how == 1:  # a stray key in a section
        report[section][stray_key] = wrong
    elif how == 2:  # a stray top-level key, or a whole section replaced
        report[stray_key or "x"] = wrong
    elif how == 3:  # a section that is not an object
        report[section] = wrong
    elif how == 4:  # a list field with a repeat or an unknown value
        lists = [
            name
            for name, spec in SECTIONS[section]["fields"].items()
            if spec["kind"] == "list" and name in report[section] and report[section][name]
        ]
        if lists:
            name = rnd.choice(lists)
            report[section][name] = [
                *report[section][name],
                rnd.choice([*report[section][name], stray_key]),
            ]
        else:
            report["rules_version"] = stray_key
    else:  # a required field removed, or the version made unknown
        if section == "pain":
            report["pain"].pop("intensity", None)
        else:
            report["rules_version"] = wrong
    return report


@pytest.mark.parametrize(
    "report",
    [
        {"pain": {"intensity": True}},
        {"pain": {"intensity": 1.0}},
        {"pain": {"intensity": "3"}},
        {"pain": {"intensity": 3}, "signs": {"swelling": 1}},
        {"pain": {"intensity": 3, "quality": ["sharp", "sharp"]}},
        {"pain": {"intensity": 3}, "rules_version": "0.0.1"},
        {"pain": None},
        {"pain": {"intensity": None}},
        {"pain": {"intensity": 3}, "signs": {"swelling": None, "fever": 0}},
        [],
        "report",
    ],
)
def test_the_classic_coercions_are_refused_by_both(report):
    assert not marshmallow_accepts(report)
    assert not ACCEPTOR.accepts(report)


# The assessment request: a report plus ``store`` and ``subject``.
ASSESS_SCHEMA = AssessRequestSchema()
ASSESS_ACCEPTOR = ReportAcceptor(SECTIONS, RULES_VERSIONS, ASSESS_REQUEST_EXTRA_FIELDS)
SUBJECT_TEXT = st.text(alphabet=st.sampled_from("ab9Z._:/#~+=@-| \n\té"), min_size=0, max_size=14)
SUBJECTS = st.one_of(
    st.fixed_dictionaries(
        {
            "system": st.sampled_from(["https://fitness.example/ids", "urn:oid:1.2.3", "x"]),
            "value": st.one_of(st.sampled_from(["m-4f9c2a", "A1"]), SUBJECT_TEXT),
        }
    ),
    st.fixed_dictionaries({"system": SUBJECT_TEXT, "value": st.just("a1")}),
    st.fixed_dictionaries({"value": st.just("a1")}),
    st.fixed_dictionaries(
        {"system": st.just("urn:x"), "value": st.just("a"), "name": st.just("Jo")}
    ),
    st.text(max_size=5),
    st.none(),
    st.integers(),
)
ASSESS_REQUESTS = st.tuples(
    VALID_REPORTS,
    st.one_of(st.none(), st.booleans(), WRONG_VALUES),
    st.one_of(st.none(), SUBJECTS),
).map(
    lambda parts: {
        **parts[0],
        **({} if parts[1] is None else {"store": parts[1]}),
        **({} if parts[2] is None else {"subject": parts[2]}),
    }
)


def marshmallow_accepts_assess_request(body) -> bool:
    try:
        ASSESS_SCHEMA.load(body)
    except ValidationError:
        return False
    return True


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(ASSESS_REQUESTS)
def test_assess_requests_get_the_same_verdict(body):
    assert ASSESS_ACCEPTOR.accepts(body) == marshmallow_accepts_assess_request(body), body


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        ({"pain": {"intensity": 3}, "store": False}, True),
        ({"pain": {"intensity": 3}, "subject": {"system": "urn:x", "value": "p-1"}}, True),
        ({"pain": {"intensity": 3}, "store": 0}, False),
        ({"pain": {"intensity": 3}, "subject": {"system": "urn:x", "value": "Jane Doe"}}, False),
        ({"pain": {"intensity": 3}, "subject": {"system": "urn:x", "value": "p-1\n"}}, False),
        ({"pain": {"intensity": 3}, "subject": {"system": "no scheme", "value": "p-1"}}, False),
        ({"pain": {"intensity": 3}, "subject": {"system": "urn:x"}}, False),
    ],
)
def test_store_and_subject_examples(body, accepted):
    assert marshmallow_accepts_assess_request(body) is accepted
    assert ASSESS_ACCEPTOR.accepts(body) is accepted
