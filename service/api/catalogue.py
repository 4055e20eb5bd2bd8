"""Reference data: exercises, conditions and the rule sets themselves."""

from __future__ import annotations

from flask import abort
from marshmallow import Schema

from schemas.report import rules_version_field
from schemas.responses import (
    ConditionListSchema,
    ConditionSchema,
    ExerciseListSchema,
    ExerciseSchema,
    RuleSetDocumentSchema,
    RulesVersionListSchema,
)
from service.evaluation import SHIPPED_RULES, evaluator_for
from service.response_examples import shortened
from service.state import state
from service.web import (
    RULES_RESPONSE_HEADERS,
    V1_ERRORS,
    Blueprint,
    json_response,
    problem_responses,
)

blp = Blueprint(
    "catalogue",
    __name__,
    url_prefix="/v1",
    description="The exercises, conditions and versioned rule sets behind the assessments.",
)


class VersionQuerySchema(Schema):
    rules_version = rules_version_field()


VERSION_QUERY = VersionQuerySchema()


def _newest():
    # The documented examples are built at import, when there is no app.
    return SHIPPED_RULES.get().ruleset


def _exercise_list(ruleset) -> dict:
    return {
        "rules_version": ruleset.version,
        "exercises": [e.catalogue for e in ruleset.exercises.values()],
    }


def _condition_list(ruleset, classification) -> dict:
    return {
        "rules_version": ruleset.version,
        "conditions": [_condition(c, classification) for c in ruleset.causes],
    }


def _rules_versions(library) -> dict:
    return {
        "default_version": library.default_version,
        "versions": [
            {
                "version": e.ruleset.version,
                "released": e.ruleset.released,
                "summary": e.ruleset.summary,
                "digest": e.ruleset.digest,
                "default": e.ruleset.version == library.default_version,
            }
            for e in library
        ],
    }


@blp.route("/exercises")
@blp.arguments(VERSION_QUERY, location="query", as_kwargs=True)
@blp.response(
    200,
    ExerciseListSchema,
    headers=RULES_RESPONSE_HEADERS,
    example=shortened(_exercise_list(_newest())),
)
@problem_responses(blp, *V1_ERRORS)
def list_exercises(rules_version: str | None = None):
    """List the exercises

    The article's stretches and strengthening exercises, and the warm-up, with steps, cues,
    cautions and contraindications.
    """
    return json_response(_exercise_list(evaluator_for(rules_version).ruleset))


def _path(name: str, description: str, example: str) -> list[dict]:
    return [{"in": "path", "name": name, "description": description, "example": example}]


def _condition(cause, classification) -> dict:
    return {
        **cause.catalogue,
        "icd10cm": classification.conditions[cause.code].catalogue(classification.system),
    }


@blp.route(
    "/exercises/<string:exercise_id>",
    parameters=_path("exercise_id", "An exercise id from GET /v1/exercises.", "glute_bridge"),
)
@blp.arguments(VERSION_QUERY, location="query", as_kwargs=True)
@blp.response(
    200,
    ExerciseSchema,
    headers=RULES_RESPONSE_HEADERS,
    example=_newest().exercises["glute_bridge"].catalogue,
)
@problem_responses(blp, 404, *V1_ERRORS)
def get_exercise(exercise_id: str, rules_version: str | None = None):
    """Get one exercise

    Steps, cues, cautions and contraindications of one exercise, with its source.
    """
    exercise = evaluator_for(rules_version).ruleset.exercises.get(exercise_id)
    if exercise is None:
        abort(404, description=f"There is no exercise {exercise_id!r}; see GET /v1/exercises.")
    return json_response(exercise.catalogue)


@blp.route("/conditions")
@blp.arguments(VERSION_QUERY, location="query", as_kwargs=True)
@blp.response(
    200,
    ConditionListSchema,
    headers=RULES_RESPONSE_HEADERS,
    example=shortened(_condition_list(_newest(), SHIPPED_RULES.classification)),
)
@problem_responses(blp, *V1_ERRORS)
def list_conditions(rules_version: str | None = None):
    """List the conditions

    The thirteen possible causes the rules rank, with the signals that point to each.
    """
    ruleset = evaluator_for(rules_version).ruleset
    return json_response(_condition_list(ruleset, state().rules.classification))


@blp.route(
    "/conditions/<string:code>",
    parameters=_path("code", "A condition code from GET /v1/conditions.", "bakers_cyst"),
)
@blp.arguments(VERSION_QUERY, location="query", as_kwargs=True)
@blp.response(
    200,
    ConditionSchema,
    headers=RULES_RESPONSE_HEADERS,
    example=_condition(_newest().causes_by_code["bakers_cyst"], SHIPPED_RULES.classification),
)
@problem_responses(blp, 404, *V1_ERRORS)
def get_condition(code: str, rules_version: str | None = None):
    """Get one condition

    What the condition is, the report signals that point to it, and its source.
    """
    cause = evaluator_for(rules_version).ruleset.causes_by_code.get(code)
    if cause is None:
        abort(404, description=f"There is no condition {code!r}; see GET /v1/conditions.")
    return json_response(_condition(cause, state().rules.classification))


@blp.route("/rules")
@blp.response(
    200,
    RulesVersionListSchema,
    headers=RULES_RESPONSE_HEADERS,
    example=_rules_versions(SHIPPED_RULES),
)
@problem_responses(blp, *V1_ERRORS)
def list_rule_sets():
    """List the rules versions

    Every loaded version, oldest first. A request may pin one with `rules_version`.
    """
    return json_response(_rules_versions(state().rules))


@blp.route(
    "/rules/<string:version>",
    parameters=_path("version", "A rules version from GET /v1/rules.", "1.0.0"),
)
@blp.response(
    200,
    RuleSetDocumentSchema,
    headers=RULES_RESPONSE_HEADERS,
    # Every list cut short: the whole document runs to some 150 kB.
    example=shortened(_newest().document),
)
@problem_responses(blp, 404, *V1_ERRORS)
def get_rule_set(version: str):
    """Get a rule set

    The rule set as served: every red flag, stop rule, cause signal, advice and plan rule with
    its condition, the parameter values it uses and its source.
    """
    library = state().rules
    if version not in library.versions:
        abort(404, description=f"There is no rules version {version!r}; see GET /v1/rules.")
    return json_response(evaluator_for(version).ruleset.document)
