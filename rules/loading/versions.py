"""The rules versions side by side: finding their folders and ordering them."""

from __future__ import annotations

import re
from pathlib import Path

from rules.errors import RuleDefinitionError
from rules.loading.vocabulary import SEMVER

RULES_DIR = Path(__file__).resolve().parent.parent
VERSIONS_DIR = RULES_DIR / "versions"


def version_key(version: str) -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in version.split("."))
    return major, minor, patch


def discover_versions(versions_dir: Path = VERSIONS_DIR) -> list[Path]:
    if not versions_dir.is_dir():
        raise RuleDefinitionError(str(versions_dir), "the rules versions folder is missing")
    folders = [
        p for p in versions_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    ]
    for folder in folders:
        if not re.match(SEMVER, folder.name):
            raise RuleDefinitionError(
                f"rules/versions/{folder.name}", "folder name is not a SemVer version"
            )
    if not folders:
        raise RuleDefinitionError("rules/versions", "no rule set found")
    return sorted(folders, key=lambda p: version_key(p.name))
