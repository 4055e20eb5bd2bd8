"""Rate limits per API key: counted in memory or in Redis; over the limit a 429 problem with
Retry-After; and when Redis goes away the service keeps answering on per-process counts, then
goes back to Redis when it returns."""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from service import create_app, examples
from service.auth_failures import FailedAuthenticationBudget
from service.rate_counts import MemoryCounts, RedisCounts, StorageCounts, parse_windows
from service.state import state
from tests.conftest import (
    app_config,
    free_port,
    plant_legacy_key,
    require_server,
    tenant_factory,
)

LIMIT = 3
BODY = examples.MINIMAL


def limited_app(database_url: str, storage_uri: str = "memory://"):
    return create_app(
        app_config(
            DATABASE_URL=database_url,
            RATELIMIT_ENABLED=True,
            RATELIMIT_APPLICATION=f"{LIMIT} per minute",
            RATELIMIT_STORAGE_URI=storage_uri,
            # A prefix of its own: runs never count each other's requests in a shared Redis.
            RATELIMIT_KEY_PREFIX=f"popliteal-test-{secrets.token_hex(4)}",
        )
    )


def check(tenant):
    return tenant.client.post("/v1/escalation-check", json=BODY)


def assert_throttled(response) -> None:
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 429
    assert problem["type"] == "urn:popliteal:problem:rate-limited"
    assert f"{LIMIT} per 1 minute" in problem["detail"]
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Remaining"] == "0"


@pytest.fixture(params=["memory", "redis"])
def storage_uri(request) -> str:
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue("redis_url")


@pytest.mark.redis
def test_over_the_limit_is_a_429_problem_with_retry_after(sqlite_database, storage_uri):
    app = limited_app(sqlite_database, storage_uri)
    tenant = tenant_factory(app)()
    answers = [check(tenant) for _ in range(LIMIT)]
    assert [answer.status_code for answer in answers] == [200] * LIMIT
    assert [answer.headers["X-RateLimit-Remaining"] for answer in answers] == ["2", "1", "0"]
    # "Retry after" means come back later: only on the refusals, never on an answer.
    assert [answer.headers.get("Retry-After") for answer in answers] == [None] * LIMIT
    assert_throttled(check(tenant))
    # Every /v1 endpoint counts against the same key's budget.
    assert_throttled(tenant.client.get("/v1/assessments"))


@pytest.mark.redis
def test_limits_are_per_key(sqlite_database, storage_uri):
    app = limited_app(sqlite_database, storage_uri)
    make = tenant_factory(app)
    busy, quiet = make(), make()
    for _ in range(LIMIT):
        check(busy)
    assert check(busy).status_code == 429
    assert check(quiet).status_code == 200


def test_health_and_docs_are_not_limited(sqlite_database):
    app = limited_app(sqlite_database)
    client = app.test_client()
    assert {client.get("/healthz").status_code for _ in range(LIMIT * 3)} == {200}


@pytest.mark.redis
def test_redis_counts_are_shared_by_every_process(sqlite_database, redis_url):
    """Two apps stand for two gunicorn workers: together they get the limit, not twice it."""
    first = limited_app(sqlite_database, redis_url)
    second = create_app(
        app_config(
            **{name: first.config[name] for name in ("DATABASE_URL", "RATELIMIT_KEY_PREFIX")},
            RATELIMIT_ENABLED=True,
            RATELIMIT_APPLICATION=f"{LIMIT} per minute",
            RATELIMIT_STORAGE_URI=redis_url,
        )
    )
    tenant = tenant_factory(first)()
    other_worker = second.test_client()
    other_worker.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tenant.key}"
    statuses = [
        (tenant.client if i % 2 else other_worker)
        .post("/v1/escalation-check", json=BODY)
        .status_code
        for i in range(LIMIT + 1)
    ]
    assert statuses == [200] * LIMIT + [429]


