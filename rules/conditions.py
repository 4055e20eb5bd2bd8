"""A small condition language for rules written as data, evaluated with three-valued logic.

A symptom report is sparse: a field that is absent was *not asked*, which is not the same as
"no". Every condition therefore evaluates to ``True``, ``False`` or ``None`` (unknown), with
Kleene's rules: ``all`` is false as soon as one part is false, ``any`` is true as soon as one
part is true, and otherwise an absent answer leaves the result unknown. A red flag whose
condition is unknown is an unanswered safety question, never a "no".

Conditions are compiled once at load time into small node objects. Numbers never appear in a
condition: comparisons name a parameter, so every threshold has an id and a source.

Forms (YAML):

    is_true: signs.swelling                 # the boolean answer is true
    is_false: pain.subsides_with_rest       # the boolean answer is false
    not_true: signs.calf_swelling           # the answer is not yes (absent counts): never unknown
    includes: {field: pain.quality, value: sharp}          # a list answer contains a value
    includes_any: {field: pain.locations, values: [hip, lower_back]}
    equals: {field: pain.onset, value: sudden}             # a choice answer equals a value
    one_of: {field: pain.started_during, values: [sprinting, kicking]}
    at_least: {field: pain.intensity, param: intense_pain_threshold}   # >=
    at_most:  {field: pain.intensity, param: mild_pain_max}            # <=
    below:    {field: stretching.hold_seconds, param: stretch_hold_seconds}  # <
    more_than_field: {field: history.home_care_days, other: pain.duration_days}  # field > other
    all: [<condition>, ...]
    any: [<condition>, ...]
    not: <condition>
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.errors import RuleDefinitionError

Tri = bool | None  # True, False, or None for "unknown: not answered"


_PATHS: dict[str, dict[str, str]] = {}  # section -> field -> "section.field", filled as seen
_CACHE_LIMIT = 256


def flatten(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report as one flat mapping of ``section.field`` -> answer, the form conditions read.

    Built once per evaluation; every condition then costs one dict lookup per field it names.
    The dotted keys are interned in a small cache instead of being concatenated per request.
    """
    flat: dict[str, Any] = {}
    for section, body in report.items():
        if isinstance(body, Mapping):
            paths = _PATHS.get(section)
            if paths is None:
                paths = {} if len(_PATHS) >= _CACHE_LIMIT else _PATHS.setdefault(section, {})
            for key, value in body.items():
                if value is not None:
                    path = paths.get(key)
                    if path is None:
                        path = f"{section}.{key}"
                        if len(paths) < _CACHE_LIMIT:  # bounded, whatever callers send
                            paths[key] = path
                    flat[path] = value
    return flat


class FieldRef:
    """A dotted path into the report, e.g. ``signs.swelling``."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        parts = path.split(".")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"field path must look like 'section.field', got {path!r}")
        self.path = path


class _Names:
    """Hands out fresh local names and constant slots for generated code."""

    def __init__(self):
        self.count = 0
        self.constants: dict[str, Any] = {}

    def local(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def constant(self, value: Any) -> str:
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        return name


class Condition:
    """A compiled condition node.

    ``evaluate(flat)`` runs a Python function generated once from the node tree (Kleene logic
    spelled out inline), which is several times faster than walking the tree per request.
    ``unanswered(flat)`` walks the tree, and is only needed for conditions left undecided.
    """

    __slots__ = ("evaluate", "fields", "params")

    def expression(self, names: _Names) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def unanswered(self, flat: Mapping[str, Any]) -> list[str]:
        """Absent fields whose answer could still change this condition's value.

        Empty when the condition is already decided. A field appears once.
        """
        found: list[str] = []
        if self.evaluate(flat) is None:
            self.collect_unanswered(flat, found)
        return list(dict.fromkeys(found))

    def collect_unanswered(self, flat: Mapping[str, Any], found: list[str]) -> None:
        """Append the deciding absent fields of this (undecided) node to ``found``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def finish(self) -> Condition:
        """Generate and compile this node's evaluation function."""
        names = _Names()
        source = f"lambda f: {self.expression(names)}"
        # The source is generated here from validated rule data (field paths are checked
        # against the report vocabulary, values against their enumerations, and every literal
        # is passed as a bound constant), never from request input.
        self.evaluate = eval(source, {"__builtins__": {}, **names.constants})  # noqa: S307
        for part in self.children():
            part.finish()
        return self

    def children(self) -> tuple[Condition, ...]:
        return ()


