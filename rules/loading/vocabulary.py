"""The words the rule files are written in: the closed lists of values, and the shapes of the
values every file uses (codes, rule ids, versions, conditions, citations)."""

from __future__ import annotations

from typing import Any

from rules.loading.structure import Anything, At, Matching, Shape

SEMVER = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$"

FIELD_KINDS = ("boolean", "integer", "choice", "list")
EXERCISE_KINDS = ("warm_up", "stretch", "strengthen")
PHASES = EXERCISE_KINDS
CATEGORIES = (
    "safety",
    "professional_help",
    "immediate_care",
    "medication",
    "technique",
    "prevention",
)
STRENGTHS = ("strong", "supporting")
DOSE_KEYS = (
    "minutes",
    "hold_seconds",
    "repetitions",
    "repetitions_min",
    "repetitions_max",
    "sets",
    "times_per_week",
)
INTENSITIES = ("reduced", "pain_free")


class RuleId(Shape):
    """``kind.name``, starting with ``prefix`` where the file says what kind its rules are."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def check(self, raw: Any, at: At) -> str:
        rule_id = RULE_ID_FORM.check(raw, at)
        if not rule_id.startswith(self.prefix):
            raise at.error(f"ids here start with {self.prefix!r}, got {rule_id!r}")
        return rule_id


RULE_ID_FORM = Matching(
    r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$", "rule id must look like 'kind.name', got {raw!r}"
)
RULE_ID = RuleId()
CODE = Matching(r"^[a-z][a-z0-9_]*$", "code must be lower_snake_case, got {raw!r}")
VERSION = Matching(SEMVER, "not a SemVer version: {raw!r}")
DATE = Matching(r"^\d{4}-\d{2}-\d{2}$", "expected a date YYYY-MM-DD")
CONDITION = Anything(checked_by="rules.conditions, against the report fields")
CITATION = Anything(checked_by="rules.loading.citations, against the documents cited")
