"""exercises.yaml: the exercises a plan may hold, described in words only. Their doses belong
to the prescription, which names parameters."""

from __future__ import annotations

from rules.loading.context import VersionContext
from rules.loading.parameters import DIGIT
from rules.loading.structure import TEXT, Anything, Choice, ListOf, Record, Texts
from rules.loading.vocabulary import CITATION, CODE, EXERCISE_KINDS
from rules.model import Exercise

FILE = "exercises.yaml"

TEXT_LISTS = ("steps", "cues", "cautions", "contraindications")
EXERCISE = Record(
    {
        "id": CODE,
        "name": TEXT,
        "kind": Choice(EXERCISE_KINDS),
        "source": CITATION,
        **{key: Texts() for key in TEXT_LISTS},
    },
    {"supported": Anything("shown as written"), "equipment": Anything("shown as written")},
)
EXERCISES = ListOf(EXERCISE, named_by="id")


def load_exercises(ctx: VersionContext) -> dict[str, Exercise]:
    exercises: dict[str, Exercise] = {}
    for at, item in EXERCISES.items(ctx.folder.read(FILE), ctx.folder.at(FILE)):
        exercise_id = item["id"]
        if exercise_id in exercises:
            raise at.error(f"duplicate exercise id {exercise_id!r}")
        if (item["kind"] == "stretch") != ("supported" in item):
            raise at.error("stretches, and only stretches, say whether they are supported")
        for key in TEXT_LISTS:
            for position, text in enumerate(item[key]):
                if DIGIT.search(text):
                    raise (
                        (at / key)
                        .index(position)
                        .error("a number in an exercise text; doses belong to the prescription")
                    )
        catalogue = {
            "id": exercise_id,
            "name": item["name"],
            "kind": item["kind"],
            "supported": item.get("supported"),
            "equipment": item.get("equipment"),
            **{key: item[key] for key in TEXT_LISTS},
            "source": ctx.cite(item["source"], at / "source"),
        }
        exercises[exercise_id] = Exercise(exercise_id, item["kind"], catalogue)
    return exercises