class _Leaf(Condition):
    __slots__ = ("field",)

    def __init__(self, field: FieldRef):
        self.field = field
        self.fields = (field.path,)
        self.params: tuple[str, ...] = ()

    def test(self, value: str, names: _Names) -> str:  # pragma: no cover - abstract
        """The expression deciding the condition once the answer (named ``value``) is known."""
        raise NotImplementedError

    def expression(self, names):
        value = names.local()
        path = names.constant(self.field.path)
        return f"(None if ({value} := f.get({path})) is None else {self.test(value, names)})"

    def collect_unanswered(self, flat, found):
        if flat.get(self.field.path) is None:
            found.append(self.field.path)


class IsTrue(_Leaf):
    __slots__ = ()

    def test(self, value, names):
        return f"{value} is True"


class IsFalse(_Leaf):
    __slots__ = ()

    def test(self, value, names):
        return f"{value} is False"


class NotTrue(_Leaf):
    """Holds unless the answer is yes. Never unknown: for withholding advice that would be
    unsafe only when a sign is present (an unanswered sign is still asked for elsewhere)."""

    __slots__ = ()

    def expression(self, names):
        return f"(f.get({names.constant(self.field.path)}) is not True)"

    def collect_unanswered(self, flat, found):
        return  # never undecided


class _WithValue(_Leaf):
    __slots__ = ("value",)

    def __init__(self, field, value):
        super().__init__(field)
        self.value = value


class Includes(_WithValue):
    __slots__ = ()

    def test(self, value, names):
        return f"{names.constant(self.value)} in {value}"


class IncludesAny(_WithValue):
    __slots__ = ()

    def __init__(self, field, values):
        super().__init__(field, frozenset(values))

    def test(self, value, names):
        return f"not {names.constant(self.value)}.isdisjoint({value})"


class Equals(_WithValue):
    __slots__ = ()

    def test(self, value, names):
        return f"{value} == {names.constant(self.value)}"


class OneOf(_WithValue):
    __slots__ = ()

    def __init__(self, field, values):
        super().__init__(field, frozenset(values))

    def test(self, value, names):
        return f"{value} in {names.constant(self.value)}"


class Compare(_Leaf):
    __slots__ = ("operator", "threshold")

    def __init__(self, field, operator: str, param_id: str, threshold):
        super().__init__(field)
        self.operator = operator
        self.threshold = threshold
        self.params = (param_id,)

    def test(self, value, names):
        return f"{value} {self.operator} {names.constant(self.threshold)}"


class MoreThanField(Condition):
    """One answer is greater than another (two whole numbers of the report). Used to notice
    answers that cannot both be true, such as home care tried for longer than the pain."""

    __slots__ = ("larger", "smaller")

    def __init__(self, larger: FieldRef, smaller: FieldRef):
        self.larger, self.smaller = larger, smaller
        self.fields = (larger.path, smaller.path)
        self.params: tuple[str, ...] = ()

    def expression(self, names):
        a, b = names.local(), names.local()
        pa, pb = names.constant(self.larger.path), names.constant(self.smaller.path)
        return (
            f"(None if ({a} := f.get({pa})) is None or ({b} := f.get({pb})) is None else {a} > {b})"
        )

    def collect_unanswered(self, flat, found):
        found.extend(path for path in self.fields if flat.get(path) is None)


class _Junction(Condition):
    """Kleene AND / OR over several parts, told apart by the decisive value."""

    __slots__ = ("leaf_paths", "parts")
    DECISIVE = OTHERWISE = ""  # set by the subclasses

    def __init__(self, parts: list[Condition]):
        self.parts = tuple(parts)
        self.fields = _union(p.fields for p in parts)
        self.params = _union(p.params for p in parts)
        self.leaf_paths = _leaf_paths(parts)

    def children(self) -> tuple[Condition, ...]:
        return self.parts

    def expression(self, names):
        return _kleene(self.parts, names, decisive=self.DECISIVE, otherwise=self.OTHERWISE)

    def collect_unanswered(self, flat, found):
        # Only the undecided parts matter: a decided part cannot tip the result either way.
        if self.leaf_paths is not None:
            for path in self.leaf_paths:
                if path not in flat:
                    found.append(path)
            return
        for part in self.parts:
            if part.evaluate(flat) is None:
                part.collect_unanswered(flat, found)


class All(_Junction):
    """Kleene AND: false if any part is false, else unknown if any part is unknown."""

    __slots__ = ()
    DECISIVE, OTHERWISE = "False", "True"


class Any_(_Junction):
    """Kleene OR: true if any part is true, else unknown if any part is unknown."""

    __slots__ = ()
    DECISIVE, OTHERWISE = "True", "False"


