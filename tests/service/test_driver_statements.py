"""Statements run on the driver's cursor (``DriverStatement``) read the rows SQLAlchemy's own
execute reads, and fail with the errors it raises, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
import sqlalchemy as sa

from service.storage import Storage, StorageUnavailable
from service.storage import engine as storage_engine
from service.storage.driver_statements import DriverStatement
from service.storage.packing import pack_answer, pack_request
from service.storage.record_rows import RECORD_BY_ID, RECORD_OF_KIND_BY_ID
from service.storage.record_writes import insert_statement
from service.storage.tables import records

CREATED = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)
INSERT_RETURNING_ID = DriverStatement(
    sa.insert(records)
    .values({column.name: sa.bindparam(column.name, type_=column.type) for column in records.c})
    .returning(records.c.id, records.c.created_at)
)


@pytest.fixture
def storage(migrated_database_url):
    storage = Storage(migrated_database_url)
    yield storage
    storage.dispose()


@pytest.fixture
def tenant_id(storage) -> int:
    return _new_tenant(storage)


@pytest.fixture
def postgres_storage(postgres_database):
    """Storage on PostgreSQL only: a connection lost on the server's side."""
    storage = Storage(postgres_database)
    storage.upgrade()
    yield storage
    storage.dispose()


@pytest.fixture
def postgres_record(postgres_storage) -> dict:
    row = _row(_new_tenant(postgres_storage), request={}, response={})
    with postgres_storage.transaction() as connection:
        connection.execute(sa.insert(records), [row])
    return row


def _new_tenant(storage: Storage) -> int:
    key, _ = storage.keys.create(f"driver-{uuid.uuid4().hex[:8]}")
    return storage.keys.authenticate(key).tenant_id


def _row(tenant_id: int, **columns) -> dict:
    row = dict.fromkeys(records.c.keys())
    row.update(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        kind="assessment",
        created_at=CREATED,
        request_id="req-1",
        rules_version="2.0.0",
        triage_level="self_care",
    )
    row.update(columns)
    return row


@pytest.fixture
def stored_rows(storage, tenant_id) -> dict[str, dict]:
    """An assessment stored packed with its plan in a row of its own (as before 0011: the
    read joins the plan's row to its assessment's answer), and one assessment as stored
    before packing (JSON columns), with a subject."""
    answer = {"rules_version": "2.0.0", "exercise_plan": {"status": "ok", "é": 1}}
    packed = _row(
        tenant_id,
        answer=pack_answer(orjson.dumps(answer)),
        request_packed=pack_request(b'{"symptoms":{"onset":"gradual"}}'),
        request=None,
        response=None,
    )
    plan = _row(
        tenant_id,
        kind="exercise_prescription",
        assessment_id=packed["id"],
        request_packed=pack_request(b"{}"),
        request=None,
        response=None,
    )
    packed["plan_id"] = plan["id"]
    legacy = _row(
        tenant_id,
        request={"symptoms": {"onset": "sudden"}},
        response={"triage": {"level": "urgent"}, "unicode": "ü"},
        subject_system="urn:example:app",
        subject_value="person-1",
    )
    with storage.transaction() as connection:
        connection.execute(sa.insert(records), [packed, plan, legacy])
    return {"packed": packed, "plan": plan, "legacy": legacy}


@pytest.mark.parametrize("which", ["packed", "plan", "legacy", "missing"])
def test_a_record_read_on_the_cursor_is_the_row_sqlalchemy_reads(storage, stored_rows, which):
    record_id = stored_rows[which]["id"] if which != "missing" else str(uuid.uuid4())
    kind = stored_rows.get(which, {}).get("kind", "assessment")
    for statement, values in (
        (RECORD_BY_ID, {"record_id": record_id}),
        (RECORD_OF_KIND_BY_ID, {"record_id": record_id, "kind": kind}),
    ):
        with storage.autocommit() as connection:
            ours = statement.first(connection, values)
            theirs = connection.execute(statement.statement, values).first()
        if which == "missing":
            assert ours is None
            assert theirs is None
            continue
        assert ours._asdict() == theirs._asdict()
        # Equal is not enough: the same types too (an aware time, decoded JSON, bytes).
        assert [type(value) for value in ours] == [type(value) for value in theirs]
        assert ours.created_at == CREATED
        assert ours.created_at.tzinfo is not None


def test_returning_rows_are_read_as_sqlalchemy_reads_them(storage, tenant_id):
    row = _row(tenant_id, request={}, response={})
    with storage.autocommit() as connection:
        [returned] = INSERT_RETURNING_ID.rows(connection, row)
    assert returned.id == row["id"]
    assert returned.created_at == CREATED
    assert returned.created_at.tzinfo is not None


def test_a_driver_error_is_sqlalchemys_error_with_the_values_hidden(storage, tenant_id):
    row = _row(tenant_id, request={}, response={}, request_id="a-value-never-logged")
    with storage.autocommit() as connection:
        INSERT_RETURNING_ID.rows(connection, row)
    with storage.autocommit() as connection:
        with pytest.raises(sa.exc.IntegrityError) as raised:
            INSERT_RETURNING_ID.rows(connection, row)
        assert isinstance(raised.value.orig, connection.dialect.loaded_dbapi.IntegrityError)
        assert "a-value-never-logged" not in str(raised.value)
        assert not raised.value.connection_invalidated
        # The connection stays usable.
        assert RECORD_BY_ID.first(connection, {"record_id": row["id"]}).id == row["id"]


