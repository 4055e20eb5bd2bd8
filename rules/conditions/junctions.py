"""Nodes made of other conditions: ``all``, ``any`` (Kleene AND and OR) and ``not``."""

from __future__ import annotations

from rules.conditions.nodes import Condition, Leaf, Names, NotTrue


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


def _kleene(parts, names: Names, decisive: str, otherwise: str) -> str:
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
    if all(isinstance(p, Leaf) for p in parts):
        return tuple(p.field.path for p in parts if not isinstance(p, NotTrue))
    return None


def _union(groups) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item, None)
    return tuple(seen)
