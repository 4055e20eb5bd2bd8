"""The statement that stores records binds a value the rows share once and writes an empty one
as NULL: whatever the rows hold, the database keeps exactly their values, on SQLite and
PostgreSQL, with and without an Idempotency-Key."""

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
from service.record_creation import assessment_records
from service.storage import Storage, Subject
from service.storage.packing import pack_answer, pack_request
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


def assessment_and_plan(tenant: tuple[int, int], *, subject: bool, key: bool, api_key: bool,
                        reassessment_of: str | None, json_columns: bool) -> list[dict]:  # fmt: skip
    """Rows as the store makes them: the values both rows share are the very same objects."""
    tenant_id, key_id = tenant
    assessment_id, plan_id = str(uuid.uuid4()), str(uuid.uuid4())
    shared = {
        "tenant_id": tenant_id,
        "api_key_id": key_id if api_key else None,
        "created_at": CREATED,
        "request_id": f"request-{uuid.uuid4().hex}",
        "rules_version": "2.0.0",
        "subject_system": "https://example.org/mrn" if subject else None,
        "subject_value": "12345" if subject else None,
        "triage_level": "self_care",
        # Before 0009 the JSON columns held the request and answer; JSON null since.
        "request": {"pain": {"intensity": 3}} if json_columns else None,
        "response": {"triage": {"level": "self_care"}} if json_columns else None,
        "idempotency_key": None,
        "request_fingerprint": None,
    }
    assessment = {
        **shared,
        "id": assessment_id,
        "kind": "assessment",
        "assessment_id": None,
        "plan_id": plan_id,
        "reassessment_of": reassessment_of,
        "request_packed": pack_request(b'{"pain":{"intensity":3}}'),
        "answer": pack_answer(b'{"triage":{"level":"self_care"}}'),
        "idempotency_key": f"key-{uuid.uuid4().hex}" if key else None,
        "request_fingerprint": "f" * 64 if key else None,
    }
    plan = {
        **shared,
        "id": plan_id,
        "kind": "exercise_prescription",
        "assessment_id": assessment_id,
        "plan_id": None,
        "reassessment_of": None,
        "request_packed": pack_request(b"{}"),
        "answer": None,
    }
    return [assessment, plan]


def stored_values(storage: Storage, ids: list[str]) -> list[dict]:
    with storage.autocommit() as connection:
        rows = connection.execute(sa.select(records).where(records.c.id.in_(ids))).mappings()
        by_id = {row["id"]: dict(row) for row in rows}
    return [by_id[record_id] for record_id in ids]


SHAPES = list(itertools.product([False, True], repeat=5))


@pytest.mark.parametrize(("subject", "key", "api_key", "reassessment", "json_columns"), SHAPES)
def test_every_value_is_stored_exactly(storage, tenant, subject, key, api_key, reassessment,
                                       json_columns):  # fmt: skip
    reassessment_of = None
    if reassessment:
        [original, original_plan] = assessment_and_plan(
            tenant, subject=False, key=False, api_key=True, reassessment_of=None,
            json_columns=False,
        )  # fmt: skip
        _insert(storage, tenant, [original, original_plan])
        reassessment_of = original["id"]
    rows = assessment_and_plan(
        tenant, subject=subject, key=key, api_key=api_key, reassessment_of=reassessment_of,
        json_columns=json_columns,
    )  # fmt: skip
    assert _insert(storage, tenant, rows) == [row["id"] for row in rows]
    assert stored_values(storage, [row["id"] for row in rows]) == rows


def _insert(storage: Storage, tenant: tuple[int, int], rows: list[dict]) -> list[str]:
    statement, parameters = insert_statement(rows, tenant[0], rows[0]["idempotency_key"])
    with storage.write() as connection:
        return [row.id for row in statement.rows(connection, parameters)]


def test_values_the_rows_share_are_bound_once_and_empty_ones_not_at_all(tenant):
    rows = assessment_and_plan(
        tenant, subject=False, key=False, api_key=True, reassessment_of=None, json_columns=False
    )
    _, parameters = insert_statement(rows, tenant[0], None)
    # The assessment's own values, and the plan's id, kind, assessment and request.
    assert sorted(parameters) == sorted([
        "id", "tenant_id", "api_key_id", "kind", "plan_id", "created_at", "request_id",
        "rules_version", "triage_level", "request", "response", "answer", "request_packed",
        "id_1", "kind_1", "assessment_id_1", "request_packed_1",
    ])  # fmt: skip


def test_an_equal_value_that_is_another_object_is_still_bound_for_its_own_row(storage, tenant):
    """Sharing is by identity: a value equal to the first row's but made apart is bound as the
    row's own, and stored the same."""
    rows = assessment_and_plan(
        tenant, subject=True, key=False, api_key=True, reassessment_of=None, json_columns=False
    )
    rows[1]["subject_value"] = "".join(["123", "45"])  # equal, not the same object
    rows[1]["triage_level"] = "urgent"
    _, parameters = insert_statement(rows, tenant[0], None)
    assert {"subject_value_1", "triage_level_1"} <= set(parameters)
    _insert(storage, tenant, rows)
    assert stored_values(storage, [row["id"] for row in rows]) == rows


@pytest.mark.parametrize("key", [None, "replayed-key"], ids=["no key", "with a key"])
def test_create_returns_the_assessment_as_a_read_gives_it_back_and_stores_its_plan(
    storage, tenant, key
):
    tenant_id, key_id = tenant
    library = load_library()
    sent, _, assessment = assessment_of(library.get, dict(SELF_CARE_TECHNIQUE))
    new_records = assessment_records(sent, assessment, Subject("https://example.org/mrn", "7"))
    key = key and f"{key}-{uuid.uuid4().hex}"

    def create():
        return storage.records.create(
            tenant_id=tenant_id,
            api_key_id=key_id,
            request_id="returned",
            new_records=new_records,
            idempotency_key=key,
            fingerprint=key and "f" * 64,
        )

    returned, replayed = create()
    assert not replayed
    read = storage.records.get(tenant_id, "assessment", returned.id)
    assert returned == read
    assert returned.response_json == read.response_json == orjson.dumps(assessment)
    plan = storage.records.get(tenant_id, "exercise_prescription", returned.plan_id)
    assert plan.response == prescription_from_assessment(assessment)
    assert plan.assessment_id == returned.id
    if key:
        assert create() == (read, True)
