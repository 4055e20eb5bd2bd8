"""The loaded, immutable form of a rule set. Built once at start-up by ``rules.loading``.

Everything a response needs that does not depend on the report (messages, sources, exercise
texts) is turned into plain JSON-ready dicts here, once, so that evaluating a report only picks
and arranges them. Those shared dicts must never be mutated by callers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules.conditions import Condition

LEVELS = ("self_care", "see_professional", "urgent", "emergency")  # least to most urgent
LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}
# Plan statuses from the least to the most restrictive; the plan takes the most restrictive
# status of the review rules that hold.
PLAN_STATUSES = ("ready", "pending_professional_review", "awaiting_safety_answers")

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Parameter:
    id: str
    value: int | float
    unit: str
    description: str
    rationale: str
    source: JSON

    def as_json(self) -> JSON:
        return {
            "id": self.id,
            "value": self.value,
            "unit": self.unit,
            "description": self.description,
            "rationale": self.rationale,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Rule:
    """Anything with an id, a condition and a source: red flags, stop rules, advice, plan rules."""

    id: str
    kind: str
    when: Condition | None
    source: JSON
    parameters: JSON  # parameter id -> value, for the trace
    trace: JSON  # the trace entry, prebuilt
    definition: JSON  # the rule as served by GET /v1/rules/{version}


@dataclass(frozen=True, slots=True)
class RedFlag:
    rule: Rule
    code: str
    level: str
    rank: int
    output: JSON  # {code, level, message, source, rule_id[, time_frame]}
    rationale: str
    time_frame: TimeFrame | None = None


@dataclass(frozen=True, slots=True)
class TimeFrame:
    """How soon a red flag needs care; ``rank`` 0 is the most pressing."""

    id: str
    rank: int
    levels: tuple[str, ...]
    output: JSON  # {code, text, source}
    parameters: JSON


@dataclass(frozen=True, slots=True)
class Contradiction:
    """Two answers that cannot both be true: asked again, and the triage left incomplete."""

    rule: Rule
    confirm: tuple[str, ...]  # the report fields to confirm
    question: str
    why: str
    read_as: tuple[tuple[str, str, Any], ...] = ()  # (field, "value" | "field", what)

    def safer(self, flat: dict[str, Any]) -> None:
        """Apply the safer reading of the contradicting answers to ``flat``, in place."""
        for path, kind, what in self.read_as:
            value = what if kind == "value" else flat.get(what)
            if value is not None:  # never write "unanswered" as if it were an answer
                flat[path] = value


@dataclass(frozen=True, slots=True)
class StopRule:
    rule: Rule
    output: JSON  # {rule_id, reason, source}


@dataclass(frozen=True, slots=True)
class Signal:
    rule: Rule
    weight: float
    evidence: JSON  # {signal, strength, description, fields, source}


@dataclass(frozen=True, slots=True)
class Cause:
    code: str
    name: str
    summary: str
    source: JSON
    signals: tuple[Signal, ...]
    order: int
    catalogue: JSON  # the public description, for GET /v1/conditions


@dataclass(frozen=True, slots=True)
class Recommendation:
    rule: Rule
    output: JSON  # {code, category, text, source}


@dataclass(frozen=True, slots=True)
class Exercise:
    id: str
    kind: str
    catalogue: JSON  # the public description, for GET /v1/exercises


@dataclass(frozen=True, slots=True)
class ProgrammeItem:
    exercise: Exercise
    phase: str
    dose: JSON  # dose key -> value
    dose_parameters: JSON  # dose key -> parameter id
    per_side: bool


@dataclass(frozen=True, slots=True)
class PlanRule:
    rule: Rule
    kind: str  # withhold | exclude | adjust | review
    exercises: frozenset[str]  # the exercise ids it applies to (empty for withhold/review)
    reason: JSON  # {rule_id, reason, source}
    intensity: str | None = None
    note: str | None = None
    status: str | None = None  # review rules: the plan status they set
    dose: JSON = field(default_factory=dict)
    dose_parameters: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Question:
    field: str
    question: str
    why: str


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: str
    released: str
    summary: str
    disclaimer: str
    parameters: dict[str, Parameter]
    red_flags: tuple[RedFlag, ...]
    stop_rules: tuple[StopRule, ...]
    causes: tuple[Cause, ...]
    recommendations: tuple[Recommendation, ...]
    exercises: dict[str, Exercise]
    programme: tuple[ProgrammeItem, ...]
    progression: JSON  # phase -> {text, source}
    safety: tuple[JSON, ...]
    withhold: tuple[PlanRule, ...]
    exclude: tuple[PlanRule, ...]
    adjust: tuple[PlanRule, ...]
    review: tuple[PlanRule, ...]
    questions: dict[str, Question]
    documents: JSON  # the sources this rule set cites
    digest: str  # sha256 over the rule files, to prove a released version never changes
    cited_paragraphs: frozenset[tuple[str, int]]  # (article section key, paragraph) cited
    document: JSON  # the whole rule set as served

    # From rules 2.0.0 on (absent from older versions, whose outputs never change):
    replacements: tuple[tuple[str, str, bool], ...] = ()  # (old field, new field, opposite)
    time_frames: tuple[TimeFrame, ...] = ()
    contradictions: tuple[Contradiction, ...] = ()
    presuppositions: JSON = field(default_factory=dict)  # name -> {description, when}

    causes_by_code: dict[str, Cause] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "causes_by_code", {cause.code: cause for cause in self.causes})
