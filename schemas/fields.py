"""Strict marshmallow fields, and a schema that refuses unknown keys.

marshmallow's defaults are lenient: ``Integer`` takes ``"5"`` and ``True``, ``Boolean`` takes
``0``, ``"yes"`` and ``"off"``. For health data a silent coercion can change a triage, so a value
must arrive with its JSON type or be refused.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields


class StrictInteger(fields.Integer):
    """A JSON integer only: no strings, no floats, no booleans (``true`` is not 1)."""

    default_error_messages = {"invalid": "Not a valid integer: send a JSON number without quotes."}

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return value


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false`` only: no ``0``/``1``, no ``"yes"``."""

    default_error_messages = {"invalid": "Not a valid boolean: send true or false."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictString(fields.String):
    """A JSON string only (marshmallow already refuses numbers; this keeps the message plain)."""

    default_error_messages = {"invalid": "Not a valid string."}


class StrictSchema(Schema):
    """Refuses unknown keys, naming them: a misspelt safety field must not pass unnoticed."""

    class Meta:
        unknown = RAISE
