"""Fixtures shared by every test: the app in-process on a throw-away database, clients that
carry an API key, the real PostgreSQL and Redis servers, and the service under gunicorn.

PostgreSQL (TEST_POSTGRES_URL, default the local server's ``test`` database) and Redis
(TEST_REDIS_URL, default 127.0.0.1:6379) are real servers. Each test session works in a
database of its own, created here and dropped at the end. Without a reachable server those
tests are skipped locally and fail in CI (CI=true): there they must run.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from service import create_app, examples
from service.config import TestingConfig
from service.state import state
from service.storage import Principal, Storage

REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ("sqlite", "postgresql")


def require_server(what: str, reason: str) -> None:
    """Skip locally, fail in CI: a required real server that is missing must not pass."""
    message = f"{what} is not reachable ({reason})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; in CI these tests are required")
    pytest.skip(message)


def app_config(**overrides) -> type[TestingConfig]:
    return type("TestConfig", (TestingConfig,), overrides)


# -- Databases -------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_postgres_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server at server_url, dropped on leaving; its URL.

    sqlalchemy.exc.OperationalError when the server cannot be reached."""
    admin = sa.create_engine(
        server_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except BaseException:
        admin.dispose()
        raise
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test session; its URL."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_postgres_database(POSTGRES_URL, "popliteal_test"))
        except sa.exc.OperationalError as error:
            require_server("PostgreSQL", str(error.orig).strip().splitlines()[0])
        yield url


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory) -> str:
    """A migrated SQLite file for this test session; its URL."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'popliteal.sqlite3'}"
    storage = Storage(url)
    storage.upgrade()
    storage.dispose()
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request) -> str:
    """Each persistence test runs once on SQLite and once on PostgreSQL."""
    fixture = {"sqlite": "sqlite_database", "postgresql": "postgres_database"}[request.param]
    return request.getfixturevalue(fixture)


@pytest.fixture(scope="session")
def migrated_database_url(database_url) -> str:
    storage = Storage(database_url)
    storage.upgrade()
    storage.dispose()
    return database_url


# -- The app and its clients -----------------------------------------------------------------


@dataclass
class Tenant:
    name: str
    key: str
    principal: Principal
    client: FlaskClient


def plant_legacy_key(storage: Storage, tenant: str) -> tuple[str, int]:
    """A key as keys were made before they carried a check (``plt_`` + 43 characters), stored
    the way such keys are (a deployment upgraded from then still has them), and its id. Only
    the columns keys had then are written, so it works at every schema revision."""
    from datetime import UTC, datetime

    from service.storage.keys import ensure_tenant, hash_key
    from service.storage.tables import api_keys

    old_api_keys = sa.table(
        "api_keys", *(sa.column(c.name, c.type) for c in api_keys.columns if c.name != "checked")
    )
    key = "plt_" + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with storage.transaction() as connection:
        key_id = connection.execute(
            sa.insert(old_api_keys)
            .values(
                tenant_id=ensure_tenant(connection, tenant, now),
                key_hash=hash_key(key),
                prefix=key[:12],
                label="legacy",
                created_at=now,
            )
            .returning(old_api_keys.c.id)
        ).scalar_one()
    return key, key_id


def tenant_factory(app: Flask):
    def make(name: str | None = None) -> Tenant:
        name = name or f"tenant-{secrets.token_hex(4)}"
        storage = state(app).storage
        key, _info = storage.keys.create(name, label="tests")
        principal = storage.keys.authenticate(key)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        return Tenant(name, key, principal, client)

    return make


@pytest.fixture(scope="session")
def app(sqlite_database) -> Flask:
    """The app on a migrated SQLite file: for the tests of the API's behaviour."""
    return create_app(app_config(DATABASE_URL=sqlite_database))


@pytest.fixture(scope="session")
def tenant(app) -> Tenant:
    return tenant_factory(app)("clinic-tests")


@pytest.fixture
def client(tenant) -> FlaskClient:
    """A client of the app with a valid API key."""
    return tenant.client


