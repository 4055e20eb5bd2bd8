"""The fast path stores an assessment exactly as Flask does, byte for byte, and never twice.

Two apps as in test_fast_path, but each on a database of its own (copies of one, with the same
API key), so that both can store the same records: the ids and the creation time are made the
same for both (the UUIDs' random bits and clocks fixed, restarted before each app's request).
"""

from __future__ import annotations

import itertools
import json
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

import orjson
import pytest
import sqlalchemy as sa

from service import create_app, examples, fast_answers, observability
from service.api import assessment as assessment_views
from service.fast_answers import StoreFailed
from service.fast_path import FastPath, install_fast_path
from service.rate_counts import MemoryCounts
from service.records_as_json import render_assessment
from service.state import state
from service.storage import Storage, StorageUnavailable, record_types
from service.storage import records as record_store
from tests.conftest import app_config
from tests.rules.clinical_cases import load_cases
from tests.service.wsgi_exchange import LineCapture, assert_alike, exchange, get, post

pytestmark = pytest.mark.usefixtures("fixed_request_clock", "access_lines")

STORED_AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
# Far in the past: the rate-limit windows never end during the tests.
FIXED_TIME = time.time() - 100_000
REPORTS = [(case["name"], case["report"]) for _, case in load_cases()]
# Each pair of requests (one per app) takes ids of its own: both apps store the same records.
PAIRS = itertools.count(1)


@dataclass
class StoringApps:
    fast: object
    plain: object
    fast_path: FastPath
    key: str


@pytest.fixture(scope="module")
def storing_apps(tmp_path_factory) -> StoringApps:
    folder = tmp_path_factory.mktemp("fast-path-stored")
    first = folder / "fast.sqlite3"
    storage = Storage(f"sqlite:///{first}")
    storage.upgrade()
    key, _ = storage.keys.create(f"stored-{secrets.token_hex(4)}", label="t")
    storage.dispose()
    shutil.copy(first, folder / "plain.sqlite3")
    apps = []
    for name in ("fast", "plain"):
        config = app_config(
            DATABASE_URL=f"sqlite:///{folder / f'{name}.sqlite3'}",
            RATELIMIT_ENABLED=True,
            RATELIMIT_APPLICATION="100000 per minute;10000 per second",
            API_KEY_CACHE_SECONDS=600,
        )
        app = create_app(config)
        state(app).limiter.shared = MemoryCounts(clock=lambda: FIXED_TIME)
        apps.append(app)
    fast, plain = apps
    fast_path = install_fast_path(fast, enabled=True)
    install_fast_path(plain, enabled=False)
    warm = LineCapture()
    for app in apps:  # the key verified by each app: the fast path takes only cached keys
        assert exchange(app, warm, get("/v1/assessments", key)).status == "200 OK"
    return StoringApps(fast, plain, fast_path, key)


@pytest.fixture(autouse=True)
def counts_alike(storing_apps):
    """Each test starts both apps' rate-limit counts afresh: some send to one app only."""
    for app in (storing_apps.fast, storing_apps.plain):
        state(app).limiter.shared = MemoryCounts(clock=lambda: FIXED_TIME)


@pytest.fixture(autouse=True)
def same_ids_and_times(monkeypatch):
    """Record ids from a counter, started at ``restart(pair)`` (pair by pair, so that both apps
    make the same ids and no pair repeats another's), and one creation time."""
    counter = itertools.count()

    def restart(pair: int) -> None:
        nonlocal counter
        counter = itertools.count(pair * 1000)

    def urandom(size: int) -> bytes:
        return next(counter).to_bytes(size, "big")

    monkeypatch.setattr(record_types, "os", SimpleNamespace(urandom=urandom))
    monkeypatch.setattr(record_types, "time", SimpleNamespace(time_ns=lambda: 1_767_000_000_000))
    monkeypatch.setattr(
        record_store, "datetime", SimpleNamespace(now=lambda tz: STORED_AT.astimezone(tz))
    )
    return restart


def stored_both(apps: StoringApps, capture: LineCapture, restart, request: dict):
    """Each app's exchange, equal, with the same ids and times; whether the fast path served."""
    pair = next(PAIRS)
    served = apps.fast_path.served
    restart(pair)
    fast = exchange(apps.fast, capture, request)
    answered_fast = apps.fast_path.served - served
    restart(pair)
    plain = exchange(apps.plain, capture, request)
    assert_alike(fast, plain)
    return fast, answered_fast == 1


