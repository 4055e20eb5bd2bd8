"""A fast acceptance check for symptom reports, equivalent to the marshmallow schema.

marshmallow is the authority on what a valid report is and on how errors are worded, but a
full load of a detailed report costs about 300 µs: more than the clinical evaluation itself and
most of a request's time. This checker is built from the same report vocabulary and accepts
exactly the reports the marshmallow schema accepts (a test holds the two equal on thousands of
generated valid and invalid reports). The service uses it to let valid reports through
quickly; anything it does not accept goes through marshmallow, which produces the 422.
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
    """``accepts(data)`` is True exactly when the marshmallow report schema would load it."""

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

    def accepts(self, data: Any) -> bool:
        if type(data) is not dict:
            return False
        if not self._required_sections.issubset(data):
            return False
        sections = self._sections
        for key, body in data.items():
            if key == "rules_version":
                if type(body) is not str or body not in self._versions:
                    return False
                continue
            section = sections.get(key)
            if section is None:
                extra = self._extra.get(key)
                if extra is None or not extra(body):
                    return False
                continue
            if type(body) is not dict:
                return False
            checks, required = section
            if required and not required.issubset(body):
                return False
            for field, value in body.items():
                check = checks.get(field)
                if check is None or not check(value):
                    return False
        return True

    def validated(self, data: Any, schema) -> Any:
        """``data`` if this checker accepts it, else marshmallow's load of it, which raises
        ValidationError with the field-by-field messages."""
        return data if self.accepts(data) else schema.load(data)


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
