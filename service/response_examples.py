"""Response examples for the OpenAPI description, made at import from the request examples
(``service.examples``) by the rules shipped with this build and the same builders the routes
use: the JSON renderings of stored records, the FHIR Bundle and CarePlan, the CDS card.

Stored records get fixed ids, a fixed time and a fixed request id, so that the spec is the same
from one build to the next and changes only when what the service answers changes. The tests
validate every example against its response schema (or, for FHIR, the R4 resource model).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from rules import prescription_from_assessment
from schemas.cds_hooks.cards import PlanOffer, card
from schemas.fhir.resources import assessment_bundle, care_plan
from service import examples
from service.evaluation import SHIPPED_RULES
from service.fhir_intake import intake_questionnaire
from service.records_as_fhir import level_text, ranked_causes, record_head
from service.records_as_json import (
    assessment_path,
    prescription_path,
    render_assessment,
    render_prescription,
    render_summary,
)
from service.storage import ASSESSMENT, EXERCISE_PRESCRIPTION, Record, Subject, plan_id_for
from service.web import fhir_doc

CREATED_AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
REQUEST_ID = "6f1d2c3b-4a59-4e8f-9d7c-1b2a3c4d5e6f"
ASSESSMENT_ID = "0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8091"
PLAN_ID = plan_id_for(ASSESSMENT_ID)  # its row holds it: service.storage.inline_plans
PRESCRIPTION_ID = "0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8093"
ORIGINAL_ID = "0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8094"
REASSESSMENT_ID = "0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8095"
SUBJECT = Subject("https://fitness.example/member-ids", "m-4f9c2a")
# An example deployment's public address, as POPLITEAL_CDS_BASE_URL would set it.
CDS_BASE_URL = "https://popliteal.example"
CDS_PATIENT_ID = examples.CDS_HOOK_REQUEST["context"]["patientId"]

_NEWEST = SHIPPED_RULES.get()
_OLDEST = SHIPPED_RULES.get(SHIPPED_RULES.versions[0])


def stored(kind: str, record_id: str, request: dict, response: dict, **details: Any) -> Record:
    """A record as the store would give it back, at the example time; ``details``: its
    subject (else the example subject) and its links to other records."""
    return Record(
        id=record_id,
        kind=kind,
        created_at=CREATED_AT,
        request_id=REQUEST_ID,
        rules_version=response["rules_version"],
        subject=details.pop("subject", SUBJECT),
        triage_level=(response.get("triage") or {}).get("level"),
        assessment_id=details.pop("assessment_id", None),
        plan_id=details.pop("plan_id", None),
        reassessment_of=details.pop("reassessment_of", None),
        request=request,
        response_json=orjson.dumps(response),
    )


def _assessed(report: Mapping[str, Any], evaluator=_NEWEST) -> dict[str, Any]:
    return evaluator.assess(dict(report))


# POST /v1/assess stores an assessment, its row holding its plan (record_creation).
SELF_CARE = _assessed(examples.SELF_CARE_TECHNIQUE)
ASSESSMENT_RECORD = stored(
    ASSESSMENT, ASSESSMENT_ID, dict(examples.SELF_CARE_TECHNIQUE), SELF_CARE, plan_id=PLAN_ID
)
PLAN_RECORD = stored(
    EXERCISE_PRESCRIPTION,
    PLAN_ID,
    {"assessment_id": ASSESSMENT_ID},
    prescription_from_assessment(SELF_CARE),
    assessment_id=ASSESSMENT_ID,
)
CONDITIONS_REQUEST = examples.PRESCRIPTION_EXAMPLES["from_conditions"]["value"]
PRESCRIPTION = _NEWEST.prescribe_for_conditions(**CONDITIONS_REQUEST)
PRESCRIPTION_RECORD = stored(
    EXERCISE_PRESCRIPTION, PRESCRIPTION_ID, dict(CONDITIONS_REQUEST), PRESCRIPTION, subject=None
)
# A report stored under the oldest rules, as a reassessment would find it.
ORIGINAL_RECORD = stored(
    ASSESSMENT,
    ORIGINAL_ID,
    {**examples.POSSIBLE_DVT, "rules_version": _OLDEST.ruleset.version},
    _assessed(examples.POSSIBLE_DVT, _OLDEST),
)
REASSESSED = _assessed(examples.POSSIBLE_DVT)

STORED_ASSESSMENT = render_assessment(ASSESSMENT_RECORD)
STORED_PRESCRIPTION = render_prescription(PLAN_RECORD)
CREATED_PRESCRIPTION = render_prescription(PRESCRIPTION_RECORD)
ASSESSMENT_PAGE = {
    "items": [render_summary(ASSESSMENT_RECORD)],
    "next_cursor": None,
    "links": {},
}


_ARTICLE_TITLE = _NEWEST.ruleset.documents["article"]["title"]
_CAUSES = ranked_causes(SELF_CARE, ASSESSMENT_RECORD.request, SHIPPED_RULES.classification)
CARE_PLAN = care_plan(
    record_head(PLAN_RECORD), PLAN_RECORD.response, _CAUSES, article_title=_ARTICLE_TITLE
)
BUNDLE = assessment_bundle(
    record_head(ASSESSMENT_RECORD),
    SELF_CARE,
    _CAUSES,
    record_head(PLAN_RECORD),
    PLAN_RECORD.response,
    article_title=_ARTICLE_TITLE,
)
QUESTIONNAIRE = intake_questionnaire(SHIPPED_RULES)
CDS_CARDS = {
    "cards": [
        card(
            record_head(ASSESSMENT_RECORD),
            SELF_CARE,
            level_text(ASSESSMENT_RECORD.rules_version, short=True),
            rules_url=f"{CDS_BASE_URL}/v1/rules/{ASSESSMENT_RECORD.rules_version}",
            bundle_url=f"{CDS_BASE_URL}{assessment_path(ASSESSMENT_ID)}/fhir",
            patient_id=CDS_PATIENT_ID,
            plan=PlanOffer(PLAN_ID, f"{CDS_BASE_URL}{prescription_path(PLAN_ID)}/fhir", CARE_PLAN),
        )
    ]
}


def shortened(document: Any, keep: int = 2) -> Any:
    """A long answer with every list cut to its first ``keep`` items: still exactly the
    answer's shape, at a size a reader of the spec can take in."""
    if isinstance(document, list):
        return [shortened(item, keep) for item in document[:keep]]
    if isinstance(document, dict):
        return {key: shortened(value, keep) for key, value in document.items()}
    return document


def fhir_doc_with_example(resource: str, description: str, example: dict) -> dict[str, Any]:
    """``fhir_doc``'s arguments with an example of the resource: on a copy of its media type
    object, which the spec's other FHIR answers share."""
    doc = fhir_doc(resource, description)
    content = doc["responses"]["200"]["content"]
    for media_type, media in content.items():
        content[media_type] = {**media, "example": example}
    return doc
