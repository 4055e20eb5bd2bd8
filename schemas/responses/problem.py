"""Errors, as RFC 9457 problem details."""

from __future__ import annotations

from marshmallow import Schema, fields

from schemas.responses.common import _s


class ProblemSchema(Schema):
    """An error, as RFC 9457 problem details (media type application/problem+json)."""

    type = _s("A URI naming the kind of problem; about:blank for a plain HTTP error.")
    title = _s("Short summary of the kind of problem.")
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    detail = _s("What went wrong in this request.")
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "For validation errors: messages by field path, e.g. "
            '{"pain.intensity": ["Must be a whole number from 0 to 10."]}'
        },
    )
    request_id = _s("The request id, as in the X-Request-ID header.")
