"""red_flags.yaml: the answers that need care, each with its level (and, from rules 2.0.0 on,
how soon). They read the report alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.conditions import FieldCatalogue
from rules.loading.context import VersionContext
from rules.loading.structure import TEXT, Anything, At, Choice, ListOf, Record, check_unique
from rules.loading.vocabulary import CITATION, CODE, CONDITION, RULE_ID
from rules.model import LEVEL_RANK, LEVELS, RedFlag, TimeFrame

FILE = "red_flags.yaml"

RED_FLAG = Record(
    {
        "id": RULE_ID,
        "code": CODE,
        "level": Choice(LEVELS[1:]),
        "when": CONDITION,
        "message": TEXT,
        "rationale": TEXT,
        "source": CITATION,
    }
)
# Optional in the form: a flag without one is refused below, naming the time frames to choose.
RED_FLAG_WITH_TIME_FRAME = RED_FLAG.with_keys(
    optional={"time_frame": Anything("against time_frames.yaml")}
)


def load_red_flags(
    ctx: VersionContext, catalogue: FieldCatalogue, time_frames: Mapping[str, TimeFrame]
) -> tuple[RedFlag, ...]:
    shape = ListOf(RED_FLAG_WITH_TIME_FRAME if time_frames else RED_FLAG, named_by="id")
    flags = [
        _red_flag(ctx, at, flag, catalogue, time_frames)
        for at, flag in shape.items(ctx.folder.read(FILE), ctx.folder.at(FILE))
    ]
    check_unique((flag.code for flag in flags), ctx.folder.at(FILE), "red flag code")
    return tuple(flags)


def _red_flag(
    ctx: VersionContext,
    at: At,
    flag: dict[str, Any],
    catalogue: FieldCatalogue,
    time_frames: Mapping[str, TimeFrame],
) -> RedFlag:
    rule_id, code, level = flag["id"], flag["code"], flag["level"]
    time_frame = _time_frame(flag, at, time_frames)
    when = ctx.condition(flag["when"], at / "when", catalogue)
    message, text_params = ctx.text(flag["message"], at / "message")
    source = ctx.cite(flag["source"], at / "source")
    output = {"code": code, "level": level}
    if time_frame is not None:
        output["time_frame"] = time_frame.id
        text_params = {**text_params, **time_frame.parameters}
    rule = ctx.rule(
        at,
        rule_id,
        "red_flag",
        when=when,
        raw_when=flag["when"],
        source=source,
        parameters=text_params,
        definition={**output, "message": message, "rationale": flag["rationale"]},
    )
    return RedFlag(
        rule=rule,
        code=code,
        level=level,
        rank=LEVEL_RANK[level],
        output={**output, "message": message, "source": source, "rule_id": rule_id},
        rationale=flag["rationale"],
        time_frame=time_frame,
    )


def _time_frame(
    flag: Mapping[str, Any], at: At, time_frames: Mapping[str, TimeFrame]
) -> TimeFrame | None:
    if not time_frames:
        return None
    name = flag.get("time_frame")
    frame = time_frames.get(name) if isinstance(name, str) else None
    if frame is None:
        raise (at / "time_frame").error(
            f"every red flag names a time frame from time_frames.yaml "
            f"({', '.join(time_frames)}), got {name!r}"
        )
    if flag["level"] not in frame.levels:
        raise (at / "time_frame").error(
            f"time frame {frame.id!r} is for levels {list(frame.levels)}, not {flag['level']!r}"
        )
    return frame
