"""A fast acceptance check for symptom reports, equivalent to the marshmallow schema.

marshmallow is the authority on what a valid report is and on how errors are worded, but a
full load of a detailed report costs about 300 µs: more than the clinical evaluation itself and
most of a request's time. This checker is built from the same report vocabulary and accepts
exactly the reports the marshmallow schema accepts (a test holds the two equal on thousands of
generated valid and invalid reports). The service uses it to let valid reports through
quickly; anything it does not accept goes through marshmallow, which produces the 422.

A ``null`` on an optional field, an optional section or ``rules_version`` means "not asked", as
in the marshmallow schema: the report is accepted as if the key had been left out, and the copy
handed on has no such key, so that nothing downstream ever sees a ``None`` answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any


def _check_boolean(value: Any) -> bool:
    return type(value) is bool


def _integer_check(minimum: int, maximum: int):
    def check(value: Any) -> bool:
        # type() rather than isinstance(): a JSON true is not the integer 1 here.
        return type(value) is int and minimum <= value <= maximum

    return check


def _choice_check(values: Iterable[str]):
    allowed = frozenset(values)

    def check(value: Any) -> bool:
        return type(value) is str and value in allowed

    return check


def _list_check(values: Iterable[str]):
    allowed = frozenset(values)
    longest = len(allowed)

    def check(value: Any) -> bool:
        if type(value) is not list or len(value) > longest:
            return False
        for item in value:
            if type(item) is not str or item not in allowed:
                return False
        return len(set(value)) == len(value)

    return check


def _field_check(spec: Mapping[str, Any]):
    kind = spec["kind"]
    if kind == "boolean":
        return _check_boolean
    if kind == "integer":
        return _integer_check(spec["minimum"], spec["maximum"])
    if kind == "choice":
        return _choice_check(spec["values"])
    return _list_check(spec["values"])


class ReportAcceptor:
    """``accept(data)`` is the report (nulls taken out) exactly when the marshmallow report
    schema would load it, else None."""

    def __init__(
        self,
        sections: Mapping[str, Mapping[str, Any]],
        rules_versions: Iterable[str],
        extra_fields: Mapping[str, Callable[[Any], bool]] | None = None,
    ) -> None:
        """``extra_fields``: optional top-level fields beside the report's sections (such as
        ``store`` and ``subject`` on an assessment request), each with its check."""
        self._versions = frozenset(rules_versions)
        self._extra = dict(extra_fields or {})
        self._sections = {
            name: (
                {field: _field_check(spec) for field, spec in body["fields"].items()},
                frozenset(f for f, spec in body["fields"].items() if spec.get("required")),
            )
            for name, body in sections.items()
        }
        self._required_sections = frozenset(
            name for name, (_, required) in self._sections.items() if required
        )

    def accept(self, data: Any) -> dict | None:
        """The report as the schema would load it (``data`` itself when it has no null), or
        None when the schema would refuse it."""
        if type(data) is not dict or not self._required_sections.issubset(data):
            return None
        has_null = False
        for key, body in data.items():
            verdict = self._accept_entry(key, body)
            if verdict is None:
                return None
            has_null = has_null or verdict
        return _without_nulls(data, self._sections) if has_null else data

    def _accept_entry(self, key: str, body: Any) -> bool | None:
        """None when the schema would refuse this top-level entry, else whether it holds a
        null taken as "not asked"."""
        if key == "rules_version":
            if body is None:
                return True
            return False if type(body) is str and body in self._versions else None
        section = self._sections.get(key)
        if section is None:
            extra = self._extra.get(key)
            return False if extra is not None and extra(body) else None
        if type(body) is not dict:
            # A whole section sent as null was not asked about at all; a required one is
            # missing.
            return True if body is None and key not in self._required_sections else None
        return _accept_section(section, body)

    def accepts(self, data: Any) -> bool:
        return self.accept(data) is not None

    def validated(self, data: Any, schema) -> Any:
        """What this checker accepts, else marshmallow's load of ``data``, which raises
        ValidationError with the field-by-field messages."""
        accepted = self.accept(data)
        return accepted if accepted is not None else schema.load(data)


def _accept_section(section: tuple, body: dict) -> bool | None:
    """None when the schema would refuse this section, else whether it holds a null answer."""
    checks, required = section
    if required and not required.issubset(body):
        return None
    has_null = False
    for field, value in body.items():
        check = checks.get(field)
        if check is None:
            return None
        if value is None:
            # Not asked; but a required answer sent as null is missing, as marshmallow says.
            if field in required:
                return None
            has_null = True
        elif not check(value):
            return None
    return has_null


def _without_nulls(report: dict, sections: Mapping[str, Any]) -> dict:
    """An accepted report without its null answers (a copy: the caller's stays as sent). Only
    the report's own keys can be null once accepted: the checks of other fields refuse None."""
    return {
        key: (
            {field: value for field, value in body.items() if value is not None}
            if key in sections
            else body
        )
        for key, body in report.items()
        if body is not None
    }


def check_subject(value: Any) -> bool:
    """The subject check of schemas.records.SubjectSchema."""
    from schemas.records import is_subject_system, is_subject_value

    return (
        type(value) is dict
        and len(value) == 2
        and is_subject_system(value.get("system"))
        and is_subject_value(value.get("value"))
    )


ASSESS_REQUEST_EXTRA_FIELDS = {"store": _check_boolean, "subject": check_subject}
