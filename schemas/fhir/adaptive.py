"""The interview as a FHIR SDC adaptive form (https://hl7.org/fhir/uv/sdc/adaptive.html).

A client posts a QuestionnaireResponse that contains its adaptive Questionnaire: the questions
asked so far, and the answers given. ``read_adaptive`` turns it into the report so far and the
questions declined (asked, and left unanswered); ``next_response`` adds the next question to
the contained Questionnaire and to the response, or completes the response. Pure: no web
framework.

A single question's ``linkId`` is the report field (``signs.numbness``), as in the intake
Questionnaire; a checklist is one choice item with one option per report field (coded in
``REPORT_FIELD_SYSTEM``) and ``none``: the fields ticked are yes, the others no.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from schemas.fhir import QUESTIONNAIRE_URL, REPORT_VALUE_SYSTEM, TITLE
from schemas.fhir.questionnaire.form import (
    ITEM_CONTROL,
    ITEM_CONTROL_SYSTEM,
    ITEM_TYPES,
    MAX_VALUE,
    MIN_VALUE,
)

JSON = dict[str, Any]

ADAPTIVE_URL = "urn:popliteal:fhir:Questionnaire:adaptive-interview"
ADAPTIVE_EXTENSION = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive"
)
ADAPT_PROFILE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-adapt"
RESPONSE_ADAPT_PROFILE = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaireresponse-adapt"
)
REPORT_FIELD_SYSTEM = "urn:popliteal:fhir:CodeSystem:report-field"
NONE_OF_THESE = "none"
CONTAINED_ID = "interview"
RESULT_LINK_ID = "interview.result"
ANSWER_KEYS = {"boolean": "valueBoolean", "integer": "valueInteger"}


class AdaptiveFormError(Exception):
    """A body that is not an adaptive response to this interview; ``errors`` by location."""

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None):
        self.detail = detail
        self.errors = errors
        super().__init__(detail)


def read_adaptive(body: Any, specs: Mapping[str, Mapping[str, Any]]) -> tuple[JSON, JSON, list]:
    """(the response, the report so far as flat ``section.field`` answers, the declined
    fields) from a posted QuestionnaireResponse (or Parameters with it as ``in``)."""
    try:
        return _read(body, specs)
    except (AttributeError, TypeError, KeyError, IndexError):
        # A list where an object belongs, or the like: the structure FHIR gives these
        # elements is not there. (Resources are not validated in full here.)
        raise AdaptiveFormError(
            "The QuestionnaireResponse or its contained Questionnaire is not well formed: "
            "items, answers and codings are objects in lists, as FHIR R4 defines them."
        ) from None


def _read(body: Any, specs: Mapping[str, Mapping[str, Any]]) -> tuple[JSON, JSON, list]:
    response = _the_response(body)
    form = _contained_form(response)
    given = {item.get("linkId"): item.get("answer") or [] for item in response.get("item") or []}
    answers: JSON = {}
    declined: list[str] = []
    for position, item in enumerate(form.get("item") or []):
        if item.get("type") == "display":
            continue
        where = f"Questionnaire.item[{position}]"
        answer = given.get(item.get("linkId"), [])
        if _is_checklist(item):
            _read_checklist(item, specs, answer, answers, declined, where)
        elif item.get("linkId") in specs:
            _read_single(item["linkId"], specs[item["linkId"]], answer, answers, declined, where)
        else:
            raise AdaptiveFormError(
                "The contained Questionnaire asks a question this interview never asks.",
                {f"{where}.linkId": [f"Unknown question {item.get('linkId')!r}."]},
            )
    return response, answers, declined


def _the_response(body: Any) -> JSON:
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        inputs = [p for p in body.get("parameter") or [] if p.get("name") == "in"]
        body = inputs[0].get("resource") if len(inputs) == 1 else None
    if not isinstance(body, dict) or body.get("resourceType") != "QuestionnaireResponse":
        raise AdaptiveFormError(
            "Send a QuestionnaireResponse (or Parameters with it as 'in') that contains its "
            "adaptive Questionnaire."
        )
    return body


def _contained_form(response: JSON) -> JSON:
    reference = response.get("questionnaire")
    contained = {
        f"#{r.get('id')}": r
        for r in response.get("contained") or []
        if isinstance(r, dict) and r.get("resourceType") == "Questionnaire"
    }
    form = contained.get(reference) if isinstance(reference, str) else None
    if form is None:
        raise AdaptiveFormError(
            "The response must name its contained adaptive Questionnaire ('#' and its id).",
            {"QuestionnaireResponse.questionnaire": [f"No contained Questionnaire {reference!r}."]},
        )
    if form.get("url") != ADAPTIVE_URL:
        raise AdaptiveFormError(
            f"This QuestionnaireResponse is for another Questionnaire ({form.get('url')!r}); "
            f"$next-question here answers {ADAPTIVE_URL}.",
            {"QuestionnaireResponse.contained.url": [f"Not this interview: {form.get('url')!r}."]},
        )
    return form


def _is_checklist(item: JSON) -> bool:
    options = item.get("answerOption") or []
    return bool(options) and all(
        option.get("valueCoding", {}).get("system") == REPORT_FIELD_SYSTEM for option in options
    )


def _read_checklist(
    item: JSON, specs: Mapping[str, Any], answer: list, answers: JSON, declined: list, where: str
) -> None:
    shown = [o["valueCoding"]["code"] for o in item["answerOption"]]
    fields = [code for code in shown if code != NONE_OF_THESE]
    unknown = [code for code in fields if specs.get(code, {}).get("kind") != "boolean"]
    if unknown:
        # The form is the client's to send back: a checklist item this interview never shows
        # is refused, not read as an answer to a field that does not exist.
        raise AdaptiveFormError(
            "A checklist offers an item this interview never asks.",
            {f"{where}.answerOption": [f"Not a yes/no question of this interview: {unknown}."]},
        )
    if not answer:
        declined.extend(fields)
        return
    ticked = {a.get("valueCoding", {}).get("code") for a in answer}
    if not ticked <= set(shown):
        # An answer that is not one of the options shown must not count as "none of these":
        # every item left unticked is read as "no", red flags included.
        raise AdaptiveFormError(
            "A checklist answer is not one of its options.",
            {f"{where}.answer": [f"Expected the codes of the options shown: {shown}."]},
        )
    for path in fields:
        answers[path] = path in ticked


def _read_single(
    path: str, spec: Mapping[str, Any], answer: list, answers: JSON, declined: list, where: str
) -> None:
    if not answer:
        declined.append(path)
        return
    kind = spec["kind"]
    if kind in ANSWER_KEYS:
        values = [a.get(ANSWER_KEYS[kind]) for a in answer]
    else:
        values = [a.get("valueCoding", {}).get("code") for a in answer]
    if any(value is None for value in values) or (kind != "list" and len(values) != 1):
        raise AdaptiveFormError(
            f"The answer to {path!r} is not a {kind} answer.",
            {f"{where}.answer": [f"Expected a {kind} answer for {path!r}."]},
        )
    answers[path] = values if kind == "list" else values[0]


def first_response() -> JSON:
    """An empty adaptive response to start an interview with (the first question comes back)."""
    return {
        "resourceType": "QuestionnaireResponse",
        "meta": {"profile": [RESPONSE_ADAPT_PROFILE]},
        "contained": [_empty_form()],
        "questionnaire": f"#{CONTAINED_ID}",
        "status": "in-progress",
    }


def _empty_form() -> JSON:
    return {
        "resourceType": "Questionnaire",
        "id": CONTAINED_ID,
        "meta": {"profile": [ADAPT_PROFILE]},
        "extension": [{"url": ADAPTIVE_EXTENSION, "valueBoolean": True}],
        "url": ADAPTIVE_URL,
        "title": f"{TITLE}: interview",
        "status": "active",
        "derivedFrom": [QUESTIONNAIRE_URL],
    }


def next_response(response: JSON, question: JSON | None, result: str | None) -> JSON:
    """The response with the next question added to it and to its contained Questionnaire; or,
    with no question, completed, with ``result`` said in a display item."""
    updated = copy.deepcopy(response)
    form = next(r for r in updated["contained"] if f"#{r.get('id')}" == updated["questionnaire"])
    items = form.setdefault("item", [])
    if question is None:
        items.append({"linkId": RESULT_LINK_ID, "text": result, "type": "display"})
        updated["status"] = "completed"
        return updated
    item = _item(question, len(items) + 1)
    items.append(item)
    updated.setdefault("item", []).append({"linkId": item["linkId"], "text": item["text"]})
    updated["status"] = "in-progress"
    return updated


def _item(question: JSON, number: int) -> JSON:
    if question["kind"] == "checklist":
        return _checklist_item(question, number)
    path = question["fields"][0]
    kind = question["kind"]
    item: JSON = {
        "linkId": path,
        "text": question["text"],
        "type": ITEM_TYPES[kind],
        "required": False,
        "repeats": kind == "list",
    }
    if kind == "integer":
        item["extension"] = [
            {"url": MIN_VALUE, "valueInteger": question["minimum"]},
            {"url": MAX_VALUE, "valueInteger": question["maximum"]},
        ]
    if kind in ("choice", "list"):
        item["answerOption"] = [
            {
                "valueCoding": {
                    "system": REPORT_VALUE_SYSTEM,
                    "code": o["value"],
                    "display": o["text"],
                }
            }
            for o in question["options"]
        ]
    item["item"] = [_help(path, question["why"])]
    return item


def _checklist_item(question: JSON, number: int) -> JSON:
    link_id = f"{question['checklist']}.{number}"  # a checklist can be asked again, with less
    options = [
        {"valueCoding": {"system": REPORT_FIELD_SYSTEM, "code": o["field"], "display": o["text"]}}
        for o in question["options"]
    ]
    options.append(
        {
            "valueCoding": {
                "system": REPORT_FIELD_SYSTEM,
                "code": NONE_OF_THESE,
                "display": "None of these",
            }
        }
    )
    return {
        "linkId": link_id,
        "text": question["text"],
        "type": "choice",
        "required": False,
        "repeats": True,
        "extension": [_control("check-box")],
        "answerOption": options,
        "item": [_help(link_id, question["why"])],
    }


def _help(link_id: str, text: str) -> JSON:
    return {
        "linkId": f"{link_id}.help",
        "text": text,
        "type": "display",
        "extension": [_control("help")],
    }


def _control(code: str) -> JSON:
    return {
        "url": ITEM_CONTROL,
        "valueCodeableConcept": {"coding": [{"system": ITEM_CONTROL_SYSTEM, "code": code}]},
    }
