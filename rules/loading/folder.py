"""The files of one rules version folder: reading them, naming them in errors, and the digest
that proves a released version never changes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rules.errors import RuleDefinitionError
from rules.loading.structure import At
from rules.loading.yaml_file import read_yaml

RULE_FILES = (
    "ruleset.yaml",
    "parameters.yaml",
    "red_flags.yaml",
    "stop_rules.yaml",
    "causes.yaml",
    "recommendations.yaml",
    "exercises.yaml",
    "prescription.yaml",
)
# Files a rule set may have from 2.0.0 on; older versions, which never change, have none.
OPTIONAL_RULE_FILES = ("time_frames.yaml", "contradictions.yaml", "presuppositions.yaml")


class RuleFolder:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.label = f"rules/versions/{directory.name}"

    def at(self, filename: str) -> At:
        return At(f"{self.label}/{filename}")

    def read(self, filename: str) -> Any:
        try:
            return read_yaml(self.directory / filename)
        except RuleDefinitionError as exc:
            # Named as the service names it, not by wherever the checkout happens to be.
            raise self.at(filename).error(exc.problem) from None

    def read_optional(self, filename: str) -> Any:
        """The file's content, or None for an optional file the version does not have."""
        return self.read(filename) if (self.directory / filename).exists() else None

    def digest(self) -> str:
        digest = hashlib.sha256()
        for name in RULE_FILES + OPTIONAL_RULE_FILES:
            path = self.directory / name
            if name in RULE_FILES or path.exists():
                digest.update(name.encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()
