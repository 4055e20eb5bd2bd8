"""Erasure: a record goes for real, with everything derived from it and the traces it left
(its Idempotency-Keys are kept only as hashes, so that a retry cannot store it again)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from service.storage.inline_plans import HOLDS_ITS_PLAN, assessment_id_for, holds_its_plan
from service.storage.keys import hash_key
from service.storage.record_types import EXERCISE_PRESCRIPTION, PartOfAssessment
from service.storage.tables import cds_feedback, erased_idempotency_keys, erasures, records


def erase_record(
    connection: Connection, tenant_id: int, api_key_id: int | None, kind: str, record_id: str
) -> bool:
    """Delete a record and everything derived from it, in the caller's transaction: an
    assessment's plan (with its row, when the row holds it), the prescriptions made from it,
    its reassessments, and theirs in turn.

    False when the tenant has no such record. A prescription that is an assessment's plan
    raises PartOfAssessment: erasing the assessment erases it. (The foreign keys cascade
    too, so a reassessment stored while its original is being erased cannot outlive it.)
    """
    holder = assessment_id_for(record_id) if kind == EXERCISE_PRESCRIPTION else None
    if holder is not None:  # a plan its assessment's row holds: erased with it, never alone
        row = connection.execute(
            sa.select(records.c.id, records.c.kind, records.c.plan_id).where(
                records.c.tenant_id == tenant_id, records.c.id == holder
            )
        ).first()
        if row is not None and holds_its_plan(row):
            raise PartOfAssessment(holder)
        return False
    row = connection.execute(
        sa.select(records.c.id, records.c.assessment_id).where(
            records.c.tenant_id == tenant_id,
            records.c.kind == kind,
            records.c.id == record_id,
        )
    ).first()
    if row is None:
        return False
    if row.assessment_id is not None:
        raise PartOfAssessment(row.assessment_id)
    derived = _derived_from(connection, tenant_id, record_id)
    held_plans = _held_plans(connection, tenant_id, [record_id, *derived])
    _remember_erased_keys(connection, tenant_id, [record_id, *derived])
    _erase_feedback(connection, tenant_id, [record_id, *derived])
    for chunk in _chunks(derived):
        connection.execute(
            sa.delete(records).where(records.c.tenant_id == tenant_id, records.c.id.in_(chunk))
        )
    connection.execute(
        sa.delete(records).where(records.c.tenant_id == tenant_id, records.c.id == record_id)
    )
    connection.execute(
        sa.insert(erasures).values(
            tenant_id=tenant_id,
            api_key_id=api_key_id,
            record_id=record_id,
            kind=kind,
            records_erased=1 + len(derived) + held_plans,
            erased_at=datetime.now(UTC),
        )
    )
    return True


# Ids per IN (...) list: well under every database's limit on bound parameters.
_IN_LIST_SIZE = 500


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[start : start + _IN_LIST_SIZE] for start in range(0, len(ids), _IN_LIST_SIZE)]


def _held_plans(connection, tenant_id: int, record_ids: list[str]) -> int:
    """How many of these records' rows hold their plan: records erased with them."""
    count = 0
    for chunk in _chunks(record_ids):
        count += connection.execute(
            sa.select(sa.func.count()).where(
                records.c.tenant_id == tenant_id, records.c.id.in_(chunk), HOLDS_ITS_PLAN
            )
        ).scalar_one()
    return count


def _derived_from(connection, tenant_id: int, record_id: str) -> list[str]:
    """The ids of every record with a row derived from this one, at any depth: prescriptions
    made from it (its plan, when stored before 0011 with a row of its own) and reassessments
    of it, then those derived from these."""
    found: list[str] = []
    seen = {record_id}
    frontier = [record_id]
    while frontier:
        children: list[str] = []
        for chunk in _chunks(frontier):
            children += connection.execute(
                sa.select(records.c.id).where(
                    records.c.tenant_id == tenant_id,
                    sa.or_(
                        records.c.assessment_id.in_(chunk),
                        records.c.reassessment_of.in_(chunk),
                    ),
                )
            ).scalars()
        frontier = [child for child in dict.fromkeys(children) if child not in seen]
        seen.update(frontier)
        found += frontier
    return found


def _remember_erased_keys(connection, tenant_id: int, record_ids: list[str]) -> None:
    """Keep the hashes of the Idempotency-Keys of records about to be erased."""
    keys: list[str] = []
    for chunk in _chunks(record_ids):
        keys += connection.execute(
            sa.select(records.c.idempotency_key).where(
                records.c.tenant_id == tenant_id,
                records.c.id.in_(chunk),
                records.c.idempotency_key.is_not(None),
            )
        ).scalars()
    if keys:
        now = datetime.now(UTC)
        connection.execute(
            sa.insert(erased_idempotency_keys),
            [{"tenant_id": tenant_id, "key_hash": hash_key(key), "erased_at": now} for key in keys],
        )


def _erase_feedback(connection, tenant_id: int, record_ids: list[str]) -> None:
    """CDS feedback on the cards of erased records: a card's id is its assessment's id, and
    feedback can carry a clinician's comment about the patient."""
    for chunk in _chunks(record_ids):
        connection.execute(
            sa.delete(cds_feedback).where(
                cds_feedback.c.tenant_id == tenant_id, cds_feedback.c.card_id.in_(chunk)
            )
        )
