"""CDS Hooks state: token ids already used (replay protection), and card feedback."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from service.storage.connections import Connections
from service.storage.errors import translate_unavailable
from service.storage.keys import ensure_tenant
from service.storage.tables import cds_feedback, cds_token_uses


@dataclass(frozen=True, slots=True)
class Feedback:
    card_id: str
    outcome: str
    accepted_suggestions: list[dict[str, Any]]
    override_reason: dict[str, Any] | None
    outcome_at: datetime


class CdsStore:
    def __init__(self, storage: Connections) -> None:
        self._storage = storage

    @translate_unavailable
    def use_token(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """Record a token id as used; False if it was used before (a replay). ``expires_at``
        is when the token stops being accepted (its exp plus the verifier's leeway): only ids
        past that moment are forgotten, since such a token is refused for its expiry anyway."""
        now = datetime.now(UTC)
        try:
            with self._storage.transaction() as connection:
                connection.execute(
                    sa.delete(cds_token_uses).where(cds_token_uses.c.expires_at < now)
                )
                connection.execute(
                    sa.insert(cds_token_uses).values(issuer=issuer, jti=jti, expires_at=expires_at)
                )
        except IntegrityError:
            return False
        return True

    @translate_unavailable
    def tenant_id(self, name: str) -> int:
        """The tenant's id, created on first use (a CDS client is configured with its name)."""
        try:
            with self._storage.transaction() as connection:
                return ensure_tenant(connection, name, datetime.now(UTC))
        except IntegrityError:  # created meanwhile by another worker: it is there now
            with self._storage.transaction() as connection:
                return ensure_tenant(connection, name, datetime.now(UTC))

    @translate_unavailable
    def record_feedback(
        self, tenant_id: int, issuer: str, service_id: str, items: list[Feedback]
    ) -> None:
        now = datetime.now(UTC)
        with self._storage.transaction() as connection:
            connection.execute(
                sa.insert(cds_feedback),
                [
                    {
                        "tenant_id": tenant_id,
                        "issuer": issuer,
                        "service_id": service_id,
                        "card_id": item.card_id,
                        "outcome": item.outcome,
                        "accepted_suggestions": item.accepted_suggestions,
                        "override_reason": item.override_reason,
                        "outcome_at": item.outcome_at,
                        "received_at": now,
                    }
                    for item in items
                ],
            )

    @translate_unavailable
    def feedback(self, tenant_id: int, card_id: str) -> list[Feedback]:
        query = (
            sa.select(cds_feedback)
            .where(cds_feedback.c.tenant_id == tenant_id, cds_feedback.c.card_id == card_id)
            .order_by(cds_feedback.c.id)
        )
        with self._storage.autocommit() as connection:
            return [
                Feedback(
                    row.card_id,
                    row.outcome,
                    row.accepted_suggestions,
                    row.override_reason,
                    row.outcome_at,
                )
                for row in connection.execute(query)
            ]