class Not(Condition):
    __slots__ = ("part",)

    def __init__(self, part: Condition):
        self.part = part
        self.fields = part.fields
        self.params = part.params

    def expression(self, names):
        value = names.local()
        return f"(None if ({value} := {self.part.expression(names)}) is None else not {value})"

    def children(self) -> tuple[Condition, ...]:
        return (self.part,)

    def collect_unanswered(self, flat, found):
        self.part.collect_unanswered(flat, found)


def _kleene(parts, names: _Names, decisive: str, otherwise: str) -> str:
    # (D if (x1 := A) is D or (x2 := B) is D else (None if x1 is None or x2 is None else O))
    # Short-circuiting is safe: the names after a decisive part are never read.
    locals_ = [names.local() for _ in parts]
    tests = " or ".join(
        f"({name} := {part.expression(names)}) is {decisive}"
        for name, part in zip(locals_, parts, strict=True)
    )
    unknown = " or ".join(f"{name} is None" for name in locals_)
    return f"({decisive} if {tests} else (None if {unknown} else {otherwise}))"


def _leaf_paths(parts) -> tuple[str, ...] | None:
    """For a node made only of plain leaves, the fields that can leave it undecided.

    Such a leaf is undecided exactly when its field is absent, so the unanswered fields of the
    undecided node are simply its absent fields: no need to evaluate each part again.
    """
    if all(isinstance(p, _Leaf) for p in parts):
        return tuple(p.field.path for p in parts if not isinstance(p, NotTrue))
    return None


def _union(groups) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item, None)
    return tuple(seen)


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
    return _build(raw, catalogue, parameters, where).finish()


def _build(
    raw: Any,
    catalogue: FieldCatalogue,
    parameters: Mapping[str, Any],
    where: str,
) -> Condition:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise RuleDefinitionError(
            where, f"a condition is a mapping with exactly one form, got {raw!r}"
        )
    ((form, arg),) = raw.items()

    if form in ("all", "any"):
        if not isinstance(arg, list) or len(arg) < 2:
            raise RuleDefinitionError(where, f"'{form}' takes a list of at least two conditions")
        parts = [_build(p, catalogue, parameters, where) for p in arg]
        return All(parts) if form == "all" else Any_(parts)
    if form == "not":
        return Not(_build(arg, catalogue, parameters, where))
    if form in _BOOLEAN_FORMS:
        if not isinstance(arg, str):
            raise RuleDefinitionError(where, f"'{form}' takes a field path")
        return _BOOLEAN_FORMS[form](catalogue.check(arg, ("boolean",), where))
    if form in ("includes", "equals"):
        _expect_keys(arg, {"field", "value"}, form, where)
        kinds = ("list",) if form == "includes" else ("choice",)
        ref = catalogue.check(arg["field"], kinds, where)
        catalogue.check_value(ref.path, arg["value"], where)
        return Includes(ref, arg["value"]) if form == "includes" else Equals(ref, arg["value"])
    if form in ("includes_any", "one_of"):
        _expect_keys(arg, {"field", "values"}, form, where)
        kinds = ("list",) if form == "includes_any" else ("choice",)
        ref = catalogue.check(arg["field"], kinds, where)
        values = arg["values"]
        if not isinstance(values, list) or not values:
            raise RuleDefinitionError(where, f"'{form}' needs a non-empty list of values")
        for value in values:
            catalogue.check_value(ref.path, value, where)
        return IncludesAny(ref, values) if form == "includes_any" else OneOf(ref, values)
    if form == "more_than_field":
        _expect_keys(arg, {"field", "other"}, form, where)
        larger = catalogue.check(arg["field"], ("integer",), where)
        smaller = catalogue.check(arg["other"], ("integer",), where)
        return MoreThanField(larger, smaller)
    if form in _COMPARISONS:
        _expect_keys(arg, {"field", "param"}, form, where)
        ref = catalogue.check(arg["field"], ("integer",), where)
        param_id = arg["param"]
        if param_id not in parameters:
            raise RuleDefinitionError(where, f"unknown parameter {param_id!r}")
        threshold = parameters[param_id]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise RuleDefinitionError(where, f"parameter {param_id!r} is not a number")
        return Compare(ref, _COMPARISONS[form], param_id, threshold)
    raise RuleDefinitionError(where, f"unknown condition form {form!r}")


def _expect_keys(arg: Any, keys: set[str], form: str, where: str) -> None:
    if not isinstance(arg, dict) or set(arg) != keys:
        raise RuleDefinitionError(
            where, f"'{form}' takes exactly the keys {sorted(keys)}, got {arg!r}"
        )
