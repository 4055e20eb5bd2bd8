"""The symptom intake as a FHIR Questionnaire, and a QuestionnaireResponse read back into a
symptom report.

Both are built from the report vocabulary (``rules/report_fields.yaml``), the same one the
JSON schema and the rule conditions use: one group per report section, one item per field,
``linkId`` = the field path (``signs.numbness``). A response is read strictly: an unknown
``linkId``, an answer of the wrong type or a repeated answer to a single-answer question is
refused, naming the item. What is not answered stays absent ("not asked"), exactly as in JSON.

A module each for building the Questionnaire, reading a response and writing one; this
front door re-exports them, and importers use ``schemas.fhir.questionnaire``.
"""

from __future__ import annotations

from schemas.fhir.questionnaire.form import (
    ANSWER_VALUE,
    ENABLE_WHEN,
    HELP_SUFFIX,
    HIDDEN,
    ITEM_CONTROL,
    ITEM_CONTROL_SYSTEM,
    ITEM_TYPES,
    MAX_VALUE,
    MIN_VALUE,
    questionnaire,
    questionnaire_items,
    questionnaire_version,
)
from schemas.fhir.questionnaire.reading import (
    ANSWER_KEYS,
    FIELD_KEYS,
    GROUP_KEYS,
    ITEM_KEYS,
    RESPONSE_KEYS,
    RESPONSE_STATUSES,
    QuestionnaireResponseError,
    ResponseReader,
)
from schemas.fhir.questionnaire.response import questionnaire_response

__all__ = [
    "ANSWER_KEYS",
    "ANSWER_VALUE",
    "ENABLE_WHEN",
    "FIELD_KEYS",
    "GROUP_KEYS",
    "HELP_SUFFIX",
    "HIDDEN",
    "ITEM_CONTROL",
    "ITEM_CONTROL_SYSTEM",
    "ITEM_KEYS",
    "ITEM_TYPES",
    "MAX_VALUE",
    "MIN_VALUE",
    "RESPONSE_KEYS",
    "RESPONSE_STATUSES",
    "QuestionnaireResponseError",
    "ResponseReader",
    "questionnaire",
    "questionnaire_items",
    "questionnaire_response",
    "questionnaire_version",
]
