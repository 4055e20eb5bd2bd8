"""Classification codes for the conditions the rules rank (ICD-10-CM).

Pure data and lookups: which code fits a condition, and which leaf fits the side the report
gives. Loaded strictly at start-up, like the rules: a defect stops the service naming the file
and key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules.errors import RuleDefinitionError
from rules.loader import _mapping, _read_yaml

ICD10CM_FILE = Path(__file__).with_name("icd10cm.yaml")
REQUIRED_SIDES = ("right", "left", "unspecified")
SIDE_FIELD = "pain.side"


@dataclass(frozen=True)
class Code:
    code: str
    display: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "display": self.display}


@dataclass(frozen=True)
class CodeFamily:
    """A category and its leaves by side, used when the report matches ``applies_when``."""

    category: Code
    leaves: Mapping[str, Code]
    applies_when: tuple[str, Any] | None = None

    def applies(self, report: Mapping[str, Any]) -> bool:
        if self.applies_when is None:
            return True
        path, expected = self.applies_when
        return _value(report, path) == expected

    def leaves_for(self, side: str | None) -> list[Code]:
        """The billable leaves for the side reported; both legs without a bilateral code
        give the right and the left leaf."""
        if side in ("right", "left"):
            return [self.leaves[side]]
        if side == "both":
            both = self.leaves.get("both")
            return [both] if both else [self.leaves["right"], self.leaves["left"]]
        return [self.leaves["unspecified"]]

    def catalogue(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            **self.category.as_dict(),
            "leaves": {side: code.as_dict() for side, code in self.leaves.items()},
        }
        entry["applies_when"] = (
            None
            if self.applies_when is None
            else {"field": self.applies_when[0], "equals": self.applies_when[1]}
        )
        return entry


@dataclass(frozen=True)
class ConditionCodes:
    condition: str
    families: tuple[CodeFamily, ...]
    no_code_reason: str | None = None

    def for_report(self, report: Mapping[str, Any] | None) -> list[Code]:
        """The leaf codes that fit this report (its side, its onset); none when no code fits."""
        report = report or {}
        for family in self.families:
            if family.applies(report):
                return family.leaves_for(_value(report, SIDE_FIELD))
        return []

    def catalogue(self, system: str) -> dict[str, Any]:
        return {
            "system": system,
            "codes": [family.catalogue() for family in self.families],
            "no_code_reason": self.no_code_reason,
        }


@dataclass(frozen=True)
class Classification:
    system: str
    source: Mapping[str, str]
    conditions: Mapping[str, ConditionCodes]

    def codes_for(self, condition: str, report: Mapping[str, Any] | None = None) -> list[Code]:
        return self.conditions[condition].for_report(report)

    def check_covers(self, condition_codes: Iterable[str], where: str) -> None:
        """Every condition the rules can rank must have codes or a reason for none."""
        missing = sorted(set(condition_codes) - set(self.conditions))
        if missing:
            raise RuleDefinitionError(
                str(ICD10CM_FILE), f"no entry for {', '.join(missing)} (used by {where})"
            )


def _value(report: Mapping[str, Any], path: str) -> Any:
    section, _, name = path.partition(".")
    return (report.get(section) or {}).get(name)


def _code(raw: Any, where: str) -> Code:
    entry = _mapping(raw, where, ("code", "display"))
    for key in ("code", "display"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise RuleDefinitionError(where, f"{key} must be non-empty text")
    return Code(entry["code"], entry["display"])


def _family(raw: Any, where: str) -> CodeFamily:
    entry = _mapping(raw, where, ("category", "leaves"), ("applies_when",))
    leaves_raw = _mapping(entry["leaves"], f"{where}.leaves", REQUIRED_SIDES, ("both",))
    leaves = {side: _code(leaves_raw[side], f"{where}.leaves.{side}") for side in leaves_raw}
    applies_when = None
    if "applies_when" in entry:
        condition = _mapping(entry["applies_when"], f"{where}.applies_when", ("field", "equals"))
        applies_when = (condition["field"], condition["equals"])
    return CodeFamily(_code(entry["category"], f"{where}.category"), leaves, applies_when)


def _condition(code: str, raw: Any, where: str) -> ConditionCodes:
    if isinstance(raw, dict):
        entry = _mapping(raw, where, ("no_code",))
        if not isinstance(entry["no_code"], str) or not entry["no_code"].strip():
            raise RuleDefinitionError(where, "no_code must say why no code fits")
        return ConditionCodes(code, (), entry["no_code"].strip())
    if not isinstance(raw, list) or not raw:
        raise RuleDefinitionError(where, "expected a list of code families or {no_code: reason}")
    families = tuple(_family(item, f"{where}[{i}]") for i, item in enumerate(raw))
    if families[-1].applies_when is not None:
        # Otherwise a report that matches no family would get no code without saying why.
        raise RuleDefinitionError(where, "the last code family must apply without a condition")
    return ConditionCodes(code, families)


def load_classification(
    path: Path = ICD10CM_FILE, report_fields: Iterable[str] = ()
) -> Classification:
    """Load and check the code file. ``report_fields`` (paths such as ``pain.onset``), when
    given, are the only fields ``applies_when`` may name."""
    where = str(path)
    raw = _mapping(_read_yaml(path), where, ("source", "system", "conditions"))
    source = _mapping(raw["source"], f"{where}: source", ("name", "url"))
    if not str(source["url"]).startswith("https://"):
        raise RuleDefinitionError(f"{where}: source.url", "must be an https address")
    conditions_raw = raw["conditions"]
    if not isinstance(conditions_raw, dict):
        raise RuleDefinitionError(f"{where}: conditions", "expected a mapping")
    conditions = {
        code: _condition(code, entry, f"{where}: conditions.{code}")
        for code, entry in conditions_raw.items()
    }
    known_fields = set(report_fields)
    if known_fields:
        for condition in conditions.values():
            for family in condition.families:
                if family.applies_when and family.applies_when[0] not in known_fields:
                    raise RuleDefinitionError(
                        f"{where}: conditions.{condition.condition}",
                        f"applies_when names unknown report field {family.applies_when[0]!r}",
                    )
    return Classification(raw["system"], source, conditions)


def report_field_paths(sections: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [f"{name}.{field}" for name, section in sections.items() for field in section["fields"]]
