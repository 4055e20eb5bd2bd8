"""Compiling a YAML condition into nodes, checked against the report fields it may read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rules.conditions.junctions import All, Any_, Not
from rules.conditions.nodes import (
    Compare,
    Condition,
    Equals,
    FieldRef,
    Includes,
    IncludesAny,
    IsFalse,
    IsTrue,
    MoreThanField,
    NotTrue,
    OneOf,
)
from rules.errors import RuleDefinitionError

_COMPARISONS = {"at_least": ">=", "at_most": "<=", "below": "<", "above": ">"}
_BOOLEAN_FORMS = {"is_true": IsTrue, "is_false": IsFalse, "not_true": NotTrue}


class FieldCatalogue:
    """What the compiler may refer to: the report's fields with their kinds and allowed values."""

    def __init__(self, fields: Mapping[str, Mapping[str, Any]]):
        # path -> {"kind": "boolean"|"integer"|"choice"|"list", "values": [...]}
        self.fields = fields

    def check(self, path: str, kinds: tuple[str, ...], where: str) -> FieldRef:
        spec = self.fields.get(path)
        if spec is None:
            raise RuleDefinitionError(where, f"unknown field {path!r}")
        if spec["kind"] not in kinds:
            raise RuleDefinitionError(
                where, f"field {path!r} is a {spec['kind']}, this form needs {' or '.join(kinds)}"
            )
        return FieldRef(path)

    def check_value(self, path: str, value: Any, where: str) -> None:
        allowed = self.fields[path].get("values")
        if allowed is not None and value not in allowed:
            raise RuleDefinitionError(
                where, f"{value!r} is not a value of {path!r} (allowed: {', '.join(allowed)})"
            )


def compile_condition(
    raw: Any,
    catalogue: FieldCatalogue,
    parameters: Mapping[str, Any],
    where: str,
) -> Condition:
    """Compile one YAML condition; ``where`` names the file and rule for error messages."""
    return _Compiler(catalogue, parameters, where).build(raw).finish()


class _Compiler:
    """Builds the node of each form, checking its fields, values and parameters."""

    def __init__(self, catalogue: FieldCatalogue, parameters: Mapping[str, Any], where: str):
        self.catalogue = catalogue
        self.parameters = parameters
        self.where = where

    def fail(self, problem: str) -> RuleDefinitionError:
        return RuleDefinitionError(self.where, problem)

    def build(self, raw: Any) -> Condition:
        if not isinstance(raw, dict) or len(raw) != 1:
            raise self.fail(f"a condition is a mapping with exactly one form, got {raw!r}")
        ((form, arg),) = raw.items()
        builder = _BUILDERS.get(form)
        if builder is None:
            raise self.fail(f"unknown condition form {form!r}")
        return builder(self, form, arg)

    def junction(self, form: str, arg: Any) -> Condition:
        if not isinstance(arg, list) or len(arg) < 2:
            raise self.fail(f"'{form}' takes a list of at least two conditions")
        parts = [self.build(part) for part in arg]
        return All(parts) if form == "all" else Any_(parts)

    def negation(self, form: str, arg: Any) -> Condition:
        return Not(self.build(arg))

    def boolean(self, form: str, arg: Any) -> Condition:
        if not isinstance(arg, str):
            raise self.fail(f"'{form}' takes a field path")
        return _BOOLEAN_FORMS[form](self.catalogue.check(arg, ("boolean",), self.where))

    def one_value(self, form: str, arg: Any) -> Condition:
        self.expect_keys(arg, {"field", "value"}, form)
        kinds = ("list",) if form == "includes" else ("choice",)
        ref = self.catalogue.check(arg["field"], kinds, self.where)
        self.catalogue.check_value(ref.path, arg["value"], self.where)
        return Includes(ref, arg["value"]) if form == "includes" else Equals(ref, arg["value"])

    def several_values(self, form: str, arg: Any) -> Condition:
        self.expect_keys(arg, {"field", "values"}, form)
        kinds = ("list",) if form == "includes_any" else ("choice",)
        ref = self.catalogue.check(arg["field"], kinds, self.where)
        values = arg["values"]
        if not isinstance(values, list) or not values:
            raise self.fail(f"'{form}' needs a non-empty list of values")
        for value in values:
            self.catalogue.check_value(ref.path, value, self.where)
        return IncludesAny(ref, values) if form == "includes_any" else OneOf(ref, values)

    def two_fields(self, form: str, arg: Any) -> Condition:
        self.expect_keys(arg, {"field", "other"}, form)
        larger = self.catalogue.check(arg["field"], ("integer",), self.where)
        smaller = self.catalogue.check(arg["other"], ("integer",), self.where)
        return MoreThanField(larger, smaller)

    def comparison(self, form: str, arg: Any) -> Condition:
        self.expect_keys(arg, {"field", "param"}, form)
        ref = self.catalogue.check(arg["field"], ("integer",), self.where)
        param_id = arg["param"]
        if param_id not in self.parameters:
            raise self.fail(f"unknown parameter {param_id!r}")
        threshold = self.parameters[param_id]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise self.fail(f"parameter {param_id!r} is not a number")
        return Compare(ref, _COMPARISONS[form], param_id, threshold)

    def expect_keys(self, arg: Any, keys: set[str], form: str) -> None:
        if not isinstance(arg, dict) or set(arg) != keys:
            raise self.fail(f"'{form}' takes exactly the keys {sorted(keys)}, got {arg!r}")


_BUILDERS: dict[str, Callable[[_Compiler, str, Any], Condition]] = {
    "all": _Compiler.junction,
    "any": _Compiler.junction,
    "not": _Compiler.negation,
    **dict.fromkeys(_BOOLEAN_FORMS, _Compiler.boolean),
    "includes": _Compiler.one_value,
    "equals": _Compiler.one_value,
    "includes_any": _Compiler.several_values,
    "one_of": _Compiler.several_values,
    "more_than_field": _Compiler.two_fields,
    **dict.fromkeys(_COMPARISONS, _Compiler.comparison),
}
