"""HTTP hygiene: security headers, no caching of health data, HSTS when configured, CORS for
listed origins only, the client address behind a trusted proxy, and request timeouts (database
statements, graceful shutdown of in-flight requests)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest
import sqlalchemy as sa

from service import create_app, examples
from service.hygiene import parse_origins
from service.state import state
from service.storage import Storage, StorageUnavailable
from tests.conftest import app_config, gunicorn_server, plant_legacy_key, tenant_factory

APP_ORIGIN = "https://app.fitness.example"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/v1/assess", {**examples.POSSIBLE_DVT, "store": False}, 200),
        ("post", "/v1/assess", {"pain": {"intensity": 11}}, 422),
        ("get", "/v1/assessments/0190a0a0-0000-7000-8000-000000000000", None, 404),
        ("get", "/healthz", None, 200),
        ("get", "/readyz", None, 200),
        ("get", "/openapi.json", None, 200),
    ],
)
def test_every_answer_carries_the_security_headers_and_is_never_cached(
    client, method, path, body, status
):
    response = getattr(client, method)(path, json=body)
    assert response.status_code == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; frame-ancestors 'none'"
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers  # not configured
    assert "Access-Control-Allow-Origin" not in response.headers  # no origin allowed


def test_the_docs_page_may_run_its_own_scripts_but_not_be_framed(anonymous_client):
    response = anonymous_client.get("/docs")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy


@pytest.fixture(scope="module")
def configured_app(sqlite_database):
    app = create_app(
        app_config(
            DATABASE_URL=sqlite_database,
            HSTS_SECONDS=31536000,
            CORS_ORIGINS=f"{APP_ORIGIN}, https://other.example:8443/",
        )
    )
    return app, tenant_factory(app)()


def test_hsts_is_sent_once_configured(configured_app):
    _app, tenant = configured_app
    response = tenant.client.get("/healthz")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_a_listed_origin_gets_its_preflight_answered_without_a_key(configured_app):
    app, _tenant = configured_app
    response = app.test_client().options(
        "/v1/assess",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= {
        h.strip() for h in allowed.split(",")
    }
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in response.headers  # keys, not cookies


def test_an_unlisted_origin_gets_a_403_preflight_and_no_cors_headers(configured_app):
    app, tenant = configured_app
    preflight = app.test_client().options(
        "/v1/assess",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert preflight.headers["Content-Type"] == "application/problem+json"
    actual = tenant.client.post(
        "/v1/escalation-check", json=examples.MINIMAL, headers={"Origin": "https://evil.example"}
    )
    assert actual.status_code == 200
    assert "Access-Control-Allow-Origin" not in actual.headers
    assert "Origin" in actual.headers["Vary"]


def test_a_listed_origin_can_read_the_answer_and_its_headers(configured_app):
    _app, tenant = configured_app
    response = tenant.client.post(
        "/v1/escalation-check", json=examples.POSSIBLE_DVT, headers={"Origin": APP_ORIGIN}
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    exposed = response.headers["Access-Control-Expose-Headers"]
    assert "X-Rules-Version" in exposed
    assert "X-Request-ID" in exposed
    assert "Origin" in response.headers["Vary"]


def test_a_preflight_for_a_missing_route_is_a_404(configured_app):
    app, _tenant = configured_app
    response = app.test_client().options(
        "/v1/nothing-here",
        headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 404


def test_without_configuration_no_origin_is_allowed(anonymous_client):
    preflight = anonymous_client.options(
        "/v1/assess", headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    actual = anonymous_client.get("/v1/conditions", headers={"Origin": APP_ORIGIN})
    assert actual.status_code == 401
    for response in (preflight, actual):
        names = [name for name, _value in response.headers.items()]
        assert not [name for name in names if name.startswith("Access-Control")]


@pytest.mark.parametrize(
    "setting", ["*", "https://app.example/path", "app.example", "ftp://app.example", "https://"]
)
def test_the_origin_list_refuses_anything_but_exact_origins(setting):
    with pytest.raises(RuntimeError, match="POPLITEAL_CORS_ORIGINS"):
        parse_origins(setting)


def test_the_origin_list_reads_a_comma_separated_list():
    assert parse_origins(" https://a.example, http://b.example:8080/ , https://C.example:443") == {
        "https://a.example",
        "http://b.example:8080",
        "https://c.example",  # as a browser sends it: no default port, lower case
    }
    assert parse_origins("") == frozenset()


# -- The client's address behind a proxy -----------------------------------------------------


@pytest.mark.parametrize(("hops", "second_client_refused"), [(0, True), (1, False)])
def test_the_wrong_key_budget_counts_the_forwarded_address_only_behind_a_trusted_proxy(
    tmp_path, hops, second_client_refused
):
    """Two clients behind one proxy: with the proxy trusted, each has its own budget."""
    app = create_app(
        app_config(
            DATABASE_URL=f"sqlite:///{tmp_path / 'proxy.sqlite3'}",
            RATELIMIT_ENABLED=True,
            AUTH_FAILURE_LIMIT="2 per minute",
            PROXY_HOPS=hops,
        )
    )
    state(app).storage.upgrade()
    plant_legacy_key(state(app).storage, "legacy-proxy-tenant")
    client = app.test_client()
    legacy_shaped = "plt_" + "w" * 43  # only legacy-shaped keys can cost a lookup: budgeted

    def wrong_key(address: str) -> int:
        return client.get(
            "/v1/conditions",
            headers={"Authorization": f"Bearer {legacy_shaped}", "X-Forwarded-For": address},
        ).status_code

    assert [wrong_key("203.0.113.7") for _ in range(3)] == [401, 401, 429]
    assert (wrong_key("198.51.100.9") == 429) is second_client_refused


# -- Timeouts ---------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_database_statement_that_runs_too_long_is_cancelled(postgres_database):
    storage = Storage(postgres_database, statement_timeout_ms=200)
    try:
        with storage.autocommit() as connection:
            assert connection.execute(sa.text("SHOW statement_timeout")).scalar() == "200ms"
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError), storage.autocommit() as connection:
            connection.execute(sa.text("SELECT pg_sleep(3)"))
        assert time.monotonic() - started < 2
    finally:
        storage.dispose()


@pytest.mark.postgres
def test_a_statement_over_the_time_limit_is_cancelled_and_reported_as_unavailable(
    postgres_database,
):
    # Reported as StorageUnavailable, which every route answers with a 503 (never a 500).
    storage = Storage(postgres_database, statement_timeout_ms=50)
    from service.storage.database import translate_unavailable

    @translate_unavailable
    def slow():
        with storage.autocommit() as connection:
            connection.execute(sa.text("SELECT pg_sleep(5)"))

    started = time.monotonic()
    try:
        with pytest.raises(StorageUnavailable):
            slow()
    finally:
        storage.dispose()
    assert time.monotonic() - started < 2  # cancelled by the server, not waited out


@pytest.mark.live
def test_sigterm_lets_an_in_flight_request_finish(tmp_path):
    """A request whose body is still arriving when gunicorn gets SIGTERM is answered in full,
    and the server then exits cleanly."""
    with gunicorn_server(
        f"sqlite:///{tmp_path / 'popliteal.sqlite3'}",
        tenant="shutdown-tests",
        workers=1,
        output=subprocess.DEVNULL,
        GUNICORN_GRACEFUL_TIMEOUT="10",
    ) as running:
        server, port, [key] = running.process, running.port, running.keys
        body = json.dumps(examples.POSSIBLE_DVT).encode()
        head = (
            f"POST /v1/escalation-check HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
            connection.sendall(head + body[:10])
            time.sleep(0.5)  # the worker is reading the body now
            server.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert server.poll() is None, "the master waits for the worker's request"
            connection.sendall(body[10:])
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 200 OK"
        assert json.loads(rest.partition(b"\r\n\r\n")[2])["level"] == "urgent"
        assert server.wait(timeout=15) == 0
