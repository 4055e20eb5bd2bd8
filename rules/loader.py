"""The names other packages have always imported from here. Rule files are loaded by the
``rules.loading`` package: one module per file kind."""

from __future__ import annotations

from rules.loading import (
    CATEGORIES,
    PHASES,
    REPORT_FIELDS_FILE,
    VERSIONS_DIR,
    discover_versions,
    load_report_fields,
    load_ruleset,
    questions_for,
    replacements_for,
    version_key,
)

__all__ = [
    "CATEGORIES",
    "PHASES",
    "REPORT_FIELDS_FILE",
    "VERSIONS_DIR",
    "discover_versions",
    "load_report_fields",
    "load_ruleset",
    "questions_for",
    "replacements_for",
    "version_key",
]
