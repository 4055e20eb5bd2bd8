"""A fast acceptance check for symptom reports, equivalent to the marshmallow schema.

marshmallow is the authority on what a valid report is and on how errors are worded, but a
full load of a detailed report costs about 300 µs: more than the clinical evaluation itself and
most of a request's time. This checker is built from the same report vocabulary and accepts
exactly the reports the marshmallow schema accepts (a test holds the two equal on thousands of
generated valid and invalid reports). The service uses it to let valid reports through
quickly; anything it does not accept goes through marshmallow, which produces the 422.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
        self, sections: Mapping[str, Mapping[str, Any]], rules_versions: Iterable[str]
    ) -> None:
        self._versions = frozenset(rules_versions)
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
            if section is None or type(body) is not dict:
                return False
            checks, required = section
            if required and not required.issubset(body):
                return False
            for field, value in body.items():
                check = checks.get(field)
                if check is None or not check(value):
                    return False
        return True
