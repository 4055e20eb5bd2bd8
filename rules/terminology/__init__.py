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
from rules.loading.structure import TEXT, Anything, At, HttpsAddress, MappingOf, Record
from rules.loading.yaml_file import read_yaml

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


CODE_ENTRY = Record({"code": TEXT, "display": TEXT})
LEAVES = Record(dict.fromkeys(REQUIRED_SIDES, CODE_ENTRY), {"both": CODE_ENTRY})
FAMILY = Record(
    {"category": CODE_ENTRY, "leaves": LEAVES},
    {
        "applies_when": Record(
            {"field": Anything("against the report fields"), "equals": Anything()}
        )
    },
)
NO_CODE = Record({"no_code": TEXT})
CODE_FILE = Record(
    {
        "source": Record({"name": Anything("shown as written"), "url": HttpsAddress()}),
        "system": Anything("shown as written"),
        "conditions": MappingOf(
            Anything("against the rules' causes"), Anything(), "conditions", may_be_empty=True
        ),
    }
)


def _code(raw: dict[str, Any]) -> Code:
    return Code(raw["code"], raw["display"])


def _family(raw: dict[str, Any]) -> CodeFamily:
    # Leaves keep the order they are written in: the catalogue lists them so.
    leaves = {side: _code(code) for side, code in raw["leaves"].items()}
    condition = raw.get("applies_when")
    applies_when = (condition["field"], condition["equals"]) if condition else None
    return CodeFamily(_code(raw["category"]), leaves, applies_when)


def _condition(code: str, raw: Any, at: At) -> ConditionCodes:
    if isinstance(raw, dict):
        NO_CODE.check(raw, at)
        return ConditionCodes(code, (), raw["no_code"].strip())
    if not isinstance(raw, list) or not raw:
        raise at.error("expected a list of code families or {no_code: reason}")
    for position, family in enumerate(raw):
        FAMILY.check(family, at.index(position))
    families = tuple(_family(family) for family in raw)
    if families[-1].applies_when is not None:
        # Otherwise a report that matches no family would get no code without saying why.
        raise at.error("the last code family must apply without a condition")
    return ConditionCodes(code, families)


def load_classification(
    path: Path = ICD10CM_FILE, report_fields: Iterable[str] = ()
) -> Classification:
    """Load and check the code file. ``report_fields`` (paths such as ``pain.onset``), when
    given, are the only fields ``applies_when`` may name."""
    at = At(str(path))
    raw = read_yaml(path)
    CODE_FILE.check(raw, at)
    conditions = {
        code: _condition(code, entry, at / "conditions" / code)
        for code, entry in raw["conditions"].items()
    }
    known_fields = set(report_fields)
    if known_fields:
        for condition in conditions.values():
            for family in condition.families:
                if family.applies_when and family.applies_when[0] not in known_fields:
                    raise (at / "conditions" / condition.condition).error(
                        f"applies_when names unknown report field {family.applies_when[0]!r}"
                    )
    return Classification(raw["system"], raw["source"], conditions)


def report_field_paths(sections: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [f"{name}.{field}" for name, section in sections.items() for field in section["fields"]]
