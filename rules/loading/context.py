"""What every rule file of one version is checked against: the version's folder, the documents
it may cite, its parameters, and the rule ids already taken (unique across all its files)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.conditions import Condition, FieldCatalogue, compile_condition
from rules.loading.citations import Citations
from rules.loading.folder import RuleFolder
from rules.loading.parameters import fill_template
from rules.loading.structure import At
from rules.model import Parameter, Rule


class VersionContext:
    def __init__(
        self, folder: RuleFolder, citations: Citations, parameters: Mapping[str, Parameter]
    ) -> None:
        self.folder = folder
        self.citations = citations
        self.header = citations.header
        self.parameters = parameters
        self.parameter_values = {pid: p.value for pid, p in parameters.items()}
        self._first_use_of_rule_id: dict[str, str] = {}

    @property
    def version(self) -> str:
        return self.header.version

    def cite(self, raw: Any, at: At) -> dict[str, Any]:
        return self.citations.cite(raw, at)

    def text(self, raw: Any, at: At) -> tuple[str, dict[str, Any]]:
        """A text with its parameters filled in, and the parameters it used."""
        return fill_template(raw, at, self.parameters)

    def condition(self, raw: Any, at: At, catalogue: FieldCatalogue) -> Condition:
        return compile_condition(raw, catalogue, self.parameter_values, str(at))

    def rule(
        self,
        at: At,
        rule_id: str,
        kind: str,
        *,
        when: Condition | None,
        raw_when: Any,
        source: dict[str, Any],
        parameters: Mapping[str, Any] = (),
        definition: Mapping[str, Any] = (),
    ) -> Rule:
        """A rule, with the parameters its condition and texts use, and its definition as
        served by GET /v1/rules/{version}."""
        used = {pid: self.parameter_values[pid] for pid in (when.params if when else ())}
        used.update(parameters)
        self._take_rule_id(rule_id, at)
        public = {"id": rule_id, "kind": kind, **dict(definition)}
        if raw_when is not None:
            public["when"] = raw_when
        public["parameters"] = used
        public["source"] = source
        return Rule(
            id=rule_id,
            kind=kind,
            when=when,
            source=source,
            parameters=used,
            trace={"rule_id": rule_id, "kind": kind, "parameters": used},
            definition=public,
        )

    def _take_rule_id(self, rule_id: str, at: At) -> None:
        first = self._first_use_of_rule_id.get(rule_id)
        if first is not None:
            raise at.error(f"duplicate rule id {rule_id!r} (first at {first})")
        self._first_use_of_rule_id[rule_id] = str(at)
