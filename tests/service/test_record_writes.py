"""The statement that stores a record writes an empty value as NULL, with no parameter: whatever
the row holds, the database keeps exactly its values, on SQLite and PostgreSQL, with and
without an Idempotency-Key. An assessment is one row, which holds its plan."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import orjson
import pytest
import sqlalchemy as sa

from rules import load_library, prescription_from_assessment
from service.evaluation import assessment_of
from service.examples import SELF_CARE_TECHNIQUE
from service.record_creation import assessment_record
from service.storage import Storage, Subject, plan_id_for
from service.storage.packing import pack_answer, pack_request
from service.storage.record_types import new_record_id
from service.storage.record_writes import insert_statement
from service.storage.tables import records

pytestmark = pytest.mark.postgres

CREATED = datetime(2026, 12, 4, 10, 11, 12, 131415, tzinfo=UTC)


@pytest.fixture(scope="module")
def storage(migrated_database_url):
    storage = Storage(migrated_database_url)
    yield storage
    storage.dispose()


@pytest.fixture(scope="module")
def tenant(storage) -> tuple[int, int]:
    key, _ = storage.keys.create(f"writes-{uuid.uuid4().hex[:8]}")
    principal = storage.keys.authenticate(key)
    return principal.tenant_id, principal.key_id


def assessment_row(tenant: tuple[int, int], *, subject: bool, key: bool, api_key: bool,
                   reassessment_of: str | None, json_columns: bool) -> dict:  # fmt: skip
    """An assessment's row as the store makes it."""
    tenant_id, key_id = tenant
    assessment_id = new_record_id()
    return {
        "id": assessment_id,
        "tenant_id": tenant_id,
        "api_key_id": key_id if api_key else None,
        "kind": "assessment",
        "assessment_id": None,
        "plan_id": plan_id_for(assessment_id),
        "reassessment_of": reassessment_of,
        "created_at": CREATED,
        "request_id": f"request-{uuid.uuid4().hex}",
        "rules_version": "2.0.0",
        "subject_system": "https://example.org/mrn" if subject else None,
        "subject_value": "12345" if subject else None,
        "triage_level": "self_care",
        # Before 0009 the JSON columns held the request and answer; JSON null since.
        "request": {"pain": {"intensity": 3}} if json_columns else None,
        "response": {"triage": {"level": "self_care"}} if json_columns else None,
        "request_packed": pack_request(b'{"pain":{"intensity":3}}'),
        "answer": pack_answer(b'{"triage":{"level":"self_care"}}'),
        "idempotency_key": f"key-{uuid.uuid4().hex}" if key else None,
        "request_fingerprint": "f" * 64 if key else None,
    }


def stored_values(storage: Storage, record_id: str) -> dict:
    with storage.autocommit() as connection:
        row = connection.execute(sa.select(records).where(records.c.id == record_id)).mappings()
        return dict(row.one())


SHAPES = list(itertools.product([False, True], repeat=5))


@pytest.mark.parametrize(("subject", "key", "api_key", "reassessment", "json_columns"), SHAPES)
def test_every_value_is_stored_exactly(storage, tenant, subject, key, api_key, reassessment,
                                       json_columns):  # fmt: skip
    reassessment_of = None
    if reassessment:
        original = assessment_row(
            tenant, subject=False, key=False, api_key=True, reassessment_of=None,
            json_columns=False,
        )  # fmt: skip
        _insert(storage, tenant, original)
        reassessment_of = original["id"]
    row = assessment_row(
        tenant, subject=subject, key=key, api_key=api_key, reassessment_of=reassessment_of,
        json_columns=json_columns,
    )  # fmt: skip
    assert _insert(storage, tenant, row) == [row["id"]]
    assert stored_values(storage, row["id"]) == row


def _insert(storage: Storage, tenant: tuple[int, int], row: dict) -> list[str]:
    statement, parameters = insert_statement(row, tenant[0], row["idempotency_key"])
    with storage.write() as connection:
        return [inserted.id for inserted in statement.rows(connection, parameters)]


def test_empty_values_are_not_bound(tenant):
    row = assessment_row(
        tenant, subject=False, key=False, api_key=True, reassessment_of=None, json_columns=False
    )
    _, parameters = insert_statement(row, tenant[0], None)
    assert sorted(parameters) == sorted([
        "id", "tenant_id", "api_key_id", "kind", "plan_id", "created_at", "request_id",
        "rules_version", "triage_level", "request", "response", "answer", "request_packed",
    ])  # fmt: skip


@pytest.mark.parametrize("key", [None, "replayed-key"], ids=["no key", "with a key"])
def test_create_writes_one_row_returns_it_as_a_read_gives_it_back_and_its_plan_reads_back(
    storage, tenant, key
):
    tenant_id, key_id = tenant
    library = load_library()
    sent, _, assessment = assessment_of(library.get, dict(SELF_CARE_TECHNIQUE))
    new_record = assessment_record(sent, assessment, Subject("https://example.org/mrn", "7"))
    key = key and f"{key}-{uuid.uuid4().hex}"
    request_id = f"returned-{uuid.uuid4().hex}"

    def create():
        return storage.records.create(
            tenant_id=tenant_id,
            api_key_id=key_id,
            request_id=request_id,
            new_record=new_record,
            idempotency_key=key,
            fingerprint=key and "f" * 64,
        )

    returned, replayed = create()
    assert not replayed
    read = storage.records.get(tenant_id, "assessment", returned.id)
    assert returned == read
    assert returned.response_json == read.response_json == orjson.dumps(assessment)
    with storage.autocommit() as connection:
        rows = connection.execute(
            sa.select(records.c.id).where(records.c.request_id == request_id)
        ).scalars()
        assert set(rows) == {returned.id}  # the assessment's row holds its plan
    plan = storage.records.get(tenant_id, "exercise_prescription", returned.plan_id)
    assert plan.response == prescription_from_assessment(assessment)
    assert (plan.id, plan.assessment_id, plan.request) == (
        plan_id_for(returned.id),
        returned.id,
        {"assessment_id": returned.id},
    )
    assert (plan.created_at, plan.request_id, plan.subject, plan.triage_level) == (
        read.created_at,
        read.request_id,
        read.subject,
        read.triage_level,
    )
    if key:
        assert create() == (read, True)