# -- Redis going away ------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, so that it can be killed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            require_server("redis-server (the program)", "not installed")
        self.process = subprocess.Popen(
            [
                executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.mark.redis
def test_when_redis_goes_away_the_service_keeps_answering_and_limiting(
    sqlite_database, private_redis, caplog
):
    app = limited_app(sqlite_database, private_redis.url)
    make = tenant_factory(app)
    tenant = make()
    assert check(tenant).status_code == 200
    stored = redis.Redis.from_url(private_redis.url)
    assert any(b"popliteal-test" in key for key in stored.scan_iter())  # counted in Redis
    stored.close()

    private_redis.kill()
    with caplog.at_level(logging.WARNING):
        after = [check(tenant).status_code for _ in range(LIMIT + 1)]
    # Never a 500: the process counts on its own (from zero) and still enforces the limit.
    assert after == [200] * LIMIT + [429]
    assert "falling back to in-memory storage" in caplog.text
    assert check(make()).status_code == 200  # another key has its own budget

    # Redis returns (empty: it keeps nothing on disk); the limiter goes back to it.
    private_redis.start()
    fresh = make()
    deadline = time.monotonic() + 20
    back_in_redis = False
    while time.monotonic() < deadline and not back_in_redis:
        assert check(fresh).status_code in (200, 429)
        stored = redis.Redis.from_url(private_redis.url)
        back_in_redis = any(b"popliteal-test" in key for key in stored.scan_iter())
        stored.close()
        time.sleep(0.25)
    assert back_in_redis, "the limiter did not go back to Redis within 20 s"


# -- Wrong keys ------------------------------------------------------------------------------


@pytest.mark.redis
def test_the_wrong_key_budget_counts_in_this_process_while_redis_is_away(private_redis, caplog):
    budget = FailedAuthenticationBudget("2 per minute", private_redis.url, {})
    address = f"198.51.100.{secrets.randbelow(250) + 1}"
    budget.spend(address)
    assert not budget.exhausted(address)
    private_redis.kill()
    with caplog.at_level(logging.WARNING):
        budget.spend(address)
        budget.spend(address)
        # Counted afresh in this process: never a 500, and still enforced.
        assert budget.exhausted(address)
        assert 0 < budget.retry_after(address) <= 60
    assert caplog.text.count("counting failed keys per process") == 1  # said once
    private_redis.start()


def _legacy_shaped(n: int) -> str:
    return f"plt_guess{n}".ljust(47, "x")


@pytest.mark.redis
def test_an_address_sending_wrong_legacy_keys_is_stopped_before_the_database_is_asked(
    tmp_path, storage_uri, monkeypatch
):
    """Where legacy (unchecked) keys still exist, a legacy-shaped key cannot be judged offline;
    the per-address budget bounds the lookups such keys cost, and no other key heeds it."""
    app = create_app(
        app_config(
            DATABASE_URL=f"sqlite:///{tmp_path / 'legacy.sqlite3'}",
            RATELIMIT_ENABLED=True,
            RATELIMIT_STORAGE_URI=storage_uri,
            AUTH_FAILURE_LIMIT=f"{LIMIT} per minute",
            API_KEY_CACHE_SECONDS=10,  # as in production
        )
    )
    state(app).storage.upgrade()
    tenant = tenant_factory(app)()
    legacy_key, _ = plant_legacy_key(state(app).storage, tenant.name)
    address = f"192.0.2.{secrets.randbelow(250) + 1}"  # a run of its own in a shared Redis
    intruder = app.test_client()
    intruder.environ_base["REMOTE_ADDR"] = address
    guesses = [
        intruder.get("/v1/assessments", headers={"Authorization": f"Bearer {_legacy_shaped(n)}"})
        for n in range(LIMIT)
    ]
    assert [guess.status_code for guess in guesses] == [401] * LIMIT

    lookups = []
    keys = state(app).storage.keys
    original = keys.authenticate
    monkeypatch.setattr(keys, "authenticate", lambda key: lookups.append(key) or original(key))
    stopped = intruder.get(
        "/v1/assessments", headers={"Authorization": f"Bearer {_legacy_shaped(-1)}"}
    )
    assert stopped.status_code == 429
    assert stopped.get_json()["type"] == "urn:popliteal:problem:rate-limited"
    assert 0 < int(stopped.headers["Retry-After"]) <= 60
    assert intruder.get("/v1/assessments").status_code == 401  # no key: nothing to look up
    checked_forgery = tenant.key[:-3] + ("AAA" if tenant.key[-3:] != "AAA" else "BBB")
    forged = intruder.get("/v1/assessments", headers={"Authorization": f"Bearer {checked_forgery}"})
    assert forged.status_code == 401  # its check fails: refused offline, not budgeted
    assert lookups == []  # refused without a database lookup
    # The legacy key itself, from the same address, once its lookup is due: refused too (the
    # reason to replace legacy keys, which the keys listing marks).
    legacy = intruder.get("/v1/assessments", headers={"Authorization": f"Bearer {legacy_key}"})
    assert legacy.status_code == 429

    # Another address is not affected; nor is a key from this address verified moments ago
    # (behind one NAT address, an intruder must not lock out the clients already working).
    assert check(tenant).status_code == 200
    shared_address = app.test_client()
    shared_address.environ_base["REMOTE_ADDR"] = address
    shared_address.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tenant.key}"
    assert shared_address.post("/v1/escalation-check", json=BODY).status_code == 200


# -- One round trip; the same headers and counting in memory and on Redis --------------------


def _counted_app(database_url: str, storage_uri: str, limits: str):
    return create_app(
        app_config(
            DATABASE_URL=database_url,
            RATELIMIT_ENABLED=True,
            RATELIMIT_APPLICATION=limits,
            RATELIMIT_STORAGE_URI=storage_uri,
            RATELIMIT_KEY_PREFIX=f"popliteal-test-{secrets.token_hex(4)}",
        )
    )


@pytest.mark.redis
def test_a_request_costs_at_most_one_redis_round_trip_whatever_the_number_of_limits(
    sqlite_database, redis_url, monkeypatch
):
    app = _counted_app(sqlite_database, redis_url, "600 per minute;30 per second;10000 per day")
    tenant = tenant_factory(app)()
    assert check(tenant).status_code == 200  # the first also loads the script into Redis
    sent: list[bytes] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(b"".join(command) if isinstance(command, list) else command)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    answers = [check(tenant) for _ in range(5)] + [tenant.client.get("/v1/assessments")]
    assert {answer.status_code for answer in answers} == {200}
    # One command sent and one answer read per request at most: fewer once a lease of
    # several requests is taken (service.redis_counts).
    assert 1 <= len(sent) <= len(answers)
    assert all(b"EVALSHA" in command for command in sent)
    # The headers come with it: the shortest window's (its count may restart as seconds turn).
    assert {answer.headers["X-RateLimit-Limit"] for answer in answers} == {"30"}
    assert all(int(answer.headers["X-RateLimit-Remaining"]) < 30 for answer in answers)


@pytest.mark.redis
def test_the_headers_and_counts_are_the_same_in_memory_and_on_redis(sqlite_database, storage_uri):
    """Two limits: the shorter window is counted first and named in the headers; the first
    limit over its amount refuses, names itself, and the longer windows are not counted."""
    app = _counted_app(sqlite_database, storage_uri, "3 per hour;5 per minute")
    tenant = tenant_factory(app)()
    before = time.time()
    answers = [check(tenant) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    # Counted within the minute first: its headers, until the hour's limit refuses.
    assert [answer.headers["X-RateLimit-Limit"] for answer in answers] == ["5", "5", "5", "3"]
    assert [answer.headers["X-RateLimit-Remaining"] for answer in answers] == ["4", "3", "2", "0"]
    minute_reset = int(answers[0].headers["X-RateLimit-Reset"])
    assert before + 60 <= minute_reset <= time.time() + 61
    hour_reset = int(answers[3].headers["X-RateLimit-Reset"])
    assert before + 3600 <= hour_reset <= time.time() + 3601
    assert [answer.headers.get("Retry-After") for answer in answers[:3]] == [None] * 3
    assert 3590 <= int(answers[3].headers["Retry-After"]) <= 3601
    problem = answers[3].get_json()
    assert problem["type"] == "urn:popliteal:problem:rate-limited"
    assert "3 per 1 hour" in problem["detail"]
    assert check(tenant).headers["X-RateLimit-Limit"] == "3"  # the 5th: still the hour's
    minute_refusal = check(tenant)  # the 6th: over the minute's 5 (the hour is not asked)
    assert minute_refusal.status_code == 429
    assert minute_refusal.headers["X-RateLimit-Limit"] == "5"
    assert "5 per 1 minute" in minute_refusal.get_json()["detail"]
    assert 0 < int(minute_refusal.headers["Retry-After"]) <= 61
    # The answers outside /v1 carry none of it.
    health = app.test_client().get("/healthz")
    assert not [name for name, _ in health.headers.items() if name.startswith("X-RateLimit")]


@pytest.mark.redis
def test_redis_counters_keep_their_names_for_a_rolling_update(sqlite_database, redis_url):
    """The keys Flask-Limiter used: workers of the version before count with these."""
    app = _counted_app(sqlite_database, redis_url, "5 per minute;3 per hour")
    tenant = tenant_factory(app)()
    for _ in range(4):
        check(tenant)
    prefix = app.config["RATELIMIT_KEY_PREFIX"]
    stored = redis.Redis.from_url(redis_url)
    try:
        base = f"LIMITS:LIMITER/{prefix}/key:{tenant.principal.key_id}/global"
        assert int(stored.get(f"{base}/5/1/minute")) == 4
        assert int(stored.get(f"{base}/3/1/hour")) == 4
        assert 0 < stored.ttl(f"{base}/5/1/minute") <= 60
        assert 3500 < stored.ttl(f"{base}/3/1/hour") <= 3600
    finally:
        stored.close()


@pytest.mark.redis
def test_every_store_counts_alike(redis_url):
    """Memory, Redis (one script) and any other store (through the limits library) give the
    same tallies for the same requests."""
    windows = parse_windows("2 per minute;4 per hour")
    stores = {
        "memory": MemoryCounts(),
        "redis": RedisCounts(redis_url, {}),
        "limits library": StorageCounts("memory://", {}),
    }
    key = f"LIMITER/popliteal-test-{secrets.token_hex(4)}/key:1/global"
    tallies = {}
    for name, store in stores.items():
        hits = [store.hit(key, windows) for _ in range(4)]
        tallies[name] = [(t.window.text, t.count, t.remaining, t.refused) for t in hits]
    assert tallies["memory"] == [
        ("2 per 1 minute", 1, 1, False),
        ("2 per 1 minute", 2, 0, False),
        ("2 per 1 minute", 3, 0, True),
        ("2 per 1 minute", 4, 0, True),
    ]
    assert tallies["redis"] == tallies["memory"]
    assert tallies["limits library"] == tallies["memory"]


def test_memory_windows_start_again_when_they_end():
    now = [1000.0]
    counts = MemoryCounts(clock=lambda: now[0])
    window = parse_windows("2 per second")
    assert [counts.hit("k", window).count for _ in range(3)] == [1, 2, 3]
    assert counts.hit("k", window).reset == 1001.0
    now[0] = 1001.0
    fresh = counts.hit("k", window)
    assert (fresh.count, fresh.reset, fresh.refused) == (1, 1002.0, False)
    now[0] = 2000.0
    counts.hit("other", window)  # the sweep drops the windows that have ended
    assert list(counts._counters) == ["other/2/1/second"]


@pytest.mark.parametrize("setting", ["RATELIMIT_DEFAULT", "RATELIMIT_META"])
def test_flask_limiter_settings_the_service_does_not_read_stop_the_start_up(
    sqlite_database, setting
):
    config = app_config(DATABASE_URL=sqlite_database, **{setting: "10 per minute"})
    with pytest.raises(RuntimeError, match=rf"^{setting}='10 per minute': the service does not"):
        create_app(config)


@pytest.mark.redis
def test_a_closed_connection_or_a_flushed_script_is_not_redis_going_away(private_redis):
    """Redis closed the connection (a restart, an idle timeout) or lost its scripts: the next
    request reconnects and loads the script again, still counted in Redis."""
    counts = RedisCounts(private_redis.url, {})
    windows = parse_windows("5 per minute")
    key = "LIMITER/popliteal-test/key:1/global"
    assert counts.hit(key, windows).count == 1
    admin = redis.Redis.from_url(private_redis.url)
    try:
        admin.client_kill_filter(_type="normal", skipme=True)
        admin.script_flush()
        assert counts.hit(key, windows).count == 2
        assert int(admin.get(f"LIMITS:{key}/5/1/minute")) == 2
    finally:
        admin.close()
