"""Strict loading of rule sets from YAML.

Everything is checked at start-up, and the first problem stops the load with the file and the
key at fault: unknown or missing keys, duplicate ids, a missing or unknown source, a reference to
an unknown field, value or parameter, a number written into a text instead of a parameter.
A service that starts has a rule set that is whole.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from rules.conditions import Condition, FieldCatalogue, compile_condition
from rules.errors import RuleDefinitionError
from rules.model import (
    LEVEL_RANK,
    LEVELS,
    Cause,
    Exercise,
    Parameter,
    PlanRule,
    ProgrammeItem,
    Question,
    Recommendation,
    RedFlag,
    Rule,
    RuleSet,
    Signal,
    StopRule,
)

PACKAGE_DIR = Path(__file__).resolve().parent
VERSIONS_DIR = PACKAGE_DIR / "versions"
REPORT_FIELDS_FILE = PACKAGE_DIR / "report_fields.yaml"

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)\}")
DIGIT = re.compile(r"\d")

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


# --- small strict helpers -------------------------------------------------------------------


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_UniqueKeyLoader)  # noqa: S506 - safe loader subclass
    except FileNotFoundError:
        raise RuleDefinitionError(str(path), "file is missing") from None
    except yaml.YAMLError as exc:
        raise RuleDefinitionError(str(path), f"not valid YAML: {exc}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys, which plain YAML silently overwrites."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML reads bare dates as datetime.date; the rule files want them as text.
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def _mapping(raw: Any, where: str, required: Iterable[str], optional: Iterable[str] = ()) -> dict:
    if not isinstance(raw, dict):
        raise RuleDefinitionError(where, f"expected a mapping, got {type(raw).__name__}")
    required, optional = set(required), set(optional)
    unknown = set(raw) - required - optional
    if unknown:
        raise RuleDefinitionError(where, f"unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    missing = required - set(raw)
    if missing:
        raise RuleDefinitionError(where, f"missing key(s): {', '.join(sorted(missing))}")
    return raw


def _text(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise RuleDefinitionError(where, "expected a non-empty text")
    return " ".join(raw.split())


def _text_list(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise RuleDefinitionError(where, "expected a non-empty list of texts")
    return [_text(item, f"{where}[{i}]") for i, item in enumerate(raw)]


def _list(raw: Any, where: str) -> list:
    if not isinstance(raw, list) or not raw:
        raise RuleDefinitionError(where, "expected a non-empty list")
    return raw


def _unique(ids: Iterable[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise RuleDefinitionError(where, f"duplicate {what} {item!r}")
        seen.add(item)


def _rule_id(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not RULE_ID.match(raw):
        raise RuleDefinitionError(where, f"rule id must look like 'kind.name', got {raw!r}")
    return raw


def _code(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not CODE.match(raw):
        raise RuleDefinitionError(where, f"code must be lower_snake_case, got {raw!r}")
    return raw


# --- report fields --------------------------------------------------------------------------


def load_report_fields(path: Path = REPORT_FIELDS_FILE) -> dict[str, dict[str, Any]]:
    """The report vocabulary: section -> {description, fields: {name -> spec}}, checked."""
    raw = _read_yaml(path)
    where = path.name
    if not isinstance(raw, dict) or not raw:
        raise RuleDefinitionError(where, "expected a mapping of sections")
    sections: dict[str, dict[str, Any]] = {}
    for section_name, section in raw.items():
        swhere = f"{where}: {section_name}"
        _code(section_name, swhere)
        _mapping(section, swhere, ("description", "fields"))
        fields = {}
        for name, spec in section["fields"].items():
            fwhere = f"{swhere}.{name}"
            _code(name, fwhere)
            _mapping(
                spec,
                fwhere,
                ("kind", "description", "question", "why"),
                ("values", "minimum", "maximum", "required", "example"),
            )
            kind = spec["kind"]
            if kind not in FIELD_KINDS:
                raise RuleDefinitionError(f"{fwhere}.kind", f"unknown kind {kind!r}")
            if (kind in ("choice", "list")) != ("values" in spec):
                raise RuleDefinitionError(
                    fwhere, "choice and list fields, and only they, need values"
                )
            if (kind == "integer") != ("minimum" in spec and "maximum" in spec):
                raise RuleDefinitionError(
                    fwhere, "integer fields, and only they, need minimum and maximum"
                )
            for key in ("description", "question", "why"):
                _text(spec[key], f"{fwhere}.{key}")
            fields[name] = dict(spec)
        sections[section_name] = {"description": section["description"], "fields": fields}
    return sections


def _report_catalogue(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{section}.{name}": {"kind": spec["kind"], "values": spec.get("values")}
        for section, body in sections.items()
        for name, spec in body["fields"].items()
    }


# --- one rule set ---------------------------------------------------------------------------


class _VersionLoader:
    def __init__(self, directory: Path, report_sections: Mapping[str, Mapping[str, Any]]):
        self.directory = directory
        self.report_sections = report_sections
        self.label = f"rules/versions/{directory.name}"

    def where(self, filename: str, *keys: Any) -> str:
        return f"{self.label}/{filename}" + (": " + ".".join(map(str, keys)) if keys else "")

    def read(self, filename: str) -> Any:
        path = self.directory / filename
        try:
            return _read_yaml(path)
        except RuleDefinitionError as exc:
            raise RuleDefinitionError(f"{self.label}/{filename}", exc.problem) from None

    # sources ---------------------------------------------------------------------------------
    def source(self, raw: Any, where: str) -> dict[str, Any]:
        if not isinstance(raw, dict) or len(raw) not in (1, 2):
            raise RuleDefinitionError(
                where,
                f"a source is {{article, paragraph}}, {{guideline}} or {{method}}, got {raw!r}",
            )
        if "article" in raw:
            _mapping(raw, where, ("article", "paragraph"))
            section = self.sections.get(raw["article"])
            if section is None:
                raise RuleDefinitionError(where, f"unknown article section {raw['article']!r}")
            paragraph = raw["paragraph"]
            if (
                isinstance(paragraph, bool)
                or not isinstance(paragraph, int)
                or not 1 <= paragraph <= section["paragraphs"]
            ):
                raise RuleDefinitionError(
                    where,
                    f"section {raw['article']!r} has paragraphs 1 to {section['paragraphs']}, "
                    f"got {paragraph!r}",
                )
            self.cited_paragraphs.add((raw["article"], paragraph))
            return {"document": "article", "section": section["heading"], "paragraph": paragraph}
        if "guideline" in raw:
            _mapping(raw, where, ("guideline",))
            guideline = self.guidelines.get(raw["guideline"])
            if guideline is None:
                raise RuleDefinitionError(where, f"unknown guideline {raw['guideline']!r}")
            self.cited_guidelines.add(raw["guideline"])
            return {"document": guideline["name"], "url": guideline["url"]}
        if "method" in raw:
            _mapping(raw, where, ("method",))
            section = self.method_sections.get(raw["method"])
            if section is None:
                raise RuleDefinitionError(where, f"unknown method section {raw['method']!r}")
            return {"document": self.method_document, "section": section}
        raise RuleDefinitionError(
            where, f"a source needs 'article', 'guideline' or 'method', got {raw!r}"
        )

    # texts with parameters ------------------------------------------------------------------
    def template(self, raw: Any, where: str) -> tuple[str, dict[str, Any]]:
        """Fill {parameter} placeholders. A digit outside a placeholder is refused: numbers
        in advice must come from parameters so that they are traceable and versioned."""
        text = _text(raw, where)
        used: dict[str, Any] = {}

        def fill(match: re.Match) -> str:
            param_id = match.group(1)
            if param_id not in self.parameters:
                raise RuleDefinitionError(where, f"unknown parameter {param_id!r} in text")
            used[param_id] = self.parameters[param_id].value
            return _format_number(self.parameters[param_id].value)

        stripped = PLACEHOLDER.sub("", text)
        if DIGIT.search(stripped):
            raise RuleDefinitionError(
                where, "a number is written into the text; name a parameter in braces instead"
            )
        return PLACEHOLDER.sub(fill, text), used

    def condition(self, raw: Any, where: str, catalogue: FieldCatalogue) -> Condition:
        values = {pid: p.value for pid, p in self.parameters.items()}
        return compile_condition(raw, catalogue, values, where)

    def make_rule(
        self,
        rule_id: str,
        kind: str,
        when: Condition | None,
        source: dict,
        extra_parameters: Mapping[str, Any] = (),
        definition: Mapping[str, Any] = (),
        raw_when: Any = None,
        *,
        where: str,
    ) -> Rule:
        parameters = {pid: self.parameters[pid].value for pid in (when.params if when else ())}
        parameters.update(extra_parameters)
        self.rule_ids_seen(rule_id, where)
        public = {"id": rule_id, "kind": kind, **dict(definition)}
        if raw_when is not None:
            public["when"] = raw_when
        public["parameters"] = parameters
        public["source"] = source
        return Rule(
            id=rule_id,
            kind=kind,
            when=when,
            source=source,
            parameters=parameters,
            trace={"rule_id": rule_id, "kind": kind, "parameters": parameters},
            definition=public,
        )

    def rule_ids_seen(self, rule_id: str, where: str) -> None:
        first = self.all_rule_ids.get(rule_id)
        if first is not None:
            raise RuleDefinitionError(where, f"duplicate rule id {rule_id!r} (first at {first})")
        self.all_rule_ids[rule_id] = where

    # the whole version ----------------------------------------------------------------------
    def load(self) -> RuleSet:
        self.all_rule_ids: dict[str, str] = {}
        self.cited_paragraphs: set[tuple[str, int]] = set()
        self.cited_guidelines: set[str] = set()
        self._load_ruleset()
        self._load_parameters()

        report_fields = _report_catalogue(self.report_sections)
        self.cause_codes = self._cause_codes()
        report_only = FieldCatalogue(report_fields)
        after_triage = FieldCatalogue(
            {
                **report_fields,
                "assessment.level": {"kind": "choice", "values": list(LEVELS)},
                "assessment.leading_cause": {"kind": "choice", "values": self.cause_codes},
                "assessment.suspected_causes": {"kind": "list", "values": self.cause_codes},
                "assessment.likely_causes": {"kind": "list", "values": self.cause_codes},
                "assessment.triage_complete": {"kind": "boolean", "values": None},
            }
        )
        after_stop = FieldCatalogue(
            {
                **after_triage.fields,
                "assessment.stop_stretching": {"kind": "boolean", "values": None},
            }
        )
        # Advice is decided last and may read whether there is an exercise plan.
        after_plan = FieldCatalogue(
            {**after_stop.fields, "assessment.has_plan": {"kind": "boolean", "values": None}}
        )

        red_flags = self._load_red_flags(report_only)
        causes = self._load_causes(report_only)
        stop_rules = self._load_stop_rules(after_triage)
        recommendations = self._load_recommendations(after_plan)
        exercises = self._load_exercises()
        plan = self._load_prescription(after_stop, exercises)
        questions = {
            f"{section}.{name}": Question(
                f"{section}.{name}",
                " ".join(spec["question"].split()),
                " ".join(spec["why"].split()),
            )
            for section, body in self.report_sections.items()
            for name, spec in body["fields"].items()
        }
        documents = {
            "article": {
                "title": self.article_title,
                "sections": [
                    {"heading": s["heading"], "paragraphs": s["paragraphs"]}
                    for s in self.sections.values()
                ],
            },
            "guidelines": [
                {"key": key, "name": g["name"], "url": g["url"]}
                for key, g in self.guidelines.items()
            ],
            "method": {
                "document": self.method_document,
                "sections": list(self.method_sections.values()),
            },
        }
        unused = set(self.guidelines) - self.cited_guidelines
        if unused:
            raise RuleDefinitionError(
                self.where("ruleset.yaml", "guidelines"),
                f"guideline(s) never cited: {', '.join(sorted(unused))}",
            )
        return RuleSet(
            version=self.version,
            released=self.released,
            summary=self.summary,
            disclaimer=self.disclaimer,
            parameters=self.parameters,
            red_flags=red_flags,
            stop_rules=stop_rules,
            causes=causes,
            recommendations=recommendations,
            exercises=exercises,
            programme=plan["programme"],
            progression=plan["progression"],
            safety=plan["safety"],
            withhold=plan["withhold"],
            exclude=plan["exclude"],
            adjust=plan["adjust"],
            review=plan["review"],
            questions=questions,
            documents=documents,
            digest=self._digest(),
            document=self._document(
                red_flags, stop_rules, causes, recommendations, exercises, plan, documents
            ),
            cited_paragraphs=frozenset(self.cited_paragraphs),
        )

    def _document(
        self, red_flags, stop_rules, causes, recommendations, exercises, plan, documents
    ) -> dict[str, Any]:
        """The rule set as served by GET /v1/rules/{version}: every rule with its condition,
        parameters and source, exactly as loaded."""
        return {
            "version": self.version,
            "released": self.released,
            "summary": self.summary,
            "digest": self._digest(),
            "disclaimer": self.disclaimer,
            "documents": documents,
            "parameters": [p.as_json() for p in self.parameters.values()],
            "red_flags": [flag.rule.definition for flag in red_flags],
            "stop_rules": [rule.rule.definition for rule in stop_rules],
            "causes": [
                {**cause.catalogue, "signals": [s.rule.definition for s in cause.signals]}
                for cause in causes
            ],
            "recommendations": [rec.rule.definition for rec in recommendations],
            "exercises": [exercise.catalogue for exercise in exercises.values()],
            "prescription": {
                "programme": [
                    {
                        "exercise_id": item.exercise.id,
                        "phase": item.phase,
                        "dose": item.dose_parameters,
                        "per_side": item.per_side,
                    }
                    for item in plan["programme"]
                ],
                "progression": plan["progression"],
                "safety": list(plan["safety"]),
                **{
                    kind: [rule.rule.definition for rule in plan[kind]]
                    for kind in ("withhold", "exclude", "adjust", "review")
                },
            },
        }

    def _digest(self) -> str:
        digest = hashlib.sha256()
        for name in RULE_FILES:
            digest.update(name.encode())
            digest.update((self.directory / name).read_bytes())
        return digest.hexdigest()

    def _load_ruleset(self) -> None:
        f = "ruleset.yaml"
        raw = _mapping(
            self.read(f),
            self.where(f),
            ("version", "released", "summary", "disclaimer", "article", "guidelines", "method"),
        )
        version = raw["version"]
        if not isinstance(version, str) or not SEMVER.match(version):
            raise RuleDefinitionError(
                self.where(f, "version"), f"not a SemVer version: {version!r}"
            )
        if version != self.directory.name:
            raise RuleDefinitionError(
                self.where(f, "version"),
                f"{version!r} does not match its folder {self.directory.name!r}",
            )
        self.version = version
        if not isinstance(raw["released"], str) or not re.match(
            r"^\d{4}-\d{2}-\d{2}$", raw["released"]
        ):
            raise RuleDefinitionError(self.where(f, "released"), "expected a date YYYY-MM-DD")
        self.released = raw["released"]
        self.summary = _text(raw["summary"], self.where(f, "summary"))
        self.disclaimer = _text(raw["disclaimer"], self.where(f, "disclaimer"))
        article = _mapping(raw["article"], self.where(f, "article"), ("title", "sections"))
        self.article_title = _text(article["title"], self.where(f, "article", "title"))
        self.sections = {}
        for key, section in article["sections"].items():
            where = self.where(f, "article", "sections", key)
            _mapping(section, where, ("heading", "paragraphs"))
            _text(section["heading"], where)
            if (
                isinstance(section["paragraphs"], bool)
                or not isinstance(section["paragraphs"], int)
                or section["paragraphs"] < 1
            ):
                raise RuleDefinitionError(where, "paragraphs must be a positive whole number")
            self.sections[_code(key, where)] = section
        self.guidelines = {}
        for key, guideline in raw["guidelines"].items():
            where = self.where(f, "guidelines", key)
            _mapping(guideline, where, ("name", "url"))
            if not str(guideline["url"]).startswith("https://"):
                raise RuleDefinitionError(where, "url must be an https address")
            self.guidelines[_code(key, where)] = guideline
        method = _mapping(raw["method"], self.where(f, "method"), ("document", "sections"))
        self.method_document = _text(method["document"], self.where(f, "method", "document"))
        self.method_sections = dict(method["sections"])

    def _load_parameters(self) -> None:
        f = "parameters.yaml"
        raw = self.read(f)
        if not isinstance(raw, dict) or not raw:
            raise RuleDefinitionError(self.where(f), "expected a mapping of parameters")
        self.parameters: dict[str, Parameter] = {}
        for pid, spec in raw.items():
            where = self.where(f, pid)
            _code(pid, where)
            _mapping(spec, where, ("value", "unit", "description", "rationale", "source"))
            value = spec["value"]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise RuleDefinitionError(
                    f"{where}.value", f"expected a non-negative number, got {value!r}"
                )
            self.parameters[pid] = Parameter(
                id=pid,
                value=value,
                unit=_text(spec["unit"], f"{where}.unit"),
                description=_text(spec["description"], f"{where}.description"),
                rationale=_text(spec["rationale"], f"{where}.rationale"),
                source=self.source(spec["source"], f"{where}.source"),
            )

    def _cause_codes(self) -> list[str]:
        raw = _list(self.read("causes.yaml"), self.where("causes.yaml"))
        codes = []
        for i, cause in enumerate(raw):
            if not isinstance(cause, dict) or "code" not in cause:
                raise RuleDefinitionError(self.where("causes.yaml", i), "missing key(s): code")
            codes.append(_code(cause["code"], self.where("causes.yaml", i, "code")))
        _unique(codes, self.where("causes.yaml"), "cause code")
        return codes

    def _load_red_flags(self, catalogue: FieldCatalogue) -> tuple[RedFlag, ...]:
        f = "red_flags.yaml"
        flags = []
        for i, raw in enumerate(_list(self.read(f), self.where(f))):
            where = self.where(f, raw.get("id", i) if isinstance(raw, dict) else i)
            _mapping(raw, where, ("id", "code", "level", "when", "message", "rationale", "source"))
            rule_id = _rule_id(raw["id"], where)
            if raw["level"] not in LEVELS or raw["level"] == "self_care":
                raise RuleDefinitionError(
                    f"{where}.level", f"must be one of {LEVELS[1:]}, got {raw['level']!r}"
                )
            when = self.condition(raw["when"], f"{where}.when", catalogue)
            message, text_params = self.template(raw["message"], f"{where}.message")
            source = self.source(raw["source"], f"{where}.source")
            code = _code(raw["code"], f"{where}.code")
            rationale = _text(raw["rationale"], f"{where}.rationale")
            rule = self.make_rule(
                rule_id,
                "red_flag",
                when,
                source,
                text_params,
                {"code": code, "level": raw["level"], "message": message, "rationale": rationale},
                raw["when"],
                where=where,
            )
            flags.append(
                RedFlag(
                    rule=rule,
                    code=code,
                    level=raw["level"],
                    rank=LEVEL_RANK[raw["level"]],
                    output={
                        "code": code,
                        "level": raw["level"],
                        "message": message,
                        "source": source,
                        "rule_id": rule_id,
                    },
                    rationale=rationale,
                )
            )
        _unique((flag.code for flag in flags), self.where(f), "red flag code")
        return tuple(flags)

    def _load_stop_rules(self, catalogue: FieldCatalogue) -> tuple[StopRule, ...]:
        f = "stop_rules.yaml"
        rules = []
        for i, raw in enumerate(_list(self.read(f), self.where(f))):
            where = self.where(f, raw.get("id", i) if isinstance(raw, dict) else i)
            _mapping(raw, where, ("id", "when", "reason", "source"))
            rule_id = _rule_id(raw["id"], where)
            when = self.condition(raw["when"], f"{where}.when", catalogue)
            reason, text_params = self.template(raw["reason"], f"{where}.reason")
            source = self.source(raw["source"], f"{where}.source")
            rule = self.make_rule(
                rule_id,
                "stop_rule",
                when,
                source,
                text_params,
                {"reason": reason},
                raw["when"],
                where=where,
            )
            rules.append(StopRule(rule, {"rule_id": rule_id, "reason": reason, "source": source}))
        return tuple(rules)

    def _load_causes(self, catalogue: FieldCatalogue) -> tuple[Cause, ...]:
        f = "causes.yaml"
        weights = {
            "strong": ("signal_weight_strong", self.parameters["signal_weight_strong"].value),
            "supporting": (
                "signal_weight_supporting",
                self.parameters["signal_weight_supporting"].value,
            ),
        }
        causes = []
        for order, raw in enumerate(_list(self.read(f), self.where(f))):
            where = self.where(f, raw.get("code", order))
            _mapping(raw, where, ("code", "name", "summary", "source", "signals"))
            source = self.source(raw["source"], f"{where}.source")
            signals = []
            for j, sig in enumerate(_list(raw["signals"], f"{where}.signals")):
                swhere = f"{where}.signals.{sig.get('id', j) if isinstance(sig, dict) else j}"
                _mapping(sig, swhere, ("id", "strength", "description", "when"), ("source",))
                rule_id = _rule_id(sig["id"], swhere)
                if not rule_id.startswith(f"sig.{raw['code']}."):
                    raise RuleDefinitionError(
                        swhere, f"signal ids of this cause start with 'sig.{raw['code']}.'"
                    )
                if sig["strength"] not in STRENGTHS:
                    raise RuleDefinitionError(f"{swhere}.strength", f"must be one of {STRENGTHS}")
                when = self.condition(sig["when"], f"{swhere}.when", catalogue)
                sig_source = (
                    self.source(sig["source"], f"{swhere}.source") if "source" in sig else source
                )
                weight_param, weight = weights[sig["strength"]]
                description = _text(sig["description"], f"{swhere}.description")
                rule = self.make_rule(
                    rule_id,
                    "cause_signal",
                    when,
                    sig_source,
                    {weight_param: weight},
                    {"cause": raw["code"], "strength": sig["strength"], "description": description},
                    sig["when"],
                    where=swhere,
                )
                signals.append(
                    Signal(
                        rule=rule,
                        weight=weight,
                        evidence={
                            "signal": rule_id,
                            "strength": sig["strength"],
                            "description": description,
                            "fields": list(when.fields),
                            "source": sig_source,
                        },
                    )
                )
            name = _text(raw["name"], f"{where}.name")
            summary = _text(raw["summary"], f"{where}.summary")
            causes.append(
                Cause(
                    code=raw["code"],
                    name=name,
                    summary=summary,
                    source=source,
                    signals=tuple(signals),
                    order=order,
                    catalogue={
                        "code": raw["code"],
                        "name": name,
                        "summary": summary,
                        "source": source,
                        "signals": [s.evidence for s in signals],
                    },
                )
            )
        return tuple(causes)

    def _load_recommendations(self, catalogue: FieldCatalogue) -> tuple[Recommendation, ...]:
        f = "recommendations.yaml"
        items = []
        for i, raw in enumerate(_list(self.read(f), self.where(f))):
            where = self.where(f, raw.get("code", i) if isinstance(raw, dict) else i)
            _mapping(raw, where, ("code", "category", "text", "source"), ("when",))
            code = _code(raw["code"], f"{where}.code")
            if raw["category"] not in CATEGORIES:
                raise RuleDefinitionError(f"{where}.category", f"must be one of {CATEGORIES}")
            when = (
                self.condition(raw["when"], f"{where}.when", catalogue) if "when" in raw else None
            )
            text, text_params = self.template(raw["text"], f"{where}.text")
            source = self.source(raw["source"], f"{where}.source")
            rule = self.make_rule(
                f"rec.{code}",
                "recommendation",
                when,
                source,
                text_params,
                {"code": code, "category": raw["category"], "text": text},
                raw.get("when"),
                where=where,
            )
            items.append(
                Recommendation(
                    rule,
                    {"code": code, "category": raw["category"], "text": text, "source": source},
                )
            )
        _unique((r.output["code"] for r in items), self.where(f), "recommendation code")
        return tuple(items)

    def _load_exercises(self) -> dict[str, Exercise]:
        f = "exercises.yaml"
        exercises: dict[str, Exercise] = {}
        for i, raw in enumerate(_list(self.read(f), self.where(f))):
            where = self.where(f, raw.get("id", i) if isinstance(raw, dict) else i)
            _mapping(
                raw,
                where,
                ("id", "name", "kind", "source", "steps", "cues", "cautions", "contraindications"),
                ("supported", "equipment"),
            )
            exercise_id = _code(raw["id"], f"{where}.id")
            if exercise_id in exercises:
                raise RuleDefinitionError(where, f"duplicate exercise id {exercise_id!r}")
            if raw["kind"] not in EXERCISE_KINDS:
                raise RuleDefinitionError(f"{where}.kind", f"must be one of {EXERCISE_KINDS}")
            if (raw["kind"] == "stretch") != ("supported" in raw):
                raise RuleDefinitionError(
                    where, "stretches, and only stretches, say whether they are supported"
                )
            texts = {}
            for key in ("steps", "cues", "cautions", "contraindications"):
                items = _text_list(raw[key], f"{where}.{key}")
                for j, item in enumerate(items):
                    if DIGIT.search(item):
                        raise RuleDefinitionError(
                            f"{where}.{key}[{j}]",
                            "a number in an exercise text; doses belong to the prescription",
                        )
                texts[key] = items
            catalogue = {
                "id": exercise_id,
                "name": _text(raw["name"], f"{where}.name"),
                "kind": raw["kind"],
                "supported": raw.get("supported"),
                "equipment": raw.get("equipment"),
                **texts,
                "source": self.source(raw["source"], f"{where}.source"),
            }
            exercises[exercise_id] = Exercise(exercise_id, raw["kind"], catalogue)
        return exercises

    def _dose(self, raw: Any, where: str) -> tuple[dict[str, Any], dict[str, str]]:
        if not isinstance(raw, dict) or not raw:
            raise RuleDefinitionError(where, "a dose maps dose keys to parameter ids")
        values, params = {}, {}
        for key, pid in raw.items():
            if key not in DOSE_KEYS:
                raise RuleDefinitionError(
                    where, f"unknown dose key {key!r} (known: {', '.join(DOSE_KEYS)})"
                )
            if not isinstance(pid, str) or pid not in self.parameters:
                raise RuleDefinitionError(
                    f"{where}.{key}", f"doses name a parameter; unknown parameter {pid!r}"
                )
            values[key] = self.parameters[pid].value
            params[key] = pid
        return values, params

    def _applies_to(
        self, raw: Any, where: str, exercises: Mapping[str, Exercise]
    ) -> frozenset[str]:
        _mapping(raw, where, (), ("phases", "exercises"))
        chosen: set[str] = set()
        for phase in raw.get("phases", []):
            if phase not in PHASES:
                raise RuleDefinitionError(where, f"unknown phase {phase!r}")
            chosen.update(e.id for e in exercises.values() if e.kind == phase)
        for exercise_id in raw.get("exercises", []):
            if exercise_id not in exercises:
                raise RuleDefinitionError(where, f"unknown exercise {exercise_id!r}")
            chosen.add(exercise_id)
        if not chosen:
            raise RuleDefinitionError(where, "applies to no exercise")
        return frozenset(chosen)

    def _load_prescription(
        self, catalogue: FieldCatalogue, exercises: Mapping[str, Exercise]
    ) -> dict:
        f = "prescription.yaml"
        raw = _mapping(
            self.read(f),
            self.where(f),
            (
                "programme",
                "progression",
                "progression_sources",
                "safety",
                "withhold",
                "exclude",
                "adjust",
                "review",
            ),
        )
        programme = []
        for i, item in enumerate(_list(raw["programme"], self.where(f, "programme"))):
            where = self.where(f, "programme", i)
            _mapping(item, where, ("exercise", "phase", "dose"), ("per_side",))
            exercise = exercises.get(item["exercise"])
            if exercise is None:
                raise RuleDefinitionError(where, f"unknown exercise {item['exercise']!r}")
            if item["phase"] != exercise.kind:
                raise RuleDefinitionError(
                    where, f"{exercise.id} is a {exercise.kind} exercise, not {item['phase']}"
                )
            dose, dose_params = self._dose(item["dose"], f"{where}.dose")
            programme.append(
                ProgrammeItem(
                    exercise, item["phase"], dose, dose_params, bool(item.get("per_side", False))
                )
            )
        missing = set(exercises) - {p.exercise.id for p in programme}
        if missing:
            raise RuleDefinitionError(
                self.where(f, "programme"),
                f"exercise(s) never prescribed: {', '.join(sorted(missing))}",
            )
        _unique((p.exercise.id for p in programme), self.where(f, "programme"), "exercise")

        _mapping(raw["progression"], self.where(f, "progression"), PHASES)
        _mapping(raw["progression_sources"], self.where(f, "progression_sources"), PHASES)
        progression = {}
        for phase in PHASES:
            text, used = self.template(
                raw["progression"][phase], self.where(f, "progression", phase)
            )
            progression[phase] = {
                "text": text,
                "parameters": used,
                "source": self.source(
                    raw["progression_sources"][phase], self.where(f, "progression_sources", phase)
                ),
            }
        safety = []
        for i, item in enumerate(_list(raw["safety"], self.where(f, "safety"))):
            where = self.where(f, "safety", i)
            _mapping(item, where, ("text", "source"))
            text, _ = self.template(item["text"], f"{where}.text")
            safety.append({"text": text, "source": self.source(item["source"], f"{where}.source")})

        def plan_rules(kind: str, needs_targets: bool) -> tuple[PlanRule, ...]:
            rules = []
            for i, item in enumerate(_list(raw[kind], self.where(f, kind))):
                where = self.where(f, kind, item.get("id", i) if isinstance(item, dict) else i)
                required = ["id", "when", "source"]
                optional: list[str] = []
                if needs_targets:
                    required.append("applies_to")
                if kind == "adjust":
                    required.append("note")
                    optional += ["intensity", "dose"]
                else:
                    required.append("reason")
                _mapping(item, where, required, optional)
                rule_id = _rule_id(item["id"], where)
                if not rule_id.startswith(f"plan.{kind}."):
                    raise RuleDefinitionError(where, f"ids in '{kind}' start with 'plan.{kind}.'")
                when = self.condition(item["when"], f"{where}.when", catalogue)
                source = self.source(item["source"], f"{where}.source")
                targets = (
                    self._applies_to(item["applies_to"], f"{where}.applies_to", exercises)
                    if needs_targets
                    else frozenset()
                )
                text, used = self.template(item["note" if kind == "adjust" else "reason"], where)
                dose, dose_params = (
                    self._dose(item["dose"], f"{where}.dose") if "dose" in item else ({}, {})
                )
                used.update({pid: self.parameters[pid].value for pid in dose_params.values()})
                intensity = item.get("intensity")
                if intensity is not None and intensity not in INTENSITIES:
                    raise RuleDefinitionError(f"{where}.intensity", f"must be one of {INTENSITIES}")
                if kind == "adjust" and intensity is None and not dose:
                    raise RuleDefinitionError(
                        where, "an adjustment changes the intensity or the dose"
                    )
                definition = {
                    "applies_to": sorted(targets) if needs_targets else None,
                    "reason" if kind != "adjust" else "note": text,
                    "intensity": intensity,
                    "dose": dose_params or None,
                }
                rule = self.make_rule(
                    rule_id,
                    f"plan_{kind}",
                    when,
                    source,
                    used,
                    {k: v for k, v in definition.items() if v is not None},
                    item["when"],
                    where=where,
                )
                rules.append(
                    PlanRule(
                        rule=rule,
                        kind=kind,
                        exercises=targets,
                        reason={"rule_id": rule_id, "reason": text, "source": source},
                        intensity=intensity,
                        note=text if kind == "adjust" else None,
                        dose=dose,
                        dose_parameters=dose_params,
                    )
                )
            return tuple(rules)

        return {
            "programme": tuple(programme),
            "progression": progression,
            "safety": tuple(safety),
            "withhold": plan_rules("withhold", needs_targets=False),
            "exclude": plan_rules("exclude", needs_targets=True),
            "adjust": plan_rules("adjust", needs_targets=True),
            "review": plan_rules("review", needs_targets=False),
        }


def _format_number(value: int | float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def load_ruleset(
    directory: Path, report_sections: Mapping[str, Mapping[str, Any]] | None = None
) -> RuleSet:
    """Load and check one rule-set folder."""
    sections = report_sections if report_sections is not None else load_report_fields()
    return _VersionLoader(directory, sections).load()


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
        if not SEMVER.match(folder.name):
            raise RuleDefinitionError(
                f"rules/versions/{folder.name}", "folder name is not a SemVer version"
            )
    if not folders:
        raise RuleDefinitionError("rules/versions", "no rule set found")
    return sorted(folders, key=lambda p: version_key(p.name))
