"""Errors as a FHIR OperationOutcome, for clients that speak FHIR."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from schemas.fhir.questionnaire import RESPONSE_KEYS

# The FHIR issue type for each HTTP status the service answers with.
ISSUE_TYPE = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "not-found",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    500: "exception",
    503: "transient",
}
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _expression(location: str) -> str:
    """A FHIRPath to the item a linkId names, or to an element of the response."""
    if location in RESPONSE_KEYS or location.startswith("item["):
        return f"QuestionnaireResponse.{location}"
    return f"QuestionnaireResponse.repeat(item).where(linkId = '{location}')"


def operation_outcome(
    status: int,
    detail: str,
    errors: Mapping[str, list[str]] | None = None,
    request_id: str | None = None,
    linked_items: bool = False,
) -> dict[str, Any]:
    """One issue per location in ``errors`` (each names the item or element), or a single
    issue with ``detail``. With ``linked_items`` the locations are linkIds and elements of a
    QuestionnaireResponse, and each issue carries a FHIRPath expression to it."""
    code = ISSUE_TYPE.get(status, "processing" if status < 500 else "exception")
    severity = "error" if status < 500 else "fatal"
    issues = []
    for location, messages in (errors or {}).items():
        issue: dict[str, Any] = {
            "severity": severity,
            "code": code,
            "diagnostics": f"{location}: {' '.join(messages)}",
        }
        if linked_items:
            issue["expression"] = [_expression(location)]
        issues.append(issue)
    if not issues:
        issues.append({"severity": severity, "code": code, "diagnostics": detail})
    outcome: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": issues}
    if request_id and FHIR_ID.match(request_id):
        outcome["id"] = request_id
    outcome["text"] = {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{_escape(detail)}</div>',
    }
    return outcome


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
