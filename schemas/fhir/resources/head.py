"""What every resource says of the stored record it comes from: the record's head, the
triage level in words, the subject reference and a source in words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def level_texts(urgent_within_hours: float, *, short: bool = False) -> dict[str, str]:
    """How each triage level reads, with the urgent level's time limit taken from the rules
    version that made the record (parameter ``urgent_care_within_hours``). The limit is the
    outer one: a red flag may ask for sooner (a suspected clot: today), so the text says so
    rather than let a clinician read the limit as the advice. ``short``: for a CDS card's
    summary, which has room for little else."""
    hours = f"{urgent_within_hours:g}"
    urgent = (
        f"Urgent: a clinician within {hours} h at the latest"
        if short
        else f"Urgent: see a clinician within {hours} hours at the latest, sooner where a red "
        "flag says so"
    )
    return {
        "emergency": "Emergency: seek care now",
        "urgent": urgent,
        "see_professional": "See a doctor or physical therapist",
        "self_care": "Self-care",
    }


def triage_level_text(level_text: Mapping[str, str], triage: Mapping[str, Any]) -> str:
    """The level in words for one assessment. From rules 2.0.0 on each red flag has its own
    time frame, and the text says that one ("Urgent: see a clinician today") rather than the
    level's outer limit, so a record never reads "within 24 hours" beside a flag saying "today"
    or "within 14 days"."""
    level = triage["level"]
    when = (triage.get("time_frame") or {}).get("when")
    if not when or level not in ("urgent", "see_professional"):
        return level_text[level]
    if level == "urgent":
        return f"Urgent: see a clinician {when}"
    return f"See a doctor or physical therapist {when}"


@dataclass(frozen=True)
class RecordHead:
    """What every resource says of the stored record it comes from."""

    id: str
    created_at: str
    rules_version: str
    level_text: Mapping[str, str]  # level_texts() of that rules version
    subject: Mapping[str, str] | None = None


@dataclass(frozen=True)
class CauseView:
    """A condition a plan addresses or an assessment ranks, with the codes that fit it."""

    code: str
    name: str
    icd10cm: Sequence[Mapping[str, str]] = field(default_factory=tuple)
    likelihood: str | None = None  # None: named by the caller, not ranked by the rules
    evidence: Sequence[str] = field(default_factory=tuple)


def subject_reference(subject: Mapping[str, str] | None) -> dict[str, Any]:
    """The record's subject as a logical reference by identifier. Without one, a display
    that says so: FHIR requires a subject on these resources."""
    if subject is None:
        return {"display": "Not identified: the report was sent without a subject"}
    return {"identifier": {"system": subject["system"], "value": subject["value"]}}


def source_text(source: Mapping[str, Any], article_title: str | None = None) -> str:
    if source.get("document") == "article":
        title = f"“{article_title}”" if article_title else "the source article"
        return f"{title}, section “{source['section']}”, paragraph {source['paragraph']}"
    text = str(source.get("document"))
    if source.get("section"):
        text += f", {source['section']}"
    if source.get("url"):
        text += f" ({source['url']})"
    return text
