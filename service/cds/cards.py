"""The cards a CDS Hooks call answers, for the stored assessment it is about: its plan looked
up, and what the pure builder (``schemas.cds_hooks.cards``) needs gathered from the record,
the rules version that made it and the service's public URL."""

from __future__ import annotations

from typing import Any

from flask import current_app, g

from schemas.cds_hooks.cards import PlanOffer, card
from service.records_as_fhir import care_plan_for, level_text, record_head
from service.records_as_json import assessment_path, prescription_path
from service.state import state
from service.storage import EXERCISE_PRESCRIPTION, Record


def cards_for(record: Record, patient_id: str) -> list[dict[str, Any]]:
    """One card for a stored assessment, offering its plan (if it is still stored) to the
    patient whose chart is open."""
    base = current_app.config["CDS_BASE_URL"]
    plan = state().storage.records.get(g.principal.tenant_id, EXERCISE_PRESCRIPTION, record.plan_id)
    offer = None
    if plan is not None:
        offer = PlanOffer(plan.id, f"{base}{prescription_path(plan.id)}/fhir", care_plan_for(plan))
    version = record.rules_version
    return [
        card(
            record_head(record),
            record.response,
            level_text(version, short=True),
            rules_url=f"{base}/v1/rules/{version}",
            bundle_url=f"{base}{assessment_path(record.id)}/fhir",
            patient_id=patient_id,
            plan=offer,
        )
    ]
