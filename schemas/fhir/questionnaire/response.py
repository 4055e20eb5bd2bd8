"""A QuestionnaireResponse written from a symptom report (for the examples in the docs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.fhir import QUESTIONNAIRE_URL, REPORT_VALUE_SYSTEM
from schemas.fhir.questionnaire.form import ANSWER_VALUE


def questionnaire_response(
    report: Mapping[str, Any],
    sections: Mapping[str, Mapping[str, Any]],
    subject: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A QuestionnaireResponse answering as ``report`` does (for examples in the docs)."""
    groups = []
    for section, answers in report.items():
        if section not in sections:
            continue
        items = []
        for name, value in answers.items():
            kind = sections[section]["fields"][name]["kind"]
            values = value if kind == "list" else [value]
            key = ANSWER_VALUE.get(kind, "valueCoding")
            items.append(
                {
                    "linkId": f"{section}.{name}",
                    "answer": [
                        {key: {"system": REPORT_VALUE_SYSTEM, "code": v}}
                        if key == "valueCoding"
                        else {key: v}
                        for v in values
                    ],
                }
            )
        groups.append({"linkId": section, "item": items})
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "completed",
        "item": groups,
    }
    if subject:
        response["subject"] = {"identifier": dict(subject)}
    return response