def stored_record(app, location: str):
    """The assessment stored at ``location`` in the app's database."""
    storage, record_id = state(app).storage, location.rsplit("/", 1)[1]
    with storage.engine.connect() as connection:
        tenant_id = connection.execute(
            sa.text("SELECT tenant_id FROM records WHERE id = :id"), {"id": record_id}
        ).scalar_one()
    return storage.records.get(tenant_id, "assessment", record_id)


def assessments_in(app) -> int:
    with state(app).storage.engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM records")).scalar_one()


def test_every_clinical_case_is_stored_alike_and_by_the_fast_path(
    storing_apps, access_lines, same_ids_and_times
):
    for name, report in REPORTS:
        answer, served = stored_both(
            storing_apps,
            access_lines,
            same_ids_and_times,
            post("/v1/assess", storing_apps.key, report),
        )
        assert answer.status == "201 CREATED", name
        assert served, f"{name}: the fast path left a stored assessment to Flask"
        assert dict(answer.headers)["Location"].startswith("/v1/assessments/")
        # Read back alike, by the fast path too.
        location = dict(answer.headers)["Location"]
        read, read_fast = stored_both(
            storing_apps, access_lines, same_ids_and_times, get(location, storing_apps.key)
        )
        assert read.status == "200 OK"
        assert read_fast
        # The stored answer's bytes spliced (assessment_json) are the record rendered whole.
        assert read.body == answer.body
        assert answer.body == orjson.dumps(
            render_assessment(stored_record(storing_apps.fast, location))
        ), name
    assert assessments_in(storing_apps.fast) == assessments_in(storing_apps.plain)


@pytest.mark.parametrize(
    "body",
    [
        {**examples.SELF_CARE_TECHNIQUE, "store": True},
        {**examples.SELF_CARE_TECHNIQUE, "rules_version": "1.0.0"},
        {
            **examples.SELF_CARE_TECHNIQUE,
            "subject": {"system": "https://fitness.example/member-ids", "value": "m-1"},
        },
    ],
    ids=["store true", "pinned to 1.0.0", "with a subject"],
)
def test_stored_variants_are_alike(storing_apps, access_lines, same_ids_and_times, body):
    answer, served = stored_both(
        storing_apps, access_lines, same_ids_and_times, post("/v1/assess", storing_apps.key, body)
    )
    assert answer.status == "201 CREATED"
    assert served


def test_every_clinical_case_stored_with_a_key_and_replayed_is_alike(
    storing_apps, access_lines, same_ids_and_times
):
    run = secrets.token_hex(4)
    for number, (name, report) in enumerate(REPORTS[::5]):
        key = {"Idempotency-Key": f"{run}-{number}"}
        request = post("/v1/assess", storing_apps.key, report, headers=key)
        for replay in (False, True):
            answer, served = stored_both(storing_apps, access_lines, same_ids_and_times, request)
            assert answer.status == "201 CREATED", name
            assert served, f"{name}: the fast path left a keyed assessment to Flask"
            assert (("Idempotent-Replayed", "true") in answer.headers) is replay


@pytest.mark.parametrize(
    ("second", "status"),
    [
        ({**examples.SELF_CARE_TECHNIQUE, "pain": {"intensity": 2}}, "422 UNPROCESSABLE ENTITY"),
        ({**examples.SELF_CARE_TECHNIQUE, "store": False}, "200 OK"),
    ],
    ids=["another report: refused", "store false: not stored, the key not read"],
)
def test_a_key_used_for_another_request_is_flasks_alike(
    storing_apps, access_lines, same_ids_and_times, second, status
):
    key = {"Idempotency-Key": secrets.token_hex(8)}
    first = post("/v1/assess", storing_apps.key, examples.SELF_CARE_TECHNIQUE, headers=key)
    stored, served = stored_both(storing_apps, access_lines, same_ids_and_times, first)
    assert (stored.status, served) == ("201 CREATED", True)
    again = post("/v1/assess", storing_apps.key, second, headers=key)
    answer, served = stored_both(storing_apps, access_lines, same_ids_and_times, again)
    assert (answer.status, served) == (status, False)


def test_the_key_of_an_erased_record_is_flasks_alike(
    storing_apps, access_lines, same_ids_and_times
):
    key = {"Idempotency-Key": secrets.token_hex(8)}
    request = post("/v1/assess", storing_apps.key, examples.SELF_CARE_TECHNIQUE, headers=key)
    stored, _ = stored_both(storing_apps, access_lines, same_ids_and_times, request)
    location = dict(stored.headers)["Location"]
    erased, _ = stored_both(
        storing_apps,
        access_lines,
        same_ids_and_times,
        get(location, storing_apps.key, method="DELETE"),
    )
    assert erased.status == "204 NO CONTENT"
    answer, served = stored_both(storing_apps, access_lines, same_ids_and_times, request)
    assert answer.status == "410 GONE"
    assert not served


