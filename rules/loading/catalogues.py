"""What the rules of each step may read. Evaluation runs in a fixed order, and a rule may read
the report and what the steps before its own derived, never what a later step decides: red
flags read the report alone, so nothing can lower or hide them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rules.conditions import FieldCatalogue
from rules.model import LEVELS, PLAN_STATUSES


@dataclass(frozen=True, slots=True)
class Catalogues:
    report: FieldCatalogue  # red flags, causes, contradictions
    after_triage: FieldCatalogue  # stop rules
    after_stop: FieldCatalogue  # the exercise plan
    after_plan: FieldCatalogue  # advice, and what advice presupposes

    def add_red_flags(self, flag_codes: list[str], time_frames: Iterable[str]) -> None:
        """What the red flags derive, once they are loaded."""
        derived = {
            "assessment.red_flags": {"kind": "list", "values": flag_codes},
            "assessment.open_red_flags": {"kind": "list", "values": flag_codes},
            "assessment.time_frame": {"kind": "choice", "values": list(time_frames)},
        }
        for catalogue in (self.after_triage, self.after_stop, self.after_plan):
            catalogue.fields.update(derived)

    def add_exercises(self, exercise_ids: list[str]) -> None:
        """Advice is decided last and may read which exercises the plan holds."""
        self.after_plan.fields["assessment.plan_exercises"] = {
            "kind": "list",
            "values": exercise_ids,
        }


def staged_catalogues(report_fields: dict[str, Any], cause_codes: list[str]) -> Catalogues:
    after_triage = {
        **report_fields,
        "assessment.level": {"kind": "choice", "values": list(LEVELS)},
        "assessment.leading_cause": {"kind": "choice", "values": cause_codes},
        "assessment.suspected_causes": {"kind": "list", "values": cause_codes},
        "assessment.likely_causes": {"kind": "list", "values": cause_codes},
        "assessment.triage_complete": {"kind": "boolean", "values": None},
    }
    after_stop = {
        **after_triage,
        "assessment.stop_stretching": {"kind": "boolean", "values": None},
        # False while a stop rule is undecided (an answer that could stop is missing).
        "assessment.stop_decided": {"kind": "boolean", "values": None},
    }
    after_plan = {
        **after_stop,
        "assessment.has_plan": {"kind": "boolean", "values": None},
        "assessment.plan_status": {"kind": "choice", "values": list(PLAN_STATUSES)},
    }
    return Catalogues(
        FieldCatalogue(report_fields),
        FieldCatalogue(after_triage),
        FieldCatalogue(after_stop),
        FieldCatalogue(after_plan),
    )
