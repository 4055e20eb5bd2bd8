"""Every condition of one evaluation step, compiled into a single function.

Each condition compiles to a function of its own (``Condition.evaluate``). A step such as
the red-flag screen evaluates some thirty of them against the same answers, and each call
reads its fields again; together, the calls and the repeated reads cost more than the logic.
A stage is one generated function for a fixed sequence of conditions: it reads each field
any of them names once, into a local, then gives every condition's value, in order, with the
same Kleene logic as its own ``evaluate`` (tests hold the two equal on random answers). Steps
that act only on the conditions that hold take their indices instead (``compile_which_hold``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rules.conditions.nodes import Condition, Names

Stage = Callable[[Mapping[str, Any]], tuple]
WhichHold = Callable[[Mapping[str, Any]], list[int]]


def compile_stage(conditions: Sequence[Condition | None]) -> Stage:
    """``stage(answers)``: the value of each condition on ``answers``, in order; a None in
    ``conditions`` (a rule that always applies) is True."""
    names = Names(hoisted_reads=True)
    values = "".join(f"{_value(condition, names)}, " for condition in conditions)
    return _compiled_function(names, f"    return ({values})\n")  # "()" when there is none


def compile_which_hold(conditions: Sequence[Condition | None]) -> WhichHold:
    """``which_hold(answers)``: the indices of the conditions true on ``answers``, ascending;
    a None in ``conditions`` always holds."""
    names = Names(hoisted_reads=True)
    tests = "".join(
        f"    if {_value(condition, names)} is True:\n        held.append({index})\n"
        for index, condition in enumerate(conditions)
    )
    return _compiled_function(names, f"    held = []\n{tests}    return held\n")


def _value(condition: Condition | None, names: Names) -> str:
    return "True" if condition is None else condition.expression(names)


def _compiled_function(names: Names, body: str) -> Callable:
    reads = "".join(
        f"    {local} = get({names.constant(path)})\n" for path, local in names.reads.items()
    )
    source = f"def stage(f):\n    get = f.get\n{reads}{body}"
    namespace: dict[str, Any] = {"__builtins__": {}, **names.constants}
    # Generated from validated rule data only, as Condition.finish's functions are: field paths
    # and values are checked against the report vocabulary, literals are bound constants.
    exec(source, namespace)  # noqa: S102
    return namespace["stage"]
