"""time_frames.yaml (rules 2.0.0 on): how soon each red flag needs care, most pressing first."""

from __future__ import annotations

from rules.loading.context import VersionContext
from rules.loading.structure import TEXT, Choices, ListOf, Record
from rules.loading.vocabulary import CITATION, CODE
from rules.model import LEVELS, TimeFrame

FILE = "time_frames.yaml"

TIME_FRAME = Record(
    {
        "id": CODE,
        "levels": Choices(LEVELS[1:], "levels"),
        "when": TEXT,
        "text": TEXT,
        "source": CITATION,
    }
)
TIME_FRAMES = ListOf(TIME_FRAME, named_by="id")


def load_time_frames(ctx: VersionContext) -> dict[str, TimeFrame]:
    """The time frames by id, in file order; none for a version without the file."""
    raw = ctx.folder.read_optional(FILE)
    if raw is None:
        return {}
    frames: dict[str, TimeFrame] = {}
    for rank, (at, item) in enumerate(TIME_FRAMES.items(raw, ctx.folder.at(FILE))):
        frame_id = item["id"]
        if frame_id in frames:
            raise at.error(f"duplicate time frame {frame_id!r}")
        when, when_used = ctx.text(item["when"], at / "when")
        text, used = ctx.text(item["text"], at / "text")
        source = ctx.cite(item["source"], at / "source")
        frames[frame_id] = TimeFrame(
            frame_id,
            rank,
            tuple(item["levels"]),
            {"code": frame_id, "when": when, "text": text, "source": source},
            {**when_used, **used},
        )
    return frames
