"""The structure of a rule file, declared as data, and the one validator that holds a file to it.

A shape says what a value must look like. ``shape.check(raw, at)`` returns the value as the
loader uses it (texts with their whitespace collapsed) or raises ``RuleDefinitionError`` naming
the file, the key path and the problem. Shapes check form only: what a value refers to (a
parameter, a report field, a cited document) is checked by the module loading the file, once
its form is known to be right.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rules.errors import RuleDefinitionError


@dataclass(frozen=True, slots=True)
class At:
    """Where a value stands, for error messages: ``file: key.key[index]``."""

    file: str
    keys: tuple[str, ...] = ()

    def __truediv__(self, key: Any) -> At:
        return At(self.file, (*self.keys, str(key)))

    def index(self, position: int) -> At:
        """The item of a list of plain values, written ``key[position]``."""
        *before, last = self.keys or ("",)
        return At(self.file, (*before, f"{last}[{position}]"))

    def __str__(self) -> str:
        return f"{self.file}: {'.'.join(self.keys)}" if self.keys else self.file

    def error(self, problem: str) -> RuleDefinitionError:
        return RuleDefinitionError(str(self), problem)


class Shape:
    """What a value must look like."""

    def check(self, raw: Any, at: At) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Anything(Shape):
    """Any value: its form is checked where it is used (``checked_by`` says where)."""

    def __init__(self, checked_by: str = "as written") -> None:
        self.checked_by = checked_by

    def check(self, raw: Any, at: At) -> Any:
        return raw


class Text(Shape):
    """A non-empty text. Checked, its whitespace is collapsed: YAML keeps the line breaks of a
    text folded to fit the file, which no reader of the advice should see."""

    def check(self, raw: Any, at: At) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise at.error("expected a non-empty text")
        return " ".join(raw.split())


TEXT = Text()


class Texts(Shape):
    """A non-empty list of texts."""

    def check(self, raw: Any, at: At) -> list[str]:
        if not isinstance(raw, list) or not raw:
            raise at.error("expected a non-empty list of texts")
        return [TEXT.check(item, at.index(position)) for position, item in enumerate(raw)]


class Names(Shape):
    """A list of names, possibly empty."""

    def check(self, raw: Any, at: At) -> list[str]:
        if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
            raise at.error(f"expected a list of names (an empty list for none), got {raw!r}")
        return raw


class Matching(Shape):
    """A text matching ``pattern``; ``problem`` may name the value as ``{raw!r}``."""

    def __init__(self, pattern: str, problem: str) -> None:
        self.pattern = re.compile(pattern)
        self.problem = problem

    def check(self, raw: Any, at: At) -> str:
        if not isinstance(raw, str) or not self.pattern.match(raw):
            raise at.error(self.problem.format(raw=raw))
        return raw


class Choice(Shape):
    def __init__(self, options: Iterable[str]) -> None:
        self.options = tuple(options)

    def check(self, raw: Any, at: At) -> str:
        if raw not in self.options:
            raise at.error(f"must be one of {self.options}, got {raw!r}")
        return raw


class Choices(Shape):
    """A non-empty list of distinct values from ``options``."""

    def __init__(self, options: Iterable[str], what: str) -> None:
        self.options = tuple(options)
        self.what = what

    def check(self, raw: Any, at: At) -> list[str]:
        if (
            not isinstance(raw, list)
            or not raw
            or not all(value in self.options for value in raw)
            or len(set(raw)) != len(raw)
        ):
            raise at.error(f"a list of {self.what} from {self.options}")
        return raw


def _is_number(raw: Any) -> bool:
    # True and False are ints to Python; a rule file never means them as numbers.
    return isinstance(raw, int | float) and not isinstance(raw, bool)


class Amount(Shape):
    """A non-negative number."""

    def check(self, raw: Any, at: At) -> int | float:
        if not _is_number(raw) or raw < 0:
            raise at.error(f"expected a non-negative number, got {raw!r}")
        return raw


class Count(Shape):
    """A positive whole number."""

    def check(self, raw: Any, at: At) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            raise at.error(f"must be a positive whole number, got {raw!r}")
        return raw


class Flag(Shape):
    def check(self, raw: Any, at: At) -> bool:
        if not isinstance(raw, bool):
            raise at.error(f"true or false, got {raw!r}")
        return raw


class HttpsAddress(Shape):
    def check(self, raw: Any, at: At) -> Any:
        if not str(raw).startswith("https://"):
            raise at.error("must be an https address")
        return raw


class Record(Shape):
    """A mapping with these keys and no other, each value of its own shape.

    The values are checked in the order declared; the checked mapping holds the keys present.
    """

    def __init__(
        self, required: Mapping[str, Shape], optional: Mapping[str, Shape] | None = None
    ) -> None:
        self.required = dict(required)
        self.optional = dict(optional or {})

    def with_keys(
        self,
        required: Mapping[str, Shape] | None = None,
        optional: Mapping[str, Shape] | None = None,
    ) -> Record:
        """This record with more keys: the form a later rules version adds."""
        return Record({**self.required, **(required or {})}, {**self.optional, **(optional or {})})

    def check(self, raw: Any, at: At) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise at.error(f"expected a mapping, got {type(raw).__name__}")
        unknown = set(raw) - set(self.required) - set(self.optional)
        if unknown:
            raise at.error(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}")
        missing = set(self.required) - set(raw)
        if missing:
            raise at.error(f"missing key(s): {', '.join(sorted(missing))}")
        shapes = {**self.required, **self.optional}
        return {key: shape.check(raw[key], at / key) for key, shape in shapes.items() if key in raw}


class ListOf(Shape):
    """A non-empty list of items of one shape.

    Checked, it is a list of ``(where the item stands, the item)``: an item is named by its
    ``named_by`` key when it has one (a rule by its id), else by its position.
    """

    def __init__(self, item: Shape, named_by: str | None = None) -> None:
        self.item = item
        self.named_by = named_by

    def check(self, raw: Any, at: At) -> list[tuple[At, Any]]:
        return list(self.items(raw, at))

    def items(self, raw: Any, at: At) -> Iterable[tuple[At, Any]]:
        """The items one by one, each checked only when reached: a loader that checks what an
        item refers to as it goes reports the first problem in file order."""
        if not isinstance(raw, list) or not raw:
            raise at.error("expected a non-empty list")
        for position, item in enumerate(raw):
            name = position
            if self.named_by is not None and isinstance(item, dict):
                name = item.get(self.named_by, position)
            item_at = at / name
            yield item_at, self.item.check(item, item_at)


class MappingOf(Shape):
    """A mapping of keys of one shape to values of another, non-empty unless ``may_be_empty``."""

    def __init__(self, key: Shape, value: Shape, what: str, may_be_empty: bool = False) -> None:
        self.key = key
        self.value = value
        self.what = what
        self.may_be_empty = may_be_empty

    def check(self, raw: Any, at: At) -> dict[Any, Any]:
        if not isinstance(raw, dict) or not (raw or self.may_be_empty):
            raise at.error(f"expected a mapping of {self.what}")
        checked = {}
        for key, value in raw.items():
            checked[self.key.check(key, at / key)] = self.value.check(value, at / key)
        return checked


class OneOf(Shape):
    """One of several record forms, told apart by the key that names the form."""

    def __init__(self, what: str, forms: Mapping[str, Record]) -> None:
        self.what = what
        self.forms = dict(forms)

    def check(self, raw: Any, at: At) -> dict[str, Any]:
        if isinstance(raw, dict):
            for key, form in self.forms.items():
                if key in raw:
                    return form.check(raw, at)
        *others, last = ("{" + ", ".join(form.required) + "}" for form in self.forms.values())
        described = f"{', '.join(others)} or {last}" if others else last
        raise at.error(f"{self.what} is {described}, got {raw!r}")


def check_unique(ids: Iterable[str], at: At, what: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise at.error(f"duplicate {what} {item!r}")
        seen.add(item)
