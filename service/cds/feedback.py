"""Feedback on the cards (CDS Hooks 2.0, Feedback): what the users did with each card, recorded
once each card is known to be a stored assessment of the caller's tenant."""

from __future__ import annotations

from typing import Any

from flask import g

from service.cds.tokens import CdsCaller
from service.state import state
from service.storage import ASSESSMENT, Feedback


class UnknownCards(Exception):
    """Cards no stored assessment of the caller's tenant answers to: a 404 that names them
    (another tenant's card answers exactly as one that does not exist)."""

    def __init__(self, cards: list[str]):
        self.cards = cards
        super().__init__(
            "No card of this service has this uuid for your organisation: " + ", ".join(cards)
        )


def record_feedback(caller: CdsCaller, service_id: str, items: list[dict[str, Any]]) -> None:
    """Record every item, or none: UnknownCards when one names a card not stored."""
    records = state().storage.records
    unknown = [
        item["card"]
        for item in items
        if records.get(g.principal.tenant_id, ASSESSMENT, item["card"]) is None
    ]
    if unknown:
        raise UnknownCards(unknown)
    state().storage.cds.record_feedback(
        g.principal.tenant_id,
        caller.client.issuer,
        service_id,
        [
            Feedback(
                item["card"],
                item["outcome"],
                item.get("acceptedSuggestions", []),
                item.get("overrideReason"),
                item["outcomeTimestamp"],
            )
            for item in items
        ],
    )
