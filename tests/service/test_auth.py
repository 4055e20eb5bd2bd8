"""API keys: every /v1 endpoint needs one; health and docs do not; keys are random, shown once,
stored as a hash, and revocable from the command line."""

from __future__ import annotations

import collections
import hashlib
import re
import secrets

import pytest
import sqlalchemy as sa

from service import create_app, examples
from service.auth import KeyVerifier
from service.state import state
from service.storage import StorageUnavailable
from service.storage.key_format import KeyChecker, KeyShape
from service.storage.tables import api_keys
from tests.conftest import app_config, tenant_factory

V1_REQUESTS = [
    ("post", "/v1/assess", examples.MINIMAL),
    ("post", "/v1/escalation-check", examples.MINIMAL),
    ("post", "/v1/exercise-prescriptions", {"report": examples.MINIMAL}),
    ("get", "/v1/assessments", None),
    ("get", "/v1/assessments/0190b0c4-0000-7000-8000-000000000000", None),
    ("delete", "/v1/assessments/0190b0c4-0000-7000-8000-000000000000", None),
    ("get", "/v1/exercise-prescriptions/0190b0c4-0000-7000-8000-000000000000", None),
    ("get", "/v1/exercises", None),
    ("get", "/v1/conditions", None),
    ("get", "/v1/rules", None),
    ("get", "/v1/no-such-thing", None),
]
OPEN_PATHS = ["/healthz", "/readyz", "/openapi.json", "/docs"]


