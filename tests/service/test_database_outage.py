"""The database goes away and comes back: readiness says so, writes answer 503 with
Retry-After in the error shape (never a 500, nothing half-written), the red-flag screen keeps
working for known keys, and the service recovers by itself.

The outage is real: the service talks to the real PostgreSQL server through a TCP proxy, and
the test cuts the proxy (open connections reset, new ones refused), then restores it.
"""

from __future__ import annotations

import secrets
import time

import pytest
import sqlalchemy as sa

from service import create_app, examples
from service.config import TestingConfig
from service.state import state
from service.storage.database import IDLE_BEFORE_PING_SECONDS
from service.storage.tables import records
from tests.conftest import app_config, scratch_postgres_database, tenant_factory
from tests.proxy import TcpProxy

pytestmark = pytest.mark.postgres

REPORT = examples.SELF_CARE_TECHNIQUE


@pytest.fixture
def outage(postgres_database):
    """An app whose database connection runs through a proxy the test can cut."""
    direct = sa.make_url(postgres_database)
    proxy = TcpProxy((direct.host, direct.port or 5432)).start()
    proxied = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    # Rate limits on, over a long window: their Retry-After (the window's end) must not
    # replace the 503's own.
    app = create_app(
        app_config(
            DATABASE_URL=proxied,
            RATELIMIT_ENABLED=True,
            RATELIMIT_APPLICATION="1000 per hour",
            RATELIMIT_KEY_PREFIX=f"popliteal-outage-{secrets.token_hex(4)}",
        )
    )
    state(app).storage.upgrade()
    tenant = tenant_factory(app)()
    checker = sa.create_engine(direct)
    try:
        yield app, tenant, proxy, checker
    finally:
        proxy.stop()
        checker.dispose()
        state(app).storage.dispose()


def stored_rows(checker, tenant) -> int:
    with checker.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count())
            .select_from(records)
            .where(records.c.tenant_id == tenant.principal.tenant_id)
        ).scalar_one()


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == "urn:popliteal:problem:storage-unavailable"
    assert problem["status"] == 503
    assert response.headers["Retry-After"] == str(TestingConfig.STORAGE_RETRY_AFTER_SECONDS)


def test_an_unreachable_database_is_a_503_and_the_service_recovers_by_itself(outage):
    app, tenant, proxy, checker = outage
    client = tenant.client
    assert client.post("/v1/assess", json=REPORT).status_code == 201
    stored = client.get("/v1/assessments").get_json()["items"][0]["links"]["self"]
    assert app.test_client().get("/readyz").status_code == 200
    assert stored_rows(checker, tenant) == 1  # the assessment's row holds its plan
    never_used_key, _ = state(app).storage.keys.create("outage-newcomer")

    proxy.stop()
    started = time.monotonic()
    assert_unavailable(client.post("/v1/assess", json=REPORT))
    assert_unavailable(client.post("/v1/exercise-prescriptions", json={"report": REPORT}))
    assert_unavailable(client.get(stored))
    assert_unavailable(client.get("/v1/assessments"))
    assert_unavailable(client.delete(stored))
    # A well-formed key this process never verified cannot be looked up while the database is
    # away: 503, never let through on faith. A malformed one needs no database: 401.
    stranger = app.test_client().post(
        "/v1/escalation-check", json=REPORT, headers={"Authorization": f"Bearer {never_used_key}"}
    )
    assert_unavailable(stranger)
    forged = app.test_client().post(
        "/v1/escalation-check", json=REPORT, headers={"Authorization": "Bearer plt_unknown"}
    )
    assert forged.status_code == 401
    # The red-flag screen needs no database: a key verified before the outage still gets it.
    screen = client.post("/v1/escalation-check", json=examples.POSSIBLE_DVT)
    assert screen.status_code == 200
    assert screen.get_json()["escalate"] is True
    # Stateless assessment too.
    assert client.post("/v1/assess", json={**REPORT, "store": False}).status_code == 200

    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {
        "status": "not_ready",
        "checks": {"rules": "loaded", "database": "unreachable", "migrations": "unknown"},
    }
    assert app.test_client().get("/healthz").status_code == 200  # alive, just not ready
    assert time.monotonic() - started < 30  # failed fast, no hanging requests

    proxy.start()  # the same port: the database is back
    assert app.test_client().get("/readyz").status_code == 200
    assert client.post("/v1/assess", json=REPORT).status_code == 201
    assert client.get(stored).status_code == 200
    # The writes refused during the outage left nothing behind.
    assert stored_rows(checker, tenant) == 2


def test_readiness_says_when_migrations_are_behind(postgres_database):
    with scratch_postgres_database(postgres_database, "popliteal_behind") as url:
        app = create_app(app_config(DATABASE_URL=url))
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"] == {
            "rules": "loaded",
            "database": "ok",
            "migrations": "behind",
        }
        state(app).storage.upgrade()
        assert app.test_client().get("/readyz").status_code == 200
        state(app).storage.dispose()


def test_a_pooled_connection_the_server_dropped_is_replaced_before_use(postgres_database):
    """A database restart leaves dead connections in the pool; one that sat idle is checked
    and replaced on checkout, so the next request succeeds rather than failing with a 503."""
    app = create_app(app_config(DATABASE_URL=postgres_database))
    tenant = tenant_factory(app)()
    assert tenant.client.post("/v1/assess", json=REPORT).status_code == 201
    engine = state(app).storage.engine
    with engine.connect() as connection:
        service_pid = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    admin = sa.create_engine(postgres_database)
    with admin.connect() as connection:
        assert connection.execute(
            sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": service_pid}
        ).scalar_one()
    admin.dispose()
    time.sleep(IDLE_BEFORE_PING_SECONDS + 0.1)
    assert tenant.client.post("/v1/assess", json=REPORT).status_code == 201
    assert app.test_client().get("/readyz").status_code == 200
    state(app).storage.dispose()
