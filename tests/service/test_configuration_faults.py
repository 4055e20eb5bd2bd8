"""Configuration faults say what is wrong: a mistyped setting stops the start-up naming it, and
a database that is full or misconfigured is reported as such (problem, error log, readiness),
not as "cannot reach its database"."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys

import jwt
import psycopg.errors
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import event

import service
import service.storage.database as database
from service import create_app, examples
from service.config import TestingConfig
from service.state import state
from service.storage.database import (
    SchemaBehind,
    StorageFull,
    StorageMisconfigured,
    StorageUnavailable,
    diagnose,
    storage_error,
)
from tests.conftest import REPO_ROOT, app_config, tenant_factory

REPORT = examples.SELF_CARE_TECHNIQUE


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'faults.sqlite3'}"


# -- Settings refused at start-up ------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("RATELIMIT_APPLICATION", "30 per secnd", "RATELIMIT_APPLICATION"),
        ("RATELIMIT_APPLICATION", "600 per minute;30 per secnd", "RATELIMIT_APPLICATION"),
        ("RATELIMIT_APPLICATION", "", "RATELIMIT_APPLICATION"),
        ("RATELIMIT_IN_MEMORY_FALLBACK", "10 per fortnight", "RATELIMIT_IN_MEMORY_FALLBACK"),
        ("RATELIMIT_DEFAULT", "lots", "RATELIMIT_DEFAULT"),
        ("AUTH_FAILURE_LIMIT", "30 per minit", "POPLITEAL_AUTH_FAILURE_LIMIT"),
        ("AUTH_FAILURE_LIMIT", "30 per minute;5 per second", "POPLITEAL_AUTH_FAILURE_LIMIT"),
    ],
)
@pytest.mark.parametrize("enabled", [True, False])
def test_a_mistyped_rate_limit_stops_the_start_up_naming_the_setting(
    sqlite_url, setting, value, named, enabled
):
    config = app_config(DATABASE_URL=sqlite_url, RATELIMIT_ENABLED=enabled, **{setting: value})
    with pytest.raises(RuntimeError, match=rf"^{named}=") as raised:
        create_app(config)
    assert repr(value) in str(raised.value)


def test_well_formed_rate_limits_start(sqlite_url):
    state(
        create_app(
            app_config(
                DATABASE_URL=sqlite_url,
                RATELIMIT_ENABLED=True,
                RATELIMIT_APPLICATION="600/minute, 30 per 1 second",
                RATELIMIT_IN_MEMORY_FALLBACK="100 per hour",
                AUTH_FAILURE_LIMIT="5 per 10 minutes",
            )
        )
    ).storage.dispose()


def start_in_a_subprocess(**environment: str) -> subprocess.CompletedProcess:
    """create_app() in a fresh interpreter, configured from ``environment`` as in production."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POPLITEAL_", "RATELIMIT_"))}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-c", "from service import create_app; create_app()"],
        cwd=REPO_ROOT,
        env={**env, "POPLITEAL_CONFIG": "testing", **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_empty_database_url_stops_the_start_up_naming_it():
    """DATABASE_URL= (a secret that did not arrive) used to mean the embedded SQLite file: a
    production service would have written its records to a container's scratch disk."""
    started = start_in_a_subprocess(DATABASE_URL="")
    assert started.returncode != 0
    assert "DATABASE_URL is set but empty" in started.stderr


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_database_url_setting_is_refused(value):
    with pytest.raises(RuntimeError, match=r"^DATABASE_URL is set but empty"):
        create_app(app_config(DATABASE_URL=value))


def test_an_unset_database_url_still_means_the_embedded_sqlite_file(tmp_path, monkeypatch):
    embedded = f"sqlite:///{tmp_path / 'embedded.sqlite3'}"
    monkeypatch.setattr(service, "_embedded_database_url", lambda app: embedded)
    app = create_app(app_config(DATABASE_URL=None))
    assert state(app).storage.url == embedded
    state(app).storage.dispose()


def test_a_mistyped_rate_limit_in_the_environment_stops_the_start_up_naming_it(sqlite_url):
    started = start_in_a_subprocess(DATABASE_URL=sqlite_url, RATELIMIT_APPLICATION="30 per secnd")
    assert started.returncode != 0
    assert "RATELIMIT_APPLICATION='30 per secnd'" in started.stderr


def test_cds_clients_without_a_base_url_stop_the_start_up_naming_both(tmp_path, sqlite_url):
    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public)), "kid": "k", "alg": "ES384"}
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    client = {"issuer": "https://ehr.example.test", "tenant": "t", "jwks_file": "jwks.json"}
    (tmp_path / "clients.json").write_text(json.dumps({"clients": [client]}))
    settings = {
        "DATABASE_URL": sqlite_url,
        "CDS_CLIENTS_FILE": str(tmp_path / "clients.json"),
        "CDS_SUBJECT_SECRET": secrets.token_hex(32),
    }
    with pytest.raises(RuntimeError, match="POPLITEAL_CDS_CLIENTS") as raised:
        create_app(app_config(**settings, CDS_BASE_URL=None))
    assert "POPLITEAL_CDS_BASE_URL" in str(raised.value)
    # With the base URL, the same clients start.
    app = create_app(app_config(**settings, CDS_BASE_URL="https://popliteal.example.test"))
    assert state(app).cds_verifier.configured
    state(app).storage.dispose()


