"""What the response schemas share: the field builders, the value lists they validate against,
and the two schemas every part of a response refers to (a source, and a rule's reason).

The builders (``_s``, ``_nested`` and the rest) are for this package's modules only; the
schemas and value lists are re-exported by ``schemas.responses``."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from rules import LEVELS, load_library

LEVEL = validate.OneOf(LEVELS)
# Every time frame a loaded rules version defines, in the order of the newest.
TIME_FRAMES = tuple(
    dict.fromkeys(
        frame.id
        for evaluator in reversed(list(load_library()))
        for frame in evaluator.ruleset.time_frames
    )
)


def _s(description: str, **kwargs) -> fields.String:
    return fields.String(
        required=kwargs.pop("required", True), metadata={"description": description}, **kwargs
    )


def _source() -> fields.Nested:
    return fields.Nested(
        SourceSchema, required=True, metadata={"description": "Where this comes from."}
    )


def _nested(schema, description: str, **kwargs) -> fields.Nested:
    return fields.Nested(
        schema,
        required=kwargs.pop("required", True),
        metadata={"description": description},
        **kwargs,
    )


def _nested_list(schema, description: str, **kwargs) -> fields.List:
    return fields.List(
        fields.Nested(schema),
        required=kwargs.pop("required", True),
        metadata={"description": description},
        **kwargs,
    )


def _texts(description: str) -> fields.List:
    return fields.List(fields.String(), required=True, metadata={"description": description})


def _version_field():
    return _s("The rules version that produced this response.")


def _disclaimer_field():
    return _s("Decision support, not a diagnosis: always shown with the result.")


class SourceSchema(Schema):
    """Where a rule or number comes from: a paragraph of the article, or a named guideline."""

    document = _s('"article", or the name of an external guideline or method document.')
    section = _s("The article's section heading (or the method's section).", required=False)
    paragraph = fields.Integer(
        metadata={"description": "The paragraph number under that heading, from 1."}
    )
    url = fields.String(
        metadata={"description": "The address of an external guideline.", "format": "uri"}
    )
    quote = _s(
        "Rules 2.0.0 and later: the words of the article paragraph the rule relies on.",
        required=False,
    )
    recommendation = _s(
        "Rules 2.0.0 and later: the recommendation (or part) of the guideline relied on.",
        required=False,
    )


class RuleReasonSchema(Schema):
    """A rule that decided something, in words, with its source."""

    rule_id = _s("The stable id of the rule.")
    reason = _s("What the rule decided and why, in plain language.")
    source = _source()
