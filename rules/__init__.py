"""Popliteal's rules core: versioned clinical rules as data, and their pure evaluation.

This package knows nothing of HTTP, Flask or marshmallow. The service imports it; it imports
neither the service nor the schemas.

    library = load_library()          # every version under rules/versions, checked
    evaluator = library.get()         # the newest; library.get("1.0.0") pins one
    evaluator.assess(report)          # -> JSON-ready dict
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rules.engine import Evaluator, prescription_from_assessment
from rules.errors import RuleDefinitionError, RulesError, UnknownCode, UnknownRulesVersion
from rules.loading import VERSIONS_DIR, discover_versions, load_report_fields, load_ruleset
from rules.model import LEVELS, RuleSet
from rules.terminology import Classification, load_classification, report_field_paths

__all__ = [
    "LEVELS",
    "Classification",
    "Evaluator",
    "RuleDefinitionError",
    "RuleSet",
    "RulesError",
    "RulesLibrary",
    "UnknownCode",
    "UnknownRulesVersion",
    "load_library",
    "load_report_fields",
    "prescription_from_assessment",
]


class RulesLibrary:
    """All loaded rule-set versions, side by side. The newest is the default."""

    def __init__(
        self,
        evaluators: list[Evaluator],
        report_sections: dict,
        classification: Classification | None = None,
    ):
        if not evaluators:
            raise RuleDefinitionError("rules/versions", "no rule set loaded")
        self.classification = classification or load_classification(
            report_fields=report_field_paths(report_sections)
        )
        for evaluator in evaluators:
            self.classification.check_covers(
                evaluator.ruleset.causes_by_code, f"rules {evaluator.ruleset.version}"
            )
        self._by_version = {e.ruleset.version: e for e in evaluators}
        self.versions = [e.ruleset.version for e in evaluators]  # oldest to newest
        self.default_version = self.versions[-1]
        self.default = self._by_version[self.default_version]
        self.report_sections = report_sections

    def get(self, version: str | None = None) -> Evaluator:
        if version is None:
            return self.default
        evaluator = self._by_version.get(version)
        if evaluator is None:
            raise UnknownRulesVersion(version, self.versions)
        return evaluator

    def __iter__(self):
        return iter(self._by_version.values())


@cache
def load_library(versions_dir: Path = VERSIONS_DIR) -> RulesLibrary:
    """Load every rule-set version. Fails at once, naming the file and key, on any defect.

    Loaded once per folder and process: rule sets are immutable once loaded."""
    sections = load_report_fields()
    evaluators = [
        Evaluator(load_ruleset(folder, sections)) for folder in discover_versions(versions_dir)
    ]
    return RulesLibrary(evaluators, sections)