# -- What the database errors say ------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        (psycopg.errors.DiskFull('could not extend file "base/1/2": No space left'), StorageFull),
        (psycopg.errors.UndefinedTable('relation "records" does not exist'), SchemaBehind),
        (psycopg.errors.UndefinedColumn('column "checked" does not exist'), SchemaBehind),
        (psycopg.errors.InvalidCatalogName('database "x" does not exist'), StorageMisconfigured),
        (psycopg.errors.InvalidPassword("password authentication failed"), StorageMisconfigured),
        (
            psycopg.errors.InvalidAuthorizationSpecification('role "x" does not exist'),
            StorageMisconfigured,
        ),
        # libpq reports a refused connection as text, with no SQLSTATE.
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
                'FATAL:  database "popliteal" does not exist'
            ),
            StorageMisconfigured,
        ),
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "db", port 5432 failed: FATAL:  '
                'password authentication failed for user "popliteal"'
            ),
            StorageMisconfigured,
        ),
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
                "Connection refused"
            ),
            StorageUnavailable,
        ),
        (psycopg.errors.AdminShutdown("terminating connection"), StorageUnavailable),
        (psycopg.errors.QueryCanceled("canceling statement"), StorageUnavailable),
    ],
)
def test_database_errors_are_told_apart(original, expected):
    wrapper = (
        sa.exc.ProgrammingError
        if isinstance(original, psycopg.ProgrammingError)
        else sa.exc.OperationalError
    )
    translated = storage_error(wrapper("SELECT 1", None, original))
    assert type(translated) is expected
    assert (diagnose(original) or StorageUnavailable) is expected


# -- A full disk -----------------------------------------------------------------------------


@pytest.fixture
def full_sqlite(sqlite_url):
    """An app on SQLite with a tenant; fill() caps the file at its present size, as a full
    disk would (SQLITE_FULL: "database or disk is full")."""
    app = create_app(app_config(DATABASE_URL=sqlite_url))
    storage = state(app).storage
    storage.upgrade()
    tenant = tenant_factory(app)()

    def cap(dbapi_connection, _record):
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    def fill():
        event.listen(storage.engine, "connect", cap)
        storage.engine.dispose()  # every connection from now on is capped

    yield app, tenant, fill
    storage.dispose()


def test_a_full_disk_is_reported_as_full_logged_as_an_error_and_readiness_says_so(
    full_sqlite, caplog
):
    app, tenant, fill = full_sqlite
    assert app.test_client().get("/readyz").status_code == 200
    fill()
    caplog.set_level(logging.INFO)
    for _ in range(500):
        response = tenant.client.post("/v1/assess", json=REPORT)
        if response.status_code != 201:
            break
    assert response.status_code == 503, response.get_data(as_text=True)
    problem = response.get_json()
    assert problem["type"] == "urn:popliteal:problem:storage-unavailable"
    assert "out of space" in problem["detail"]
    assert response.headers["Retry-After"] == str(TestingConfig.STORAGE_RETRY_AFTER_SECONDS)
    [logged] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged.levelno == logging.ERROR
    assert "database full" in logged.getMessage()
    assert "faults.sqlite3" in logged.getMessage()

    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"] == {
        "rules": "loaded",
        "database": "full",
        "migrations": "current",
    }
    # Reads and the red-flag screen still work; readiness recovers once no write has failed
    # for want of space for a while.
    assert tenant.client.get("/v1/assessments").status_code == 200
    assert tenant.client.post("/v1/escalation-check", json=REPORT).status_code == 200
    storage = state(app).storage
    storage._full_until -= database.FULL_REMEMBERED_SECONDS  # as if that time had passed
    assert app.test_client().get("/readyz").status_code == 200


# -- A database or user that does not exist --------------------------------------------------

PASSWORD = "never-in-a-log-" + secrets.token_hex(4)


@pytest.mark.postgres
@pytest.mark.parametrize("wrong", ["database", "username"])
def test_a_wrong_database_or_user_is_a_misconfiguration_not_an_outage(
    postgres_database, wrong, caplog
):
    name = f"popliteal_missing_{secrets.token_hex(4)}"
    url = sa.make_url(postgres_database).set(**{wrong: name}, password=PASSWORD)
    app = create_app(app_config(DATABASE_URL=url.render_as_string(hide_password=False)))
    caplog.set_level(logging.DEBUG)
    response = app.test_client().post(
        "/v1/assess", json=REPORT, headers={"Authorization": "Bearer plt_" + "x" * 54}
    )
    assert response.status_code == 503
    assert response.get_json()["type"] == "urn:popliteal:problem:storage-unavailable"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors, [r.getMessage() for r in caplog.records]
    assert all("misconfigured" in r.getMessage() for r in errors)
    assert all(name in r.getMessage() for r in errors)
    assert "DATABASE_URL" in errors[0].getMessage()

    caplog.clear()
    for _ in range(3):
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"] == {
            "rules": "loaded",
            "database": "misconfigured",
            "migrations": "unknown",
        }
    # Probes every few seconds log it once, not once a probe.
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert name in logged.getMessage()
    assert "DATABASE_URL" in logged.getMessage()
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)
    state(app).storage.dispose()


def test_an_unreachable_server_is_still_unreachable(caplog):
    """The refused connection of a server that is away is an outage: a warning, and readiness
    says unreachable (the misconfiguration check does not swallow it)."""
    from tests.conftest import free_port

    app = create_app(
        app_config(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    )
    caplog.set_level(logging.INFO)
    ready = app.test_client().get("/readyz")
    assert ready.get_json()["checks"]["database"] == "unreachable"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- Readiness probes are quiet --------------------------------------------------------------


def test_a_readiness_probe_writes_no_migration_log_lines(app, caplog):
    caplog.set_level(logging.DEBUG)
    assert app.test_client().get("/readyz").status_code == 200
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