def test_listeners_see_the_statement_and_its_parameters(storage, stored_rows):
    seen = []

    def before(_connection, _cursor, statement, parameters, context, many):
        seen.append(("before", statement, parameters, context, many))

    def after(_connection, _cursor, statement, parameters, context, many):
        seen.append(("after", statement, parameters, context, many))

    sa.event.listen(storage.engine, "before_cursor_execute", before)
    sa.event.listen(storage.engine, "after_cursor_execute", after)
    try:
        with storage.autocommit() as connection:
            RECORD_BY_ID.first(connection, {"record_id": stored_rows["packed"]["id"]})
    finally:
        sa.event.remove(storage.engine, "before_cursor_execute", before)
        sa.event.remove(storage.engine, "after_cursor_execute", after)
    assert [entry[0] for entry in seen] == ["before", "after"]
    for _, statement, parameters, context, many in seen:
        assert statement.startswith("SELECT")
        assert "FROM records" in statement
        assert stored_rows["packed"]["id"] in (
            parameters.values() if isinstance(parameters, dict) else parameters
        )
        assert context is None
        assert many is False


def test_a_connection_lost_under_a_statement_is_invalidated_with_the_pool(
    postgres_storage, postgres_record, monkeypatch
):
    """A lost connection fails its statement as a disconnect, and the pool's other
    connections (opened before it) are replaced too, as SQLAlchemy's own execute does."""
    storage, record_id = postgres_storage, postgres_record["id"]
    # No ping on checkout, however slow the machine: the killed connection is used as is.
    monkeypatch.setattr(storage_engine, "IDLE_BEFORE_PING_SECONDS", 3600.0)
    pid = "SELECT pg_backend_pid()"
    with storage.autocommit() as lost, storage.autocommit() as sibling:
        backends = {lost.exec_driver_sql(pid).scalar(), sibling.exec_driver_sql(pid).scalar()}
        with storage.transaction() as other:
            killed = lost.exec_driver_sql(pid).scalar()
            assert other.exec_driver_sql("SELECT pg_terminate_backend(%s)", (killed,)).scalar()
        with pytest.raises(sa.exc.OperationalError) as raised:
            RECORD_BY_ID.first(lost, {"record_id": record_id})
        assert raised.value.connection_invalidated
    for _ in range(2):  # both pooled connections are new ones
        with storage.autocommit() as connection:
            assert RECORD_BY_ID.first(connection, {"record_id": record_id}).id == record_id
            assert connection.exec_driver_sql(pid).scalar() not in backends


def test_a_lost_connection_is_the_stores_unavailable_error(
    postgres_storage, postgres_record, monkeypatch
):
    storage, packed = postgres_storage, postgres_record
    monkeypatch.setattr(storage_engine, "IDLE_BEFORE_PING_SECONDS", 3600.0)
    with storage.autocommit() as connection:
        killed = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with storage.transaction() as other:
        assert other.exec_driver_sql("SELECT pg_terminate_backend(%s)", (killed,)).scalar()
    with pytest.raises(StorageUnavailable):
        storage.records.get(packed["tenant_id"], "assessment", packed["id"])
    assert storage.records.get(packed["tenant_id"], "assessment", packed["id"]) is not None


def test_a_connection_in_a_transaction_is_served_by_sqlalchemys_execute(storage, tenant_id):
    """On a connection SQLAlchemy runs a transaction on, the statement goes through its
    execute (which begins it), so a rollback takes the insert back."""
    row = _row(tenant_id, request={}, response={})
    with storage.transaction_engine.connect() as connection:
        [returned] = INSERT_RETURNING_ID.rows(connection, row)
        assert connection.in_transaction()
        assert returned.id == row["id"]
        assert returned.created_at == CREATED
        connection.rollback()
    with storage.autocommit() as connection:
        assert RECORD_BY_ID.first(connection, {"record_id": row["id"]}) is None


def test_the_real_inserts_return_what_sqlalchemy_returns(storage, tenant_id):
    """The store's own statements (with and without an Idempotency-Key): their RETURNING rows
    read on the cursor are SQLAlchemy's, type for type."""
    for key in (None, f"key-{uuid.uuid4().hex}"):
        returned = []
        for read in ("cursor", "sqlalchemy"):
            new_row = _row(tenant_id, request={}, response={}, idempotency_key=key)
            if key is not None and read == "sqlalchemy":
                new_row["idempotency_key"] = key + "-again"
            statement, parameters = insert_statement(new_row, tenant_id, new_row["idempotency_key"])
            with storage.autocommit() as connection:
                if read == "cursor":
                    [row] = statement.rows(connection, parameters)
                    returned.append(tuple(row))
                else:
                    [row] = connection.execute(statement.statement, parameters).all()
                    returned.append(tuple(row))
            assert returned[-1] == (new_row["id"],)
        assert [type(value) for value in returned[0]] == [type(value) for value in returned[1]]
