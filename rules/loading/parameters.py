"""parameters.yaml: every number the rules use, with its unit, rationale and source; and the
texts that name them. A number never stands in a text or a condition by itself, so that every
threshold and dose is traceable and versioned."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rules.loading.citations import Citations
from rules.loading.folder import RuleFolder
from rules.loading.structure import TEXT, Amount, At, MappingOf, Record
from rules.loading.vocabulary import CITATION, CODE
from rules.model import Parameter

FILE = "parameters.yaml"

PARAMETER = Record(
    {"value": Amount(), "unit": TEXT, "description": TEXT, "rationale": TEXT, "source": CITATION}
)
PARAMETERS = MappingOf(CODE, PARAMETER, "parameters")

PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)\}")
DIGIT = re.compile(r"\d")


def load_parameters(folder: RuleFolder, citations: Citations) -> dict[str, Parameter]:
    at = folder.at(FILE)
    return {
        pid: Parameter(
            id=pid,
            value=spec["value"],
            unit=spec["unit"],
            description=spec["description"],
            rationale=spec["rationale"],
            source=citations.cite(spec["source"], at / pid / "source"),
        )
        for pid, spec in PARAMETERS.check(folder.read(FILE), at).items()
    }


def fill_template(
    raw: Any, at: At, parameters: Mapping[str, Parameter]
) -> tuple[str, dict[str, Any]]:
    """The text with its {parameter} placeholders filled, and the parameters it used.

    A digit outside a placeholder is refused: numbers in advice must come from parameters."""
    text = TEXT.check(raw, at)
    used: dict[str, Any] = {}

    def fill(match: re.Match) -> str:
        param_id = match.group(1)
        if param_id not in parameters:
            raise at.error(f"unknown parameter {param_id!r} in text")
        used[param_id] = parameters[param_id].value
        return _format_number(parameters[param_id].value)

    if DIGIT.search(PLACEHOLDER.sub("", text)):
        raise at.error("a number is written into the text; name a parameter in braces instead")
    return PLACEHOLDER.sub(fill, text), used


def _format_number(value: int | float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
