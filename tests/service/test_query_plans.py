"""PostgreSQL's plans: the listing by subject reads its page from the index, in order (no filter
on the rows it reads, no sort); a record found by id uses the primary key, even in a table
without statistics."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from service.storage import Storage, Subject
from service.storage.tables import records
from tests.conftest import POSTGRES_URL, require_server, scratch_postgres_database

pytestmark = pytest.mark.postgres


@contextlib.contextmanager
def tenant_with_records(row_of: Callable[[int, int], dict], count: int, analyze: bool):
    """A migrated scratch PostgreSQL database whose one tenant holds ``count`` records, made by
    ``row_of(n, tenant_id)``; with ``analyze``, the table's statistics are gathered."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_postgres_database(POSTGRES_URL, "popliteal_plans"))
        except sa.exc.OperationalError as error:
            require_server("PostgreSQL", str(error.orig).strip().splitlines()[0])
        storage = Storage(url)
        stack.callback(storage.dispose)
        storage.upgrade()
        key, _ = storage.keys.create("plans")
        principal = storage.keys.authenticate(key)
        rows = [row_of(n, principal.tenant_id) for n in range(count)]
        with storage.transaction() as connection:
            connection.execute(sa.insert(records), rows)
            if analyze:
                connection.exec_driver_sql("ANALYZE records")
        yield storage, principal, rows


def _record_row(n: int, tenant_id: int, **columns) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "kind": "assessment",
        "created_at": START + timedelta(seconds=n),
        "rules_version": "2.0.0",
        "request_id": "r",
        "request": {},
        "response": {},
        **columns,
    }


START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def populated():
    def row_of(n: int, tenant_id: int) -> dict:
        return _record_row(
            n,
            tenant_id,
            kind=("assessment", "exercise_prescription")[n % 2],
            subject_system="urn:example:app",
            subject_value=f"person-{n % 50}",
        )

    with tenant_with_records(row_of, 5000, analyze=True) as (storage, principal, _):
        yield storage, principal


def test_a_subjects_page_is_read_from_the_index_in_order(populated):
    storage, principal = populated
    statements = []

    def capture(_connection, _cursor, statement, parameters, _context, _many):
        if "FROM records" in statement and "EXPLAIN" not in statement:
            statements.append((statement, parameters))

    event.listen(storage.engine, "before_cursor_execute", capture)
    page = storage.records.page(
        principal.tenant_id,
        limit=20,
        subject=Subject("urn:example:app", "person-2"),
    )
    event.remove(storage.engine, "before_cursor_execute", capture)
    assert len(page.items) == 20
    [(statement, parameters)] = statements
    with storage.engine.connect() as connection:
        plan = "\n".join(connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())
    assert "ix_records_tenant_subject_kind_created" in plan, plan
    assert "Sort" not in plan, plan
    assert "Filter" not in plan, plan


@pytest.fixture
def unanalyzed():
    """A tenant's records in a table PostgreSQL has no statistics for yet, as after a deploy."""
    with tenant_with_records(_record_row, 600, analyze=False) as (storage, principal, rows):
        yield storage, principal, rows[0]["id"]


def test_a_record_is_found_by_its_primary_key_even_before_the_table_has_statistics(unanalyzed):
    """The plan a worker's prepared statement keeps for its connection's life: a lookup by id
    uses the primary key, never an index that begins with the tenant (which reads every row of
    the tenant once the table grows)."""
    storage, principal, record_id = unanalyzed
    statements = []

    def capture(_connection, _cursor, statement, parameters, _context, _many):
        if "FROM records" in statement:
            statements.append(statement)

    event.listen(storage.engine, "before_cursor_execute", capture)
    record = storage.records.get(principal.tenant_id, "assessment", record_id)
    event.remove(storage.engine, "before_cursor_execute", capture)
    assert record is not None
    assert record.id == record_id
    other_tenant = storage.keys.authenticate(storage.keys.create("other")[0]).tenant_id
    assert storage.records.get(other_tenant, "assessment", record_id) is None
    [statement] = statements
    # Each bind parameter of the statement numbered, with its value, as the driver prepares it.
    values = {"record_id": record_id, "kind": "assessment", "tenant_id": principal.tenant_id}
    present = [name for name in values if f"%({name})s" in statement]
    for number, name in enumerate(present, start=1):
        statement = statement.replace(f"%({name})s", f"${number}")
    arguments = ", ".join(repr(values[name]) for name in present)
    with storage.engine.connect() as connection:
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        connection.exec_driver_sql(f"PREPARE lookup AS {statement}")
        plan = "\n".join(
            connection.exec_driver_sql(f"EXPLAIN EXECUTE lookup({arguments})").scalars()
        )
    assert "Index Scan using pk_records on records " in plan, plan
    assert "uq_records_tenant_id_idempotency_key" not in plan, plan
    assert "ix_records_tenant" not in plan, plan
