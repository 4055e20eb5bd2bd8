"""A small condition language for rules written as data, evaluated with three-valued logic.

A symptom report is sparse: a field that is absent was *not asked*, which is not the same as
"no". Every condition therefore evaluates to ``True``, ``False`` or ``None`` (unknown), with
Kleene's rules: ``all`` is false as soon as one part is false, ``any`` is true as soon as one
part is true, and otherwise an absent answer leaves the result unknown. A red flag whose
condition is unknown is an unanswered safety question, never a "no".

Conditions are compiled once at load time into small node objects, and the conditions of each
evaluation step into one function that reads each field once (``stages``). Numbers never
appear in a condition: comparisons name a parameter, so every threshold has an id and a
source.

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

from rules.conditions.compiler import FieldCatalogue, compile_condition
from rules.conditions.flat import flatten, nest
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
from rules.conditions.stages import compile_stage, compile_which_hold

Tri = bool | None  # True, False, or None for "unknown: not answered"

__all__ = [
    "All",
    "Any_",
    "Compare",
    "Condition",
    "Equals",
    "FieldCatalogue",
    "FieldRef",
    "Includes",
    "IncludesAny",
    "IsFalse",
    "IsTrue",
    "MoreThanField",
    "Not",
    "NotTrue",
    "OneOf",
    "Tri",
    "compile_condition",
    "compile_stage",
    "compile_which_hold",
    "flatten",
    "nest",
]
