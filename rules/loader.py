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
    PLAN_STATUSES,
    Cause,
    Contradiction,
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
    TimeFrame,
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
# From this version on, citations say what they cite: a quote of the article, or the
# recommendation of a guideline.
CITATIONS_NAMED_FROM = (2, 0, 0)
# Files a rule set may have from 2.0.0 on; older versions, which never change, have none.
OPTIONAL_RULE_FILES = ("time_frames.yaml", "contradictions.yaml", "presuppositions.yaml")
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
                (
                    "values",
                    "minimum",
                    "maximum",
                    "required",
                    "example",
                    "earlier_question",
                    "not_asked_from",
                    "replaced_by",
                ),
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
            if "earlier_question" in spec:
                earlier = _mapping(
                    spec["earlier_question"],
                    f"{fwhere}.earlier_question",
                    ("before", "question"),
                    ("why",),
                )
                _version(earlier["before"], f"{fwhere}.earlier_question.before")
                for key in ("question", "why"):
                    if key in earlier:
                        _text(earlier[key], f"{fwhere}.earlier_question.{key}")
            if "not_asked_from" in spec:
                _version(spec["not_asked_from"], f"{fwhere}.not_asked_from")
            if ("replaced_by" in spec) != ("not_asked_from" in spec):
                raise RuleDefinitionError(
                    fwhere,
                    "a field not asked any more says what replaced it, and only such a field",
                )
            if "replaced_by" in spec:
                _check_replaced_by(spec["replaced_by"], kind, f"{fwhere}.replaced_by")
            fields[name] = dict(spec)
        sections[section_name] = {"description": section["description"], "fields": fields}
    _check_replacements(sections, where)
    return sections


def _check_replaced_by(raw: Any, kind: str, where: str) -> None:
    replaced = _mapping(raw, where, ("field", "opposite"))
    if not isinstance(replaced["opposite"], bool) or (replaced["opposite"] and kind != "boolean"):
        raise RuleDefinitionError(f"{where}.opposite", "true or false; true only for yes/no")


def _check_replacements(sections: Mapping[str, Mapping[str, Any]], where: str) -> None:
    kinds = {
        f"{section}.{name}": spec["kind"]
        for section, body in sections.items()
        for name, spec in body["fields"].items()
    }
    for section, body in sections.items():
        for name, spec in body["fields"].items():
            new = spec.get("replaced_by", {}).get("field")
            if new is not None and kinds.get(new) != spec["kind"]:
                raise RuleDefinitionError(
                    f"{where}: {section}.{name}.replaced_by",
                    f"{new!r} is not a {spec['kind']} field",
                )


