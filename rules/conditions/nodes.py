"""Compiled condition nodes: the base class, which generates each node's evaluation function
once, and the leaves, which read one answer (or two)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FieldRef:
    """A dotted path into the report, e.g. ``signs.swelling``."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        parts = path.split(".")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"field path must look like 'section.field', got {path!r}")
        self.path = path


class Names:
    """Hands out fresh local names and constant slots for generated code; with
    ``hoisted_reads``, also one local per field read, loaded once before the expressions
    (``rules.conditions.stages``)."""

    def __init__(self, hoisted_reads: bool = False):
        self.count = 0
        self.constants: dict[str, Any] = {}
        self.reads: dict[str, str] | None = {} if hoisted_reads else None

    def local(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def constant(self, value: Any) -> str:
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        return name

    @property
    def hoisted(self) -> bool:
        """Whether each field is read once, into a local named by ``read``."""
        return self.reads is not None

    def read(self, path: str) -> str:
        """An expression for the answer at ``path``: its hoisted local, or a read of ``f``
        (which a caller that tests the value more than once binds to a local of its own)."""
        if self.reads is None:
            return f"f.get({self.constant(path)})"
        local = self.reads.get(path)
        if local is None:
            local = self.reads[path] = f"r{len(self.reads)}"
        return local


class Condition:
    """A compiled condition node.

    ``evaluate(flat)`` runs a Python function generated once from the node tree (Kleene logic
    spelled out inline), which is several times faster than walking the tree per request.
    ``unanswered(flat)`` walks the tree, and is only needed for conditions left undecided.
    """

    __slots__ = ("evaluate", "fields", "params")

    def expression(self, names: Names) -> str:  # pragma: no cover - abstract
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
        names = Names()
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


class Leaf(Condition):
    __slots__ = ("field",)

    def __init__(self, field: FieldRef):
        self.field = field
        self.fields = (field.path,)
        self.params: tuple[str, ...] = ()

    def test(self, value: str, names: Names) -> str:  # pragma: no cover - abstract
        """The expression deciding the condition once the answer (named ``value``) is known."""
        raise NotImplementedError

    def expression(self, names):
        read = names.read(self.field.path)
        if names.hoisted:  # already a local: test it as it is
            return f"(None if {read} is None else {self.test(read, names)})"
        value = names.local()
        return f"(None if ({value} := {read}) is None else {self.test(value, names)})"

    def collect_unanswered(self, flat, found):
        if flat.get(self.field.path) is None:
            found.append(self.field.path)


class IsTrue(Leaf):
    __slots__ = ()

    def test(self, value, names):
        return f"{value} is True"


class IsFalse(Leaf):
    __slots__ = ()

    def test(self, value, names):
        return f"{value} is False"


class NotTrue(Leaf):
    """Holds unless the answer is yes. Never unknown: for withholding advice that would be
    unsafe only when a sign is present (an unanswered sign is still asked for elsewhere)."""

    __slots__ = ()

    def expression(self, names):
        return f"({names.read(self.field.path)} is not True)"

    def collect_unanswered(self, flat, found):
        return  # never undecided


class _WithValue(Leaf):
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


class Compare(Leaf):
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
        ra, rb = names.read(self.larger.path), names.read(self.smaller.path)
        return f"(None if ({a} := {ra}) is None or ({b} := {rb}) is None else {a} > {b})"

    def collect_unanswered(self, flat, found):
        found.extend(path for path in self.fields if flat.get(path) is None)