def test_a_write_that_fails_is_answered_by_flask_and_not_tried_again(
    storing_apps, access_lines, same_ids_and_times, monkeypatch
):
    """The database away: the fast path's write fails once; Flask answers that failure (the
    503) without writing, so a write whose outcome is unknown is never made twice."""
    writes = {"fast": 0, "plain": 0}

    def failing(name):
        def create(**kwargs):
            writes[name] += 1
            raise StorageUnavailable("the database is away")

        return create

    for name in writes:
        app = getattr(storing_apps, name)
        monkeypatch.setattr(state(app).storage.records, "create", failing(name))
    request = post("/v1/assess", storing_apps.key, examples.SELF_CARE_TECHNIQUE)
    answer, served = stored_both(storing_apps, access_lines, same_ids_and_times, request)
    assert answer.status == "503 SERVICE UNAVAILABLE"
    assert not served
    assert writes == {"fast": 1, "plain": 1}


@pytest.mark.parametrize("broken", ["assessment_level", "assessment_path", "assessment_json"])
def test_a_failure_after_the_write_is_answered_as_flask_would_and_never_stored_again(
    storing_apps, access_lines, same_ids_and_times, monkeypatch, broken, caplog
):
    """Flask would store the request again: once written, a failure (while the triage level is
    counted, the reply made or sent) is the server's 500 problem, answered by the fast path
    with the pipeline's headers, log line and metrics, and the error logged."""

    def fails(*args):
        raise RuntimeError(f"{broken} failed")

    monkeypatch.setattr(fast_answers, broken, fails)
    before = assessments_in(storing_apps.fast)
    served = storing_apps.fast_path.served
    same_ids_and_times(next(PAIRS))
    request = post("/v1/assess", storing_apps.key, examples.SELF_CARE_TECHNIQUE)
    answer = exchange(storing_apps.fast, access_lines, request)
    assert answer.status == "500 INTERNAL SERVER ERROR"
    assert dict(answer.headers)["Content-Type"] == "application/problem+json"
    assert dict(answer.headers)["X-Request-ID"] == request["headers"]["X-Request-ID"]
    problem = json.loads(answer.body)
    assert (problem["status"], problem["request_id"]) == (500, request["headers"]["X-Request-ID"])
    assert "failed" not in answer.body.decode()  # the error's text stays in the log
    assert [(line["status"], line["route"]) for line in answer.lines] == [(500, "/v1/assess")]
    assert any(f"{broken} failed" in str(record.exc_info) for record in caplog.records)
    assert storing_apps.fast_path.served == served + 1
    assert assessments_in(storing_apps.fast) == before + 1  # its row holds its plan; once


def test_a_failure_making_a_stored_answer_is_the_same_500_on_both_paths(
    storing_apps, access_lines, same_ids_and_times, monkeypatch
):
    """The answer of a stored assessment fails to render: both paths answer the same 500
    problem, which says where the record is (a retry would store it again)."""

    def fails(record):
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(fast_answers, "assessment_json", fails)
    monkeypatch.setattr(assessment_views, "assessment_json", fails)
    request = post("/v1/assess", storing_apps.key, examples.SELF_CARE_TECHNIQUE)
    answer, served = stored_both(storing_apps, access_lines, same_ids_and_times, request)
    assert answer.status == "500 INTERNAL SERVER ERROR"
    assert served
    detail = json.loads(answer.body)["detail"]
    assert detail.startswith("The record was stored at /v1/assessments/")
    assert answer.lines[0]["triage_level"] == "self_care"


def test_a_request_left_to_flask_is_timed_from_when_the_fast_path_began_it(
    storing_apps, access_lines, monkeypatch
):
    """The database waited out (a write that failed after 3 s): Flask's log line and latency
    count those 3 s, as they would have had Flask alone made the request."""
    now = [1000.0]
    monkeypatch.setattr(observability, "perf_counter", lambda: now[0])

    def slow_failure(**kwargs):
        now[0] += 3.0
        raise StorageUnavailable("connection timed out")

    monkeypatch.setattr(state(storing_apps.fast).storage.records, "create", slow_failure)
    request = post("/v1/assess", storing_apps.key, examples.SELF_CARE_TECHNIQUE)
    answer = exchange(storing_apps.fast, access_lines, request)
    assert answer.status == "503 SERVICE UNAVAILABLE"
    assert answer.lines[0]["duration_ms"] == 3000.0


def test_store_failed_carries_the_error():
    error = StorageUnavailable("away")
    assert StoreFailed(error).error is error
