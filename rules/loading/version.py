"""One rules version folder, loaded whole: its files in the order their rules may refer to
one another, then the rule set they make."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rules.loading.catalogues import staged_catalogues
from rules.loading.causes import cause_codes, load_causes
from rules.loading.citations import Citations
from rules.loading.context import VersionContext
from rules.loading.contradictions import load_contradictions
from rules.loading.document import LoadedRules, served_document
from rules.loading.exercises import load_exercises
from rules.loading.folder import RuleFolder
from rules.loading.parameters import load_parameters
from rules.loading.prescription import load_prescription
from rules.loading.presuppositions import load_presuppositions
from rules.loading.recommendations import load_recommendations
from rules.loading.red_flags import load_red_flags
from rules.loading.report_fields import (
    load_report_fields,
    questions_for,
    replacements_for,
    report_catalogue,
)
from rules.loading.ruleset_file import FILE as RULESET_FILE
from rules.loading.ruleset_file import load_header
from rules.loading.stop_rules import load_stop_rules
from rules.loading.time_frames import load_time_frames
from rules.model import RuleSet


def load_ruleset(
    directory: Path, report_sections: Mapping[str, Mapping[str, Any]] | None = None
) -> RuleSet:
    """Load and check one rule-set folder."""
    sections = report_sections if report_sections is not None else load_report_fields()
    folder = RuleFolder(directory)
    citations = Citations(load_header(folder))
    ctx = VersionContext(folder, citations, load_parameters(folder, citations))
    rules = _load_rules(ctx, sections)
    citations.check_every_guideline_cited(folder.at(RULESET_FILE) / "guidelines")
    return _ruleset(ctx, rules, sections)


def _load_rules(ctx: VersionContext, sections: Mapping[str, Mapping[str, Any]]) -> LoadedRules:
    """The files in a fixed order: a catalogue learns what a file defines (red flag codes,
    exercise ids) before the files whose rules may read it. A duplicate rule id is reported
    where it occurs second in this order."""
    catalogues = staged_catalogues(report_catalogue(sections), cause_codes(ctx.folder))
    time_frames = load_time_frames(ctx)
    red_flags = load_red_flags(ctx, catalogues.report, time_frames)
    causes = load_causes(ctx, catalogues.report)
    contradictions = load_contradictions(ctx, catalogues.report)
    catalogues.add_red_flags([flag.code for flag in red_flags], time_frames)
    exercises = load_exercises(ctx)
    catalogues.add_exercises(list(exercises))
    stop_rules = load_stop_rules(ctx, catalogues.after_triage)
    presuppositions = load_presuppositions(ctx, catalogues.after_plan)
    recommendations = load_recommendations(ctx, catalogues.after_plan, presuppositions)
    prescription = load_prescription(ctx, catalogues.after_stop, exercises)
    return LoadedRules(
        time_frames=time_frames,
        red_flags=red_flags,
        causes=causes,
        contradictions=contradictions,
        exercises=exercises,
        stop_rules=stop_rules,
        presuppositions=presuppositions,
        recommendations=recommendations,
        prescription=prescription,
    )


def _ruleset(
    ctx: VersionContext, rules: LoadedRules, sections: Mapping[str, Mapping[str, Any]]
) -> RuleSet:
    header, plan = ctx.header, rules.prescription
    digest = ctx.folder.digest()
    documents = header.documents()
    release = {
        "version": header.version,
        "released": header.released,
        "summary": header.summary,
        "digest": digest,
        "disclaimer": header.disclaimer,
        "documents": documents,
    }
    return RuleSet(
        version=header.version,
        released=header.released,
        summary=header.summary,
        disclaimer=header.disclaimer,
        parameters=ctx.parameters,
        red_flags=rules.red_flags,
        stop_rules=rules.stop_rules,
        causes=rules.causes,
        recommendations=rules.recommendations,
        exercises=rules.exercises,
        programme=plan.programme,
        progression=plan.progression,
        safety=plan.safety,
        withhold=plan.withhold,
        exclude=plan.exclude,
        adjust=plan.adjust,
        review=plan.review,
        questions=questions_for(sections, header.version),
        replacements=replacements_for(sections, header.version),
        time_frames=tuple(rules.time_frames.values()),
        contradictions=rules.contradictions,
        presuppositions=rules.presuppositions,
        documents=documents,
        digest=digest,
        document=served_document(release, ctx.parameters, rules),
        cited_paragraphs=frozenset(ctx.citations.paragraphs),
    )