def send(client, method, path, body, **headers):
    return getattr(client, method)(path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), V1_REQUESTS)
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer plt_not-a-real-key", "plt_x"],
    ids=["none", "empty", "scheme only", "blank key", "basic", "unknown key", "no scheme"],
)
def test_every_v1_endpoint_needs_a_valid_key(anonymous_client, method, path, body, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = send(anonymous_client, method, path, body, **headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 401
    assert problem["title"]
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="popliteal"')
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_health_readiness_and_docs_need_no_key(anonymous_client, path):
    assert anonymous_client.get(path).status_code == 200


def test_a_preflight_needs_no_key(anonymous_client):
    response = anonymous_client.options("/v1/assess")
    assert response.status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_scheme_is_case_insensitive(app, tenant, scheme):
    response = app.test_client().post(
        "/v1/escalation-check",
        json=examples.MINIMAL,
        headers={"Authorization": f"{scheme} {tenant.key}"},
    )
    assert response.status_code == 200


@pytest.fixture(scope="module")
def caching_app(sqlite_database):
    """The app with the production key cache time (tests otherwise run without the cache)."""
    return create_app(app_config(DATABASE_URL=sqlite_database, API_KEY_CACHE_SECONDS=10.0))


@pytest.mark.parametrize("authorization", ["Basic {key}", "Token {key}", "{key}", "X {key}"])
def test_a_valid_key_sent_without_the_bearer_scheme_is_refused_even_just_after_it_was_used(
    caching_app, authorization
):
    tenant = tenant_factory(caching_app)()
    client = caching_app.test_client()
    bearer = {"Authorization": f"Bearer {tenant.key}"}
    # The Bearer call puts the key in the verified-key cache; the cache must not let the
    # same key through under another scheme.
    first = client.post("/v1/escalation-check", json=examples.MINIMAL, headers=bearer)
    assert first.status_code == 200
    response = client.post(
        "/v1/escalation-check",
        json=examples.MINIMAL,
        headers={"Authorization": authorization.format(key=tenant.key)},
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="popliteal"'


def test_keys_are_random_long_and_stored_only_as_a_hash(app):
    storage = state(app).storage
    made = [storage.keys.create("entropy-check")[0] for _ in range(20)]
    assert len(set(made)) == 20
    for key in made:
        # 32 random bytes and an 8-byte check, base64url
        assert re.fullmatch(r"plt_[A-Za-z0-9_-]{54}", key)
    with storage.autocommit() as connection:
        stored = connection.execute(sa.select(api_keys)).all()
    everything = repr(stored)
    for key in made:
        assert key not in everything
        assert key[4:] not in everything
    hashes = {row.key_hash for row in stored}
    assert all(hashlib.sha256(key.encode()).hexdigest() in hashes for key in made)


def test_a_revoked_key_is_refused(app):
    storage = state(app).storage
    key, info = storage.keys.create("revocation-check")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert (
        client.post("/v1/escalation-check", json=examples.MINIMAL, headers=headers).status_code
        == 200
    )
    assert storage.keys.revoke(info.id) is True
    assert storage.keys.revoke(info.id) is False  # already revoked
    response = client.post("/v1/escalation-check", json=examples.MINIMAL, headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.get_json()["detail"]


def test_the_command_line_creates_lists_and_revokes_keys(app):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["keys", "create", "--tenant", "cli-tenant", "--label", "ehr"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("plt_")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/assessments", headers=headers).status_code == 200

    listed = runner.invoke(args=["keys", "list", "--tenant", "cli-tenant"])
    assert listed.exit_code == 0
    [line] = listed.output.strip().splitlines()
    key_id, tenant, prefix, label, *_ = line.split("\t")
    assert (tenant, label) == ("cli-tenant", "ehr")
    assert key.startswith(prefix.rstrip("…"))
    assert key not in listed.output  # never shown again

    revoked = runner.invoke(args=["keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/v1/assessments", headers=headers).status_code == 401
    again = runner.invoke(args=["keys", "revoke", key_id])
    assert again.exit_code != 0
    assert "No active key" in again.output
    assert "revoked: 20" in runner.invoke(args=["keys", "list", "--tenant", "cli-tenant"]).output


def test_the_first_start_makes_one_development_key(tmp_path):
    from service import create_app
    from tests.conftest import app_config

    app = create_app(app_config(DATABASE_URL=f"sqlite:///{tmp_path / 'first.sqlite3'}"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    first = runner.invoke(args=["keys", "ensure-dev"])
    key = re.search(r"plt_[A-Za-z0-9_-]{54}", first.output).group(0)
    assert "shown only this once" in first.output
    second = runner.invoke(args=["keys", "ensure-dev"])
    assert "plt_" not in second.output  # a key exists: none made, none shown
    response = app.test_client().get("/v1/assessments", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    state(app).storage.dispose()


CHECKER = KeyChecker("a key-check secret for the verifier's cache tests")
KNOWN_KEY = CHECKER.new_key()
UNKNOWN_KEY = CHECKER.new_key()


class FakeKeys:
    """Stands in for the key table to drive the verifier's cache through time: the database
    parts are tested for real above."""

    def __init__(self, principal):
        self.principal = principal
        self.calls = 0
        self.down = False

    def key_checker(self):
        if self.down:
            raise StorageUnavailable("OperationalError")
        return CHECKER, False

    def authenticate(self, key):
        self.calls += 1
        if self.down:
            raise StorageUnavailable("OperationalError")
        return self.principal


def test_a_verified_key_is_cached_briefly_and_survives_a_database_outage_for_a_while(tenant):
    now = [0.0]
    keys = FakeKeys(tenant.principal)
    verifier = KeyVerifier(keys, fresh_seconds=10, stale_seconds=60, clock=lambda: now[0])
    assert verifier.verify(KNOWN_KEY) == tenant.principal
    now[0] = 9.9
    assert verifier.verify(KNOWN_KEY) == tenant.principal
    assert keys.calls == 1  # within the fresh time: no query
    now[0] = 10.0
    verifier.verify(KNOWN_KEY)
    assert keys.calls == 2  # fresh time over: asked again, so a revocation takes effect
    keys.down = True
    now[0] = 69.9
    assert verifier.verify(KNOWN_KEY) == tenant.principal  # stale but known: still served
    calls = keys.calls
    now[0] = 69.95
    assert verifier.verify(KNOWN_KEY) == tenant.principal
    assert keys.calls == calls  # the database just failed: not asked again for a while
    now[0] = 70.0
    with pytest.raises(StorageUnavailable):
        verifier.verify(KNOWN_KEY)
    with pytest.raises(StorageUnavailable):
        verifier.verify(UNKNOWN_KEY)  # an unknown key is never let through on faith
    assert verifier.verify("plt_forged") is None  # a malformed one needs nobody to refuse it


# -- Self-checking keys: forged keys cost nothing and lock nobody out ---------------------------


def forged_keys(real_key: str) -> list[str]:
    """Keys an intruder can make: random, of every length, and of the right shape with a check
    that does not hold (one character of the real key changed, anywhere)."""
    swapped = [
        real_key[:i] + ("A" if real_key[i] != "A" else "B") + real_key[i + 1 :]
        for i in range(len("plt_"), len(real_key))
    ]
    return [
        "plt_",
        "plt_" + "x" * 43,  # shaped like a legacy key, where no legacy key exists
        "plt_" + "x" * 54,
        "plt_" + secrets.token_urlsafe(40)[:54],
        "sk_live_" + secrets.token_hex(24),
        real_key + "x",
        *swapped,
    ]


@pytest.fixture
def guarded_app(tmp_path):
    """Rate limits and a small wrong-key budget on, and no key cache (every request with a
    real key is looked up), on a database of its own."""
    app = create_app(
        app_config(
            DATABASE_URL=f"sqlite:///{tmp_path / 'guarded.sqlite3'}",
            RATELIMIT_ENABLED=True,
            AUTH_FAILURE_LIMIT="2 per minute",
            # The per-address request rate limit is not what is tested here.
            RATELIMIT_APPLICATION="10000 per minute",
            API_KEY_CACHE_SECONDS=0,
        )
    )
    state(app).storage.upgrade()
    yield app
    state(app).storage.dispose()


def test_forged_keys_are_refused_offline_and_never_lock_out_a_valid_key(guarded_app, monkeypatch):
    tenant = tenant_factory(guarded_app)()
    keys = state(guarded_app).storage.keys
    lookups = []
    original = keys.authenticate
    monkeypatch.setattr(keys, "authenticate", lambda key: lookups.append(key) or original(key))
    shared = guarded_app.test_client()  # one address: a NAT, a hospital proxy
    forgeries = forged_keys(tenant.key) * 3
    answers = collections.Counter(
        shared.get("/v1/conditions", headers={"Authorization": f"Bearer {key}"}).status_code
        for key in forgeries
    )
    assert answers == {401: len(forgeries)}  # never 429: nothing was spent
    assert lookups == []  # not one forged key reached the database
    for _ in range(3):
        served = shared.get("/v1/conditions", headers={"Authorization": f"Bearer {tenant.key}"})
        assert served.status_code == 200
    assert lookups == [tenant.key] * 3  # the real key, looked up each time (no cache here)


def test_a_revoked_key_sent_in_a_loop_costs_one_lookup_per_cache_interval(tmp_path, monkeypatch):
    app = create_app(
        app_config(DATABASE_URL=f"sqlite:///{tmp_path / 'r.sqlite3'}", API_KEY_CACHE_SECONDS=60)
    )
    storage = state(app).storage
    storage.upgrade()
    key, info = storage.keys.create("revoked-loop")
    storage.keys.revoke(info.id)
    lookups = []
    original = storage.keys.authenticate
    monkeypatch.setattr(
        storage.keys, "authenticate", lambda key: lookups.append(key) or original(key)
    )
    client = app.test_client()
    statuses = {
        client.get("/v1/conditions", headers={"Authorization": f"Bearer {key}"}).status_code
        for _ in range(20)
    }
    assert statuses == {401}
    assert len(lookups) == 1
    storage.dispose()


def test_a_key_checks_only_under_the_secret_it_was_made_with():
    made = KeyChecker("first deployment's secret")
    other = KeyChecker("second deployment's secret")
    for _ in range(50):
        key = made.new_key()
        assert made.shape(key) is KeyShape.CHECKED
        assert other.shape(key) is KeyShape.REFUSED
        for forged in forged_keys(key):
            assert made.shape(forged) is not KeyShape.CHECKED


def test_a_database_without_its_key_check_secret_is_unavailable_not_open(tmp_path):
    """The secret is made by migration 0006; a database behind it refuses to check keys (503),
    it never lets a key through unchecked."""
    app = create_app(app_config(DATABASE_URL=f"sqlite:///{tmp_path / 'behind.sqlite3'}"))
    storage = state(app).storage
    storage.upgrade("0005")
    key = "plt_" + "x" * 54
    response = app.test_client().get("/v1/conditions", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    storage.dispose()
