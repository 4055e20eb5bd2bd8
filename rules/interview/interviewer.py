"""The interviewer: the next question about a report so far, or the decision to stop."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rules.cause_ranking import CauseRanking
from rules.conditions import NotTrue
from rules.errors import RulesError
from rules.interview.answer_changes import AnswerChanges
from rules.interview.questions import QuestionBuilder
from rules.loading import Checklist
from rules.model import LEVELS, RedFlag, RuleSet
from rules.screening import Screen, Screener, screen_answer

JSON = dict[str, Any]
Report = Mapping[str, Any]

EMERGENCY = LEVELS[-1]
EMERGENCY_FOUND = "emergency_found"
TRIAGE_COMPLETE = "triage_complete_and_nothing_left_that_changes_the_answer"
NOTHING_LEFT_TO_ASK = "nothing_left_to_ask"
STOP_REASONS = (EMERGENCY_FOUND, TRIAGE_COMPLETE, NOTHING_LEFT_TO_ASK)


class UnknownReportFields(RulesError):
    """Declined fields that the report vocabulary does not have."""

    def __init__(self, paths: list[str]):
        self.paths = paths
        super().__init__(f"not report fields: {', '.join(paths)}")


class Interviewer:
    """Interviews about reports against one loaded rule set."""

    def __init__(
        self,
        ruleset: RuleSet,
        sections: Mapping[str, Mapping[str, Any]],
        checklists: Sequence[Checklist],
    ) -> None:
        self.ruleset = ruleset
        causes = CauseRanking(ruleset)
        self._screener = Screener(ruleset, causes)
        self._questions = ruleset.questions
        specs = {
            f"{section}.{name}": spec
            for section, body in sections.items()
            for name, spec in body["fields"].items()
        }
        self.specs = specs  # each report field's spec, by path
        self._vocabulary = frozenset(specs)
        self._builder = QuestionBuilder(self._questions, specs, checklists)
        self._answer_changes = AnswerChanges(ruleset, self._screener, causes)
        self._flags = tuple(sorted(ruleset.red_flags, key=lambda f: -f.rank))
        self._level_of = {flag.rule.id: flag.level for flag in self._flags}
        self._red_flag_fields = frozenset(
            path for flag in self._flags for path in flag.rule.when.fields
        )
        self._contradictions = tuple(
            (c, frozenset(path for path, _, _ in c.read_as)) for c in ruleset.contradictions
        )
        # A red flag fires on an unanswered "not yes" (the safer reading), so an answer can
        # still take it back: those fields are asked even after the flag fired. Every other
        # condition only gets more decided as answers come in.
        self._retractable = {
            flag.rule.id: tuple(_not_true_fields(flag.rule.when)) for flag in self._flags
        }

    def next(self, report: Report, declined: Iterable[str] = ()) -> JSON:
        skip = set(declined)
        unknown = sorted(path for path in skip if path not in self._vocabulary)
        if unknown:
            raise UnknownReportFields(unknown)
        screen = self._screener.screen(report)
        # Each open red flag's unanswered fields, worked out once for the screen and the question.
        open_fields = {f.rule.id: f.rule.when.unanswered(screen.flat) for f in screen.undecided}
        answer: JSON = {
            "rules_version": self.ruleset.version,
            "should_stop": True,
            "stop_reason": None,
            "question": None,
            "screen": self.screen_answer(screen, open_fields),
        }
        if screen.level == EMERGENCY:
            answer["stop_reason"] = EMERGENCY_FOUND
            return answer
        touches = self._safety_fields(screen, skip, open_fields)
        if touches:
            levels = {path: level for path, (level, _) in touches.items()}
            first = self._most_deciding(touches)
            question = self._builder.build(first, touches, levels)
            question["priority"] = "red_flag"
        elif checks := self._contradiction_fields(screen, skip):
            question = self._builder.build(checks[0], checks, {})
            question["priority"] = "contradiction"
        else:
            worth_asking = self._answer_changes.fields(screen, self._questions, skip)
            if not worth_asking:
                answer["stop_reason"] = TRIAGE_COMPLETE if screen.complete else NOTHING_LEFT_TO_ASK
                return answer
            question = self._builder.build(worth_asking[0], set(worth_asking), {})
            question["priority"] = "stop_or_causes"
        answer["should_stop"] = False
        answer["question"] = question
        return answer

    def question_for(self, path: str) -> JSON:
        """The question for one report field on its own (the pain score, when a form starts
        without it)."""
        question = self._builder.build(path, (path,), {})
        question["priority"] = "red_flag"
        return question

    def reading(self, report: Report) -> JSON:
        """The report's answers as the rules read them, flat: an answer in an older wording
        read as the question that replaced it, contradicting answers read the safer way."""
        return self._screener.screen(report).flat

    def _most_deciding(self, touches: Mapping[str, tuple[str | None, dict[str, None]]]) -> str:
        """Among the fields of the most urgent open red flag's level, the one whose question
        (its checklist's, for a checklist item) bears on the most open red flags; the first
        asked of equals. ``touches`` is in order of urgency."""
        first_level = None
        best, best_count = "", -1
        counted: set[str] = set()
        for path, (_, flags) in touches.items():
            level = self._level_of[next(iter(flags))]
            if first_level is None:
                first_level = level
            elif level != first_level:
                break
            checklist = self._builder.checklist_of.get(path)
            key = checklist.id if checklist else path
            if key in counted:
                continue  # the same question as a field before it
            counted.add(key)
            count = sum(
                self._level_of[flag] == first_level
                for flag in self._flags_decided_with(path, touches)
            )
            if count > best_count:
                best, best_count = path, count
        return best

    def _flags_decided_with(self, path: str, touches: Mapping[str, Any]) -> set[str]:
        checklist = self._builder.checklist_of.get(path)
        paths = [p for p in checklist.fields if p in touches] if checklist else [path]
        return set().union(*(touches[p][1] for p in paths))

    def _safety_fields(
        self, screen: Screen, skip: set[str], open_fields: Mapping[str, list[str]]
    ) -> dict[str, tuple[str | None, dict[str, None]]]:
        """Each red-flag field still worth asking, in order of the most urgent flag it bears
        on: the level a worrying answer could lead to (when above the current one), and the
        ids of the flags it bears on (the first one the most urgent)."""
        fired_ids = {flag.rule.id for flag in screen.fired}
        current = LEVELS.index(screen.level)
        found: dict[str, tuple[str | None, dict[str, None]]] = {}
        for flag in self._flags:
            if flag.rule.id in open_fields:
                paths = open_fields[flag.rule.id]
            elif flag.rule.id in fired_ids:
                paths = self._could_retract(flag, screen.flat)
            else:
                continue
            for path in paths:
                if path not in self._questions or path in skip:
                    continue
                if path not in found:
                    found[path] = (flag.level if flag.rank > current else None, {})
                found[path][1][flag.rule.id] = None  # in order: the most urgent first
        return found

    def _contradiction_fields(self, screen: Screen, skip: set[str]) -> list[str]:
        """The unanswered fields of undecided contradictions that would change an answer a red
        flag reads: asked once the red flags are decided, so that the interview reads the
        answers as the whole report would be read."""
        paths: dict[str, None] = {}
        for contradiction, rewrites in self._contradictions:
            if rewrites.isdisjoint(self._red_flag_fields):
                continue
            for path in contradiction.rule.when.unanswered(screen.flat):
                if path in self._questions and path not in skip:
                    paths.setdefault(path, None)
        return list(paths)

    def _could_retract(self, flag: RedFlag, flat: Mapping[str, Any]) -> list[str]:
        retract = []
        for path in self._retractable[flag.rule.id]:
            if path not in flat and flag.rule.when.evaluate({**flat, path: True}) is not True:
                retract.append(path)
        return retract

    def screen_answer(
        self, screen: Screen, open_fields: Mapping[str, list[str]] | None = None
    ) -> JSON:
        """The red-flag screen of the report so far, as ``Evaluator.escalation_check`` gives it
        (built here from the one screen the interview already made). ``open_fields``: each
        open flag's unanswered fields, if already known."""
        if open_fields is None:
            open_fields = {f.rule.id: f.rule.when.unanswered(screen.flat) for f in screen.undecided}
        undecided = dict.fromkeys(path for paths in open_fields.values() for path in paths)
        return screen_answer(self.ruleset, screen, undecided)


def _not_true_fields(condition) -> Iterable[str]:
    if isinstance(condition, NotTrue):
        yield condition.field.path
    for part in condition.children():
        yield from _not_true_fields(part)