def _version(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not SEMVER.match(raw):
        raise RuleDefinitionError(where, f"not a SemVer version: {raw!r}")
    return raw


def questions_for(sections: Mapping[str, Mapping[str, Any]], version: str) -> dict[str, Question]:
    """The questions a rules version asks, in the wording it was released with: a field
    reworded later keeps its earlier question for older versions, and a field replaced by a
    clearer one is not asked from the version that replaced it."""
    key = version_key(version)
    questions = {}
    for section, body in sections.items():
        for name, spec in body["fields"].items():
            if "not_asked_from" in spec and key >= version_key(spec["not_asked_from"]):
                continue
            text, why = spec["question"], spec["why"]
            earlier = spec.get("earlier_question")
            if earlier and key < version_key(earlier["before"]):
                text, why = earlier["question"], earlier.get("why", why)
            path = f"{section}.{name}"
            questions[path] = Question(path, " ".join(text.split()), " ".join(why.split()))
    return questions


def replacements_for(
    sections: Mapping[str, Mapping[str, Any]], version: str
) -> tuple[tuple[str, str, bool], ...]:
    """(old field, new field, opposite) for the fields a rules version no longer asks: an old
    answer is read as the new field's when the new one is not given."""
    key = version_key(version)
    found = []
    for section, body in sections.items():
        for name, spec in body["fields"].items():
            if "not_asked_from" in spec and key >= version_key(spec["not_asked_from"]):
                replaced = spec["replaced_by"]
                found.append((f"{section}.{name}", replaced["field"], replaced["opposite"]))
    return tuple(found)


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
        if not isinstance(raw, dict) or len(raw) not in (1, 2, 3):
            raise RuleDefinitionError(
                where,
                f"a source is {{article, paragraph}}, {{guideline}} or {{method}}, got {raw!r}",
            )
        quoted = version_key(self.version) >= CITATIONS_NAMED_FROM
        if "article" in raw:
            # From 2.0.0 on an article citation quotes the words it relies on (checked against
            # the article by the tests), and a guideline citation names its recommendation.
            _mapping(raw, where, ("article", "paragraph", *(("quote",) if quoted else ())))
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
            cited = {"document": "article", "section": section["heading"], "paragraph": paragraph}
            if quoted:
                cited["quote"] = _text(raw["quote"], f"{where}.quote")
            return cited
        if "guideline" in raw:
            _mapping(raw, where, ("guideline", *(("recommendation",) if quoted else ())))
            guideline = self.guidelines.get(raw["guideline"])
            if guideline is None:
                raise RuleDefinitionError(where, f"unknown guideline {raw['guideline']!r}")
            self.cited_guidelines.add(raw["guideline"])
            cited = {"document": guideline["name"], "url": guideline["url"]}
            if quoted:
                cited["recommendation"] = _text(raw["recommendation"], f"{where}.recommendation")
            return cited
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
                # False while a stop rule is undecided (an answer that could stop is missing).
                "assessment.stop_decided": {"kind": "boolean", "values": None},
            }
        )
        # Advice is decided last and may read the exercise plan.
        after_plan = FieldCatalogue(
            {
                **after_stop.fields,
                "assessment.has_plan": {"kind": "boolean", "values": None},
                "assessment.plan_status": {"kind": "choice", "values": list(PLAN_STATUSES)},
            }
        )

        self.time_frames = self._load_time_frames()
        red_flags = self._load_red_flags(report_only)
        causes = self._load_causes(report_only)
        contradictions = self._load_contradictions(report_only)
        flag_codes = [flag.code for flag in red_flags]
        derived = {
            "assessment.red_flags": {"kind": "list", "values": flag_codes},
            "assessment.open_red_flags": {"kind": "list", "values": flag_codes},
            "assessment.time_frame": {"kind": "choice", "values": list(self.time_frames)},
        }
        for catalogue in (after_triage, after_stop, after_plan):
            catalogue.fields.update(derived)
        exercises = self._load_exercises()
        after_plan.fields["assessment.plan_exercises"] = {"kind": "list", "values": list(exercises)}
        stop_rules = self._load_stop_rules(after_triage)
        presuppositions = self._load_presuppositions(after_plan)
        recommendations = self._load_recommendations(after_plan, presuppositions)
        plan = self._load_prescription(after_stop, exercises)
        questions = questions_for(self.report_sections, self.version)
        replacements = replacements_for(self.report_sections, self.version)
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
            replacements=replacements,
            time_frames=tuple(self.time_frames.values()),
            contradictions=contradictions,
            presuppositions=presuppositions,
            documents=documents,
            digest=self._digest(),
            document=self._document(
                red_flags, stop_rules, causes, recommendations, exercises, plan, documents
            )
            | self._later_document(contradictions, presuppositions),
            cited_paragraphs=frozenset(self.cited_paragraphs),
        )

    def _later_document(self, contradictions, presuppositions) -> dict[str, Any]:
        """What only rules 2.0.0 and later have, served only when present, so that an older
        version's document stays as it was released."""
        later = {
            "time_frames": [frame.output for frame in self.time_frames.values()],
            "contradictions": [c.rule.definition for c in contradictions],
            "presuppositions": [{"name": name, **p} for name, p in presuppositions.items()],
        }
        return {key: value for key, value in later.items() if value}

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
        for name in RULE_FILES + OPTIONAL_RULE_FILES:
            path = self.directory / name
            if name in RULE_FILES or path.exists():
                digest.update(name.encode())
                digest.update(path.read_bytes())
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
            _mapping(
                raw,
                where,
                ("id", "code", "level", "when", "message", "rationale", "source"),
                ("time_frame",) if self.time_frames else (),
            )
            rule_id = _rule_id(raw["id"], where)
            if raw["level"] not in LEVELS or raw["level"] == "self_care":
                raise RuleDefinitionError(
                    f"{where}.level", f"must be one of {LEVELS[1:]}, got {raw['level']!r}"
                )
            time_frame = self._time_frame_of(raw, where)
            when = self.condition(raw["when"], f"{where}.when", catalogue)
            message, text_params = self.template(raw["message"], f"{where}.message")
            source = self.source(raw["source"], f"{where}.source")
            code = _code(raw["code"], f"{where}.code")
            rationale = _text(raw["rationale"], f"{where}.rationale")
            definition = {"code": code, "level": raw["level"]}
            output = {"code": code, "level": raw["level"]}
            if time_frame is not None:
                definition["time_frame"] = output["time_frame"] = time_frame.id
                text_params = {**text_params, **time_frame.parameters}
            rule = self.make_rule(
                rule_id,
                "red_flag",
                when,
                source,
                text_params,
                {**definition, "message": message, "rationale": rationale},
                raw["when"],
                where=where,
            )
            flags.append(
                RedFlag(
                    rule=rule,
                    code=code,
                    level=raw["level"],
                    rank=LEVEL_RANK[raw["level"]],
                    output={**output, "message": message, "source": source, "rule_id": rule_id},
                    rationale=rationale,
                    time_frame=time_frame,
                )
            )
        _unique((flag.code for flag in flags), self.where(f), "red flag code")
        return tuple(flags)

    def read_optional(self, filename: str) -> Any:
        return self.read(filename) if (self.directory / filename).exists() else None

    def _load_time_frames(self) -> dict[str, TimeFrame]:
        f = "time_frames.yaml"
        raw = self.read_optional(f)
        if raw is None:
            return {}
        frames: dict[str, TimeFrame] = {}
        for rank, item in enumerate(_list(raw, self.where(f))):
            where = self.where(f, item.get("id", rank) if isinstance(item, dict) else rank)
            _mapping(item, where, ("id", "levels", "when", "text", "source"))
            frame_id = _code(item["id"], f"{where}.id")
            if frame_id in frames:
                raise RuleDefinitionError(where, f"duplicate time frame {frame_id!r}")
            levels = item["levels"]
            if (
                not isinstance(levels, list)
                or not levels
                or not set(levels) <= set(LEVELS[1:])
                or len(set(levels)) != len(levels)
            ):
                raise RuleDefinitionError(f"{where}.levels", f"a list of levels from {LEVELS[1:]}")
            when, when_used = self.template(item["when"], f"{where}.when")
            text, used = self.template(item["text"], f"{where}.text")
            source = self.source(item["source"], f"{where}.source")
            frames[frame_id] = TimeFrame(
                frame_id,
                rank,
                tuple(levels),
                {"code": frame_id, "when": when, "text": text, "source": source},
                {**when_used, **used},
            )
        if not frames:
            raise RuleDefinitionError(self.where(f), "no time frame defined")
        return frames

    def _time_frame_of(self, raw: Mapping[str, Any], where: str) -> TimeFrame | None:
        if not self.time_frames:
            return None
        frame = self.time_frames.get(raw.get("time_frame"))
        if frame is None:
            raise RuleDefinitionError(
                f"{where}.time_frame",
                f"every red flag names a time frame from time_frames.yaml "
                f"({', '.join(self.time_frames)}), got {raw.get('time_frame')!r}",
            )
        if raw["level"] not in frame.levels:
            raise RuleDefinitionError(
                f"{where}.time_frame",
                f"time frame {frame.id!r} is for levels {list(frame.levels)}, not {raw['level']!r}",
            )
        return frame

    def _load_contradictions(self, catalogue: FieldCatalogue) -> tuple[Contradiction, ...]:
        f = "contradictions.yaml"
        raw = self.read_optional(f)
        if raw is None:
            return ()
        found = []
        for i, item in enumerate(_list(raw, self.where(f))):
            where = self.where(f, item.get("id", i) if isinstance(item, dict) else i)
            _mapping(
                item, where, ("id", "when", "confirm", "question", "why", "source"), ("read_as",)
            )
            rule_id = _rule_id(item["id"], where)
            if not rule_id.startswith("contradiction."):
                raise RuleDefinitionError(
                    where, "ids in contradictions start with 'contradiction.'"
                )
            when = self.condition(item["when"], f"{where}.when", catalogue)
            confirm = _text_list(item["confirm"], f"{where}.confirm")
            for path in confirm:
                catalogue.check(path, ("boolean", "integer", "choice", "list"), f"{where}.confirm")
            if not set(when.fields) & set(confirm):
                raise RuleDefinitionError(
                    f"{where}.confirm", "asks to confirm none of the answers that contradict"
                )
            # Without read_as, the rules already act on the worrying answer of the pair.
            read_as = (
                self._read_as(item["read_as"], f"{where}.read_as", catalogue, when)
                if "read_as" in item
                else ()
            )
            question, used = self.template(item["question"], f"{where}.question")
            why, why_used = self.template(item["why"], f"{where}.why")
            source = self.source(item["source"], f"{where}.source")
            rule = self.make_rule(
                rule_id,
                "contradiction",
                when,
                source,
                {**used, **why_used},
                {
                    "read_as": item.get("read_as"),
                    "confirm": confirm,
                    "question": question,
                    "why": why,
                },
                item["when"],
                where=where,
            )
            found.append(Contradiction(rule, tuple(confirm), question, why, read_as))
        return tuple(found)

    @staticmethod
    def _read_as(
        raw: Any, where: str, catalogue: FieldCatalogue, when: Condition
    ) -> tuple[tuple[str, str, Any], ...]:
        """The safer reading: (field, "value", literal) or (field, "field", other field)."""
        if not isinstance(raw, dict) or not raw:
            raise RuleDefinitionError(where, "map each field to its safer reading")
        readings = []
        for path, reading in raw.items():
            spec = catalogue.fields.get(path)
            if spec is None:
                raise RuleDefinitionError(where, f"unknown field {path!r}")
            if path not in when.fields:
                raise RuleDefinitionError(
                    where, f"{path!r} is not one of the contradicting answers"
                )
            if isinstance(reading, dict):
                _mapping(reading, f"{where}.{path}", ("field",))
                other = catalogue.fields.get(reading["field"])
                if other is None or other["kind"] != spec["kind"]:
                    raise RuleDefinitionError(
                        f"{where}.{path}", f"{reading['field']!r} is not a {spec['kind']} field"
                    )
                readings.append((path, "field", reading["field"]))
            elif spec["kind"] == "boolean" and isinstance(reading, bool):
                readings.append((path, "value", reading))
            else:
                raise RuleDefinitionError(
                    f"{where}.{path}", "a safer reading is true/false or {field: other field}"
                )
        return tuple(readings)

    def _load_presuppositions(self, catalogue: FieldCatalogue) -> dict[str, dict[str, Any]]:
        f = "presuppositions.yaml"
        raw = self.read_optional(f)
        if raw is None:
            return {}
        if not isinstance(raw, dict) or not raw:
            raise RuleDefinitionError(self.where(f), "expected a mapping of presuppositions")
        loaded = {}
        for name, item in raw.items():
            where = self.where(f, name)
            _code(name, where)
            _mapping(item, where, ("description", "when", "source"))
            _text(item["description"], f"{where}.description")
            self.condition(item["when"], f"{where}.when", catalogue)
            source = self.source(item["source"], f"{where}.source")
            loaded[name] = {**item, "source": source}
        return loaded

    def _check_presupposed(
        self, raw: Mapping[str, Any], presuppositions: Mapping[str, Any], where: str
    ) -> list[str]:
        """An advice item's condition must include what its text presupposes, as the whole
        condition or as one of its top-level "all" parts: then it can only be given when
        every presupposition holds."""
        if not presuppositions:
            return []
        named = raw.get("presupposes")
        if not isinstance(named, list) or not all(isinstance(n, str) for n in named):
            raise RuleDefinitionError(
                f"{where}.presupposes", "list what the text presupposes (an empty list for nothing)"
            )
        when = raw.get("when")
        parts = when["all"] if isinstance(when, dict) and set(when) == {"all"} else [when]
        for name in named:
            presupposition = presuppositions.get(name)
            if presupposition is None:
                raise RuleDefinitionError(
                    f"{where}.presupposes", f"unknown presupposition {name!r}"
                )
            if presupposition["when"] not in parts:
                raise RuleDefinitionError(
                    f"{where}.when",
                    f"presupposes {name!r}, but its condition does not include that "
                    "presupposition's condition as one of its 'all' parts, so the advice could "
                    "be given when it is false",
                )
        return named

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

    def _load_recommendations(
        self, catalogue: FieldCatalogue, presuppositions: Mapping[str, Any]
    ) -> tuple[Recommendation, ...]:
        f = "recommendations.yaml"
        items = []
        for i, raw in enumerate(_list(self.read(f), self.where(f))):
            where = self.where(f, raw.get("code", i) if isinstance(raw, dict) else i)
            _mapping(
                raw,
                where,
                (
                    "code",
                    "category",
                    "text",
                    "source",
                    *(("presupposes",) if presuppositions else ()),
                ),
                ("when",),
            )
            presupposed = self._check_presupposed(raw, presuppositions, where)
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
                {
                    "code": code,
                    "category": raw["category"],
                    "text": text,
                    **({"presupposes": presupposed} if presuppositions else {}),
                },
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
                if kind == "review":
                    optional.append("status")
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
                status = item.get("status", PLAN_STATUSES[1] if kind == "review" else None)
                if kind == "review" and status not in PLAN_STATUSES[1:]:
                    raise RuleDefinitionError(
                        f"{where}.status", f"must be one of {PLAN_STATUSES[1:]}, got {status!r}"
                    )
                if kind == "adjust" and intensity is None and not dose:
                    raise RuleDefinitionError(
                        where, "an adjustment changes the intensity or the dose"
                    )
                definition = {
                    "applies_to": sorted(targets) if needs_targets else None,
                    "reason" if kind != "adjust" else "note": text,
                    "intensity": intensity,
                    "dose": dose_params or None,
                    "status": item.get("status"),
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
                        status=status,
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
