"""causes.yaml: the possible causes, each with the signals that point to it. Signals read the
report alone; each weighs as strong or supporting evidence."""

from __future__ import annotations

from typing import Any

from rules.conditions import FieldCatalogue
from rules.loading.context import VersionContext
from rules.loading.folder import RuleFolder
from rules.loading.structure import TEXT, Anything, At, Choice, ListOf, Record, check_unique
from rules.loading.vocabulary import CITATION, CODE, CONDITION, RULE_ID, STRENGTHS
from rules.model import Cause, Signal

FILE = "causes.yaml"

SIGNAL = Record(
    {"id": RULE_ID, "strength": Choice(STRENGTHS), "description": TEXT, "when": CONDITION},
    # Without one, a signal rests on its cause's source.
    {"source": CITATION},
)
CAUSE = Record(
    {
        "code": CODE,
        "name": TEXT,
        "summary": TEXT,
        "source": CITATION,
        "signals": ListOf(SIGNAL, named_by="id"),
    }
)
CAUSES = ListOf(CAUSE, named_by="code")
WEIGHT_PARAMETERS = {"strong": "signal_weight_strong", "supporting": "signal_weight_supporting"}


def cause_codes(folder: RuleFolder) -> list[str]:
    """The cause codes alone, read first: the rules of later steps may name them."""
    codes = []
    for at, cause in ListOf(Anything("below")).items(folder.read(FILE), folder.at(FILE)):
        if not isinstance(cause, dict) or "code" not in cause:
            raise at.error("missing key(s): code")
        codes.append(CODE.check(cause["code"], at / "code"))
    check_unique(codes, folder.at(FILE), "cause code")
    return codes


def load_causes(ctx: VersionContext, catalogue: FieldCatalogue) -> tuple[Cause, ...]:
    causes = []
    for order, (at, cause) in enumerate(CAUSES.items(ctx.folder.read(FILE), ctx.folder.at(FILE))):
        source = ctx.cite(cause["source"], at / "source")
        signals = tuple(
            _signal(ctx, signal_at, signal, cause["code"], source, catalogue)
            for signal_at, signal in cause["signals"]
        )
        causes.append(
            Cause(
                code=cause["code"],
                name=cause["name"],
                summary=cause["summary"],
                source=source,
                signals=signals,
                order=order,
                catalogue={
                    "code": cause["code"],
                    "name": cause["name"],
                    "summary": cause["summary"],
                    "source": source,
                    "signals": [s.evidence for s in signals],
                },
            )
        )
    return tuple(causes)


def _signal(
    ctx: VersionContext,
    at: At,
    signal: dict[str, Any],
    cause: str,
    cause_source: dict[str, Any],
    catalogue: FieldCatalogue,
) -> Signal:
    rule_id, strength, description = signal["id"], signal["strength"], signal["description"]
    if not rule_id.startswith(f"sig.{cause}."):
        raise at.error(f"signal ids of this cause start with 'sig.{cause}.'")
    when = ctx.condition(signal["when"], at / "when", catalogue)
    source = ctx.cite(signal["source"], at / "source") if "source" in signal else cause_source
    weight_parameter = WEIGHT_PARAMETERS[strength]
    weight = ctx.parameters[weight_parameter].value
    rule = ctx.rule(
        at,
        rule_id,
        "cause_signal",
        when=when,
        raw_when=signal["when"],
        source=source,
        parameters={weight_parameter: weight},
        definition={"cause": cause, "strength": strength, "description": description},
    )
    evidence = {
        "signal": rule_id,
        "strength": strength,
        "description": description,
        "fields": list(when.fields),
        "source": source,
    }
    return Signal(rule=rule, weight=weight, evidence=evidence)