@pytest.fixture
def anonymous_client(app) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def stored_app(migrated_database_url) -> Flask:
    """The app on SQLite and on PostgreSQL (parametrised): for the persistence tests."""
    app = create_app(app_config(DATABASE_URL=migrated_database_url))
    yield app
    state(app).storage.dispose()


@pytest.fixture
def new_tenant(stored_app):
    """A factory of fresh tenants, each with a key and a client: tests never share records."""
    return tenant_factory(stored_app)


# -- Redis -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        require_server("Redis", str(error))
    finally:
        client.close()
    return REDIS_URL


# -- Real processes --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def gunicorn_command(port: int, workers: int = 2) -> list[str]:
    """gunicorn as the README, the image and the manifests start it: with gunicorn.conf.py."""
    return [
        sys.executable, "-m", "gunicorn", "--config", str(REPO_ROOT / "gunicorn.conf.py"),
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "service.wsgi:app",
    ]  # fmt: skip


def gunicorn_env(**settings: str) -> dict[str, str]:
    """The environment for a test's gunicorn: no metrics listener unless a test asks for one
    (each would want the same port), a metrics folder of its own, and no drain on SIGTERM
    (the drain's own tests set it), so that stopping a test's server takes no 5 s wait."""
    environment = {
        key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"
    }
    return {**environment, "POPLITEAL_CONFIG": "production", "POPLITEAL_METRICS_PORT": "0",
            "POPLITEAL_DRAIN_SECONDS": "0", **settings}  # fmt: skip


@dataclass
class Gunicorn:
    url: str
    port: int
    process: subprocess.Popen
    keys: list[str]  # API keys of the server's tenant


@contextlib.contextmanager
def gunicorn_server(
    database: str,
    *,
    tenant: str = "tests",
    keys: int = 1,
    workers: int = 2,
    output: Path | int | None = None,
    legacy_key: bool = False,
    **settings: str,
) -> Iterator[Gunicorn]:
    """gunicorn as the README starts it (gunicorn_command, gunicorn_env with ``settings``) on
    ``database``, migrated here, with ``keys`` API keys of ``tenant``; yielded once /readyz
    answers 200 and stopped afterwards. ``output`` takes the server's output: a file (stdout
    and stderr), subprocess.DEVNULL (stdout), or None to leave it with the test's.
    ``legacy_key`` also stores a legacy (unchecked) key, so that legacy-shaped keys are looked
    up and budgeted as in a deployment that still has one."""
    storage = Storage(database)
    try:
        storage.upgrade()
        created = [storage.keys.create(tenant, label="tests")[0] for _ in range(keys)]
        if legacy_key:
            plant_legacy_key(storage, tenant)
    finally:
        storage.dispose()
    port = free_port()
    to_file = isinstance(output, Path)
    with contextlib.ExitStack() as files:
        process = subprocess.Popen(
            gunicorn_command(port, workers),
            cwd=REPO_ROOT,
            env=gunicorn_env(DATABASE_URL=database, **settings),
            stdout=files.enter_context(output.open("wb")) if to_file else output,
            stderr=subprocess.STDOUT if to_file else None,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(f"{url}/readyz", process)
        yield Gunicorn(url, port, process, created)
    finally:
        stop(process)


@dataclass
class LiveServer:
    url: str
    key: str
    # A stored assessment of the key's tenant.
    assessment_id: str


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    """The real service: gunicorn with two sync workers on a migrated SQLite file, as the
    README's run command starts it, with an API key. Rate limits are raised so that the
    property-based run is not throttled."""
    database = f"sqlite:///{tmp_path_factory.mktemp('live') / 'popliteal.sqlite3'}"
    with gunicorn_server(
        database,
        tenant="live-tests",
        RATELIMIT_APPLICATION="1000000 per minute",
        POPLITEAL_AUTH_FAILURE_LIMIT="1000000 per minute",
    ) as server:
        [key] = server.keys
        request = urllib.request.Request(
            f"{server.url}/v1/assess",
            data=json.dumps(examples.SELF_CARE_TECHNIQUE).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assessment_id = json.load(response)["id"]
        yield LiveServer(server.url, key, assessment_id)
