"""A database the migrations have not reached (new, or behind the code): every /v1 call that
needs it answers 503 with a problem saying so and what to run, on SQLite and on PostgreSQL
alike, never a 500 with a stack trace; readiness says the migrations are behind."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from service import create_app, examples
from service.config import TestingConfig
from service.state import state
from service.storage.keys import KEY_CHECK_ROW
from service.storage.tables import deployment_secrets
from tests.conftest import app_config, scratch_postgres_database, tenant_factory

pytestmark = pytest.mark.postgres

REPORT = examples.SELF_CARE_TECHNIQUE
# Shaped like a key; no database behind the code can say whether it is one.
SOME_KEY = "plt_" + "x" * 54
MIGRATE = "flask --app service.wsgi db upgrade"


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'unmigrated.sqlite3'}"
        return
    server = request.getfixturevalue("postgres_database")
    with scratch_postgres_database(server, "popliteal_unmigrated") as url:
        yield url


@pytest.fixture
def app_on(unmigrated_database):
    made = []

    def make():
        app = create_app(app_config(DATABASE_URL=unmigrated_database))
        made.append(app)
        return app, state(app).storage

    yield make
    for app in made:
        state(app).storage.dispose()


def assert_schema_behind(response, caplog) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == 503, body
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == "urn:popliteal:problem:schema-behind"
    assert problem["status"] == 503
    assert MIGRATE in problem["detail"]
    assert response.headers["Retry-After"] == str(TestingConfig.STORAGE_RETRY_AFTER_SECONDS)
    assert "Traceback" not in body
    # Logged as the deployment fault it is, naming the fix, and never with a stack trace.
    assert not [record for record in caplog.records if record.exc_info]
    assert [
        record
        for record in caplog.records
        if record.levelno == logging.ERROR and MIGRATE in record.getMessage()
    ]


def test_an_unmigrated_database_answers_503_schema_behind_and_readiness_says_so(app_on, caplog):
    app, _storage = app_on()
    caplog.set_level(logging.INFO)
    response = app.test_client().post(
        "/v1/assess", json=REPORT, headers={"Authorization": f"Bearer {SOME_KEY}"}
    )
    assert_schema_behind(response, caplog)

    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {
        "status": "not_ready",
        "checks": {"rules": "loaded", "database": "ok", "migrations": "behind"},
    }


def test_a_missing_column_is_schema_behind_too(app_on, caplog):
    """Keys check out, but the table a write needs lacks a column the code expects."""
    app, storage = app_on()
    storage.upgrade()
    tenant = tenant_factory(app)()
    with storage.transaction() as connection:
        connection.execute(sa.text("ALTER TABLE records DROP COLUMN request_fingerprint"))
    caplog.set_level(logging.INFO)
    response = tenant.client.post(
        "/v1/assess", json=REPORT, headers={"Idempotency-Key": "schema-behind-1"}
    )
    assert_schema_behind(response, caplog)
    # What needs no database still works.
    assert tenant.client.post("/v1/escalation-check", json=REPORT).status_code == 200


def test_a_missing_table_is_schema_behind_too(app_on, caplog):
    app, storage = app_on()
    storage.upgrade()
    tenant = tenant_factory(app)()
    with storage.transaction() as connection:
        connection.execute(sa.text("DROP TABLE erased_idempotency_keys"))
    caplog.set_level(logging.INFO)
    response = tenant.client.post(
        "/v1/assess", json=REPORT, headers={"Idempotency-Key": "schema-behind-2"}
    )
    assert_schema_behind(response, caplog)


def test_a_database_without_its_key_check_secret_is_schema_behind(app_on, caplog):
    app, storage = app_on()
    storage.upgrade()
    with storage.transaction() as connection:
        connection.execute(
            sa.delete(deployment_secrets).where(deployment_secrets.c.name == KEY_CHECK_ROW)
        )
    caplog.set_level(logging.INFO)
    response = app.test_client().get(
        "/v1/conditions", headers={"Authorization": f"Bearer {SOME_KEY}"}
    )
    assert_schema_behind(response, caplog)


def test_a_query_fault_that_is_not_a_missing_name_is_not_schema_behind(app_on):
    """Only a missing table or column means "run the migrations": PostgreSQL's other query
    errors stay bugs (500); SQLite reports its syntax errors as OperationalError, which was
    and stays a plain "unavailable"."""
    from service.storage.database import SchemaBehind, StorageUnavailable, storage_error

    _app, storage = app_on()
    storage.upgrade()
    with pytest.raises(sa.exc.DBAPIError) as raised, storage.autocommit() as connection:
        connection.execute(sa.text("SELECT FROM WHERE"))
    translated = storage_error(raised.value)
    if storage.backend == "postgresql":
        assert translated is None
    else:
        assert type(translated) is StorageUnavailable
        assert not isinstance(translated, SchemaBehind)
