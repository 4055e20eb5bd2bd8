"""The records indexes on optional columns (0010) hold only the rows with a value, on SQLite and
PostgreSQL, and each database still answers the lookups they serve from them: a subject's
page in order, a record's children (the erasure's cascade)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from service.storage import Storage
from service.storage.tables import records
from tests.conftest import scratch_postgres_database

pytestmark = pytest.mark.postgres

PARTIAL = {
    "ix_records_assessment_id": "assessment_id",
    "ix_records_reassessment_of": "reassessment_of",
    "ix_records_tenant_subject_kind_created": "subject_system",
}
FULL = ("ix_records_tenant_kind_created",)


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path):
    if request.param == "sqlite":
        storage = Storage(f"sqlite:///{tmp_path / 'indexes.sqlite3'}")
        yield storage
        storage.dispose()
        return
    server = request.getfixturevalue("postgres_database")
    with scratch_postgres_database(server, "popliteal_indexes") as url:
        storage = Storage(url)
        yield storage
        storage.dispose()


def index_conditions(storage: Storage) -> dict[str, str | None]:
    """Each records index's name -> its WHERE condition as the database keeps it (None: full)."""
    with storage.autocommit() as connection:
        if storage.backend == "sqlite":
            rows = connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                " AND tbl_name = 'records' AND sql IS NOT NULL"
            )
        else:
            rows = connection.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'records'"
                " AND indexname LIKE 'ix%%'"
            )
        conditions = {}
        for name, definition in rows:
            where = re.search(r"\bWHERE\b(.*)$", definition, re.IGNORECASE)
            conditions[name] = where and re.sub(r"[()\s]+", " ", where.group(1)).strip()
        return conditions


def test_indexes_on_optional_columns_leave_out_the_rows_without_a_value(storage):
    storage.upgrade()
    expected = {name: f"{column} IS NOT NULL" for name, column in PARTIAL.items()}
    assert index_conditions(storage) == {**expected, **dict.fromkeys(FULL)}
    storage.downgrade("0009")
    assert index_conditions(storage) == dict.fromkeys([*PARTIAL, *FULL])
    storage.upgrade()
    assert index_conditions(storage) == {**expected, **dict.fromkeys(FULL)}


START = datetime(2026, 1, 1, tzinfo=UTC)
KIND = "assessment"


def fill(storage: Storage, count: int) -> tuple[int, list[dict]]:
    """``count`` assessments, every other one about a subject, each with a plan in a row of
    its own (as stored before 0011; the indexes serve those rows too); analysed."""
    storage.upgrade()
    key, _ = storage.keys.create("indexes")
    tenant_id = storage.keys.authenticate(key).tenant_id
    rows = []
    for n in range(count):
        assessment, plan = str(uuid.uuid4()), str(uuid.uuid4())
        common = {
            "tenant_id": tenant_id,
            "created_at": START + timedelta(seconds=n),
            "rules_version": "2.0.0",
            "request_id": "r",
            "request": {},
            "response": {},
            "subject_system": "urn:example:app" if n % 2 else None,
            "subject_value": f"person-{n % 50}" if n % 2 else None,
        }
        rows.append({**common, "id": assessment, "kind": "assessment", "plan_id": plan})
        rows.append(
            {**common, "id": plan, "kind": "exercise_prescription", "assessment_id": assessment}
        )
    with storage.transaction() as connection:
        connection.execute(sa.insert(records), [{"plan_id": None, **row} for row in rows])
        connection.exec_driver_sql("ANALYZE records" if storage.backend != "sqlite" else "ANALYZE")
    return tenant_id, rows


def plan_of(storage: Storage, statement: str, parameters: dict) -> str:
    """The plan the database chooses for a statement, as text. On PostgreSQL the generic plan,
    the one a prepared statement (and a foreign key's cascade) keeps."""
    with storage.autocommit() as connection:
        if storage.backend == "sqlite":
            explained = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(row[-1] for row in explained)
        names = list(parameters)
        for number, name in enumerate(names, start=1):
            statement = statement.replace(f":{name}", f"${number}")
        arguments = ", ".join(repr(parameters[name]) for name in names)
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        connection.exec_driver_sql(f"PREPARE looked_up AS {statement}")
        try:
            explained = connection.exec_driver_sql(f"EXPLAIN EXECUTE looked_up({arguments})")
            return "\n".join(explained.scalars())
        finally:
            connection.exec_driver_sql("DEALLOCATE looked_up")


def test_a_subjects_page_is_read_from_the_partial_index_in_order(storage):
    tenant_id, _ = fill(storage, 2000)
    plan = plan_of(
        storage,
        "SELECT id FROM records WHERE tenant_id = :tenant AND subject_system = :system"
        " AND subject_value = :value AND kind = :kind ORDER BY created_at DESC, id DESC LIMIT 21",
        {"tenant": tenant_id, "system": "urn:example:app", "value": "person-3", "kind": KIND},
    )
    assert "ix_records_tenant_subject_kind_created" in plan, plan
    assert "Sort" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    assert "Filter" not in plan, plan


@pytest.mark.parametrize("column", ["assessment_id", "reassessment_of"])
def test_a_records_children_are_found_through_the_partial_index(storage, column):
    """What an erasure's cascade looks up: the rows that name the erased record."""
    _, rows = fill(storage, 2000)
    cascade = f"DELETE FROM records WHERE {column} = :parent"  # noqa: S608 (a column name)
    plan = plan_of(storage, cascade, {"parent": rows[0]["id"]})
    assert f"ix_records_{column}" in plan, plan
