"""What an EHR's FHIR client does, written from the FHIR R4 resource definitions rather than
from Popliteal's code: fill in a QuestionnaireResponse by walking the Questionnaire it was
given, and check the coded values that the ``fhir.resources`` models do not enforce.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

MODELS = {
    "Bundle": Bundle,
    "CarePlan": CarePlan,
    "OperationOutcome": OperationOutcome,
    "Questionnaire": Questionnaire,
    "QuestionnaireResponse": QuestionnaireResponse,
}

# Required bindings from the R4 definitions (hl7.org/fhir/R4/<resource>.html), which the
# models accept as any string.
CARE_PLAN_STATUS = {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error",
                    "unknown"}  # fmt: skip
CARE_PLAN_INTENT = {"proposal", "plan", "order", "option"}
ACTIVITY_KIND = {"Appointment", "CommunicationRequest", "DeviceRequest", "MedicationRequest",
                 "NutritionOrder", "Task", "ServiceRequest", "VisionPrescription"}  # fmt: skip
ACTIVITY_STATUS = {"not-started", "scheduled", "in-progress", "on-hold", "completed",
                   "cancelled", "stopped", "unknown", "entered-in-error"}  # fmt: skip
UNITS_OF_TIME = {"s", "min", "h", "d", "wk", "mo", "a"}
BUNDLE_TYPE = {"document", "message", "transaction", "transaction-response", "batch",
               "batch-response", "history", "searchset", "collection"}  # fmt: skip
RISK_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
               "entered-in-error", "unknown"}  # fmt: skip
IMPRESSION_STATUS = {"in-progress", "completed", "entered-in-error"}
CONDITION_VERIFICATION = {"unconfirmed", "provisional", "differential", "confirmed", "refuted",
                          "entered-in-error"}  # fmt: skip
RISK_PROBABILITY = {"negligible", "low", "moderate", "high", "certain"}
QUESTIONNAIRE_STATUS = {"draft", "active", "retired", "unknown"}
ITEM_TYPE = {"group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time",
             "string", "text", "url", "choice", "open-choice", "attachment", "reference",
             "quantity"}  # fmt: skip
ENABLE_WHEN_OPERATOR = {"exists", "=", "!=", ">", "<", ">=", "<="}
ISSUE_SEVERITY = {"fatal", "error", "warning", "information"}
ISSUE_TYPE = {"invalid", "structure", "required", "value", "invariant", "security", "login",
              "unknown", "expired", "forbidden", "suppressed", "processing", "not-supported",
              "duplicate", "multiple-matches", "not-found", "deleted", "too-long",
              "code-invalid", "extension", "too-costly", "business-rule", "conflict",
              "transient", "lock-error", "no-store", "exception", "timeout", "incomplete",
              "throttled", "informational"}  # fmt: skip
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def validate(resource: dict[str, Any]) -> None:
    """Parse with the R4B model (which matches R4 for these resources) and check the
    required code bindings the model leaves open."""
    MODELS[resource["resourceType"]].model_validate(resource)
    CHECKS[resource["resourceType"]](resource)


def _codes(concept: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c.get("system") == system]


def _check_condition(condition: dict[str, Any]) -> None:
    assert condition["resourceType"] == "Condition"
    status = _codes(
        condition["verificationStatus"],
        "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    )
    assert len(status) == 1
    assert status[0] in CONDITION_VERIFICATION
    # Decision support never claims a confirmed diagnosis.
    assert status[0] in ("differential", "provisional")
    assert condition["subject"]


def _check_timing(timing: dict[str, Any]) -> None:
    repeat = timing.get("repeat", {})
    for key in ("periodUnit", "durationUnit"):
        if key in repeat:
            assert repeat[key] in UNITS_OF_TIME
    if "frequency" in repeat:
        assert repeat["frequency"] >= 1
        assert "period" in repeat
        assert "periodUnit" in repeat


def check_care_plan(plan: dict[str, Any]) -> None:
    assert plan["status"] in CARE_PLAN_STATUS
    assert plan["intent"] in CARE_PLAN_INTENT
    assert plan["subject"]
    for contained in plan.get("contained", []):
        _check_condition(contained)
        # dom-3: every contained resource is referenced from the resource that holds it.
        assert {"reference": f"#{contained['id']}"}.items() <= next(
            a for a in plan["addresses"] if a["reference"] == f"#{contained['id']}"
        ).items()
    for activity in plan.get("activity", []):
        detail = activity["detail"]
        assert detail["kind"] in ACTIVITY_KIND
        assert detail["status"] in ACTIVITY_STATUS
        assert detail.get("code") or detail.get("description")
        if not detail.get("doNotPerform"):
            _check_timing(detail["scheduledTiming"])
        if "quantity" in detail:
            assert detail["quantity"]["system"] == "http://unitsofmeasure.org"


def check_bundle(bundle: dict[str, Any]) -> None:
    assert bundle["type"] in BUNDLE_TYPE
    urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(set(urls)) == len(urls)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        kind = resource["resourceType"]
        if kind == "CarePlan":
            check_care_plan(resource)
            for address in resource.get("addresses", []):
                assert address["reference"] in urls  # resolves inside the Bundle
        elif kind == "Condition":
            _check_condition(resource)
        elif kind == "RiskAssessment":
            assert resource["status"] in RISK_STATUS
            for prediction in resource["prediction"]:
                risk = prediction["qualitativeRisk"]["coding"][0]
                assert risk["system"] == "http://terminology.hl7.org/CodeSystem/risk-probability"
                assert risk["code"] in RISK_PROBABILITY
        elif kind == "ClinicalImpression":
            assert resource["status"] in IMPRESSION_STATUS
            for finding in resource.get("finding", []):
                assert finding["itemReference"]["reference"] in urls
        else:
            raise AssertionError(f"unexpected {kind} in the Bundle")


def check_questionnaire(questionnaire: dict[str, Any]) -> None:
    assert questionnaire["status"] in QUESTIONNAIRE_STATUS
    link_ids = []

    def walk(items):
        for item in items:
            assert item["type"] in ITEM_TYPE
            link_ids.append(item["linkId"])
            # que-6: display items have no required, repeats or children of their own.
            if item["type"] == "display":
                assert "required" not in item
                assert "item" not in item
            for condition in item.get("enableWhen", []):
                assert condition["operator"] in ENABLE_WHEN_OPERATOR
            walk(item.get("item", []))

    walk(questionnaire["item"])
    assert len(link_ids) == len(set(link_ids))  # que-2: linkIds are unique
    for item in _all_items(questionnaire["item"]):
        for condition in item.get("enableWhen", []):
            assert condition["question"] in link_ids


def check_outcome(outcome: dict[str, Any]) -> None:
    assert outcome["issue"]
    for issue in outcome["issue"]:
        assert issue["severity"] in ISSUE_SEVERITY
        assert issue["code"] in ISSUE_TYPE


CHECKS = {
    "Bundle": check_bundle,
    "CarePlan": check_care_plan,
    "OperationOutcome": check_outcome,
    "Questionnaire": check_questionnaire,
    "QuestionnaireResponse": lambda resource: None,
}


def _all_items(items):
    for item in items:
        yield item
        yield from _all_items(item.get("item", []))


def answer_questionnaire(
    questionnaire: dict[str, Any], answers: dict[str, Any], subject: dict | None = None
) -> dict[str, Any]:
    """A QuestionnaireResponse giving ``answers`` ({linkId: value or list of values}), built
    the way a form filler does: each answer typed by its item's ``type`` and, for choices,
    taken from the item's ``answerOption``s. Unanswered items are left out."""

    def answer_item(item):
        value = answers[item["linkId"]]
        values = value if item.get("repeats") else [value]
        if item["type"] == "choice":
            options = {o["valueCoding"]["code"]: o["valueCoding"] for o in item["answerOption"]}
            return [{"valueCoding": options[v]} for v in values]
        key = {"boolean": "valueBoolean", "integer": "valueInteger"}[item["type"]]
        return [{key: v} for v in values]

    def fill(items):
        filled = []
        for item in items:
            if item["type"] == "group":
                children = fill(item.get("item", []))
                if children:
                    filled.append({"linkId": item["linkId"], "item": children})
            elif item["type"] != "display" and item["linkId"] in answers:
                filled.append({"linkId": item["linkId"], "answer": answer_item(item)})
        return filled

    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{questionnaire['url']}|{questionnaire['version']}",
        "status": "completed",
        "authored": "2026-11-25T09:30:00Z",
        "item": fill(questionnaire["item"]),
    }
    if subject:
        response["subject"] = {"identifier": subject}
    return response


def answers_from_report(report: dict[str, Any]) -> dict[str, Any]:
    """A JSON report's answers keyed by field path, the Questionnaire's linkIds."""
    return {
        f"{section}.{name}": value
        for section, fields in report.items()
        if isinstance(fields, dict)
        for name, value in fields.items()
    }
