"""Strict loading of rule sets from YAML.

Everything is checked at start-up, and the first problem stops the load with the file and the
key at fault: unknown or missing keys, duplicate ids, a missing or unknown source, a reference to
an unknown field, value or parameter, a number written into a text instead of a parameter.
A service that starts has a rule set that is whole.

One module per rule file declares that file's structure (``rules.loading.structure`` holds it
to the declaration) and checks what its values refer to; ``rules.loading.version`` loads a
version folder's files in the order their rules may refer to one another.
"""

from __future__ import annotations

from rules.loading.checklists import CHECKLISTS_FILE, Checklist, load_checklists
from rules.loading.report_fields import (
    REPORT_FIELDS_FILE,
    load_report_fields,
    questions_for,
    replacements_for,
)
from rules.loading.version import load_ruleset
from rules.loading.versions import VERSIONS_DIR, discover_versions, version_key
from rules.loading.vocabulary import CATEGORIES, PHASES

__all__ = [
    "CATEGORIES",
    "CHECKLISTS_FILE",
    "PHASES",
    "REPORT_FIELDS_FILE",
    "VERSIONS_DIR",
    "Checklist",
    "discover_versions",
    "load_checklists",
    "load_report_fields",
    "load_ruleset",
    "questions_for",
    "replacements_for",
    "version_key",
]
