"""The fast path answers exactly as Flask does, byte for byte, and only what it may answer.

Two apps on one database, the same settings and the same API keys: one with the fast path
(``service.fast_path``) in front of Flask, one without. Every request is sent to both, as WSGI
calls, with a fixed X-Request-ID; their status, headers (in order), body, access log line and
metric samples must be equal. The request clock and the rate-limit clock are fixed so that the
durations (in the log line and the latency histogram) and the rate-limit headers are equal too.
Every clinical case of tests/rules/cases goes to both routes, and every class of request the
fast path must leave to Flask goes too; the fast path's own count says which of them it served,
so that this cannot pass with the fast path never used.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from service import create_app, examples
from service.fast_path import FastPath, install_fast_path
from service.rate_counts import MemoryCounts, parse_windows
from service.state import state
from service.storage import Storage, StorageUnavailable
from tests.conftest import app_config
from tests.rules.clinical_cases import load_cases
from tests.service.wsgi_exchange import Exchange, LineCapture, assert_alike, exchange, get, post

pytestmark = pytest.mark.usefixtures("fixed_request_clock", "access_lines")

ORIGIN = "https://app.example.com"
# Far in the past: the rate-limit windows never end during the tests, and Retry-After is 1.
FIXED_TIME = time.time() - 100_000
ROUTES = ("/v1/assess", "/v1/escalation-check")
REPORT = examples.SELF_CARE_TECHNIQUE


def clinical_reports() -> list[tuple[str, dict]]:
    return [(f"{Path(file).stem}: {case['name']}", case["report"]) for file, case in load_cases()]


CLINICAL_REPORTS = clinical_reports()


@dataclass
class Apps:
    fast: object  # the app with the fast path
    plain: object  # the app without it
    fast_path: FastPath


@pytest.fixture(scope="module")
def apps(tmp_path_factory) -> Apps:
    url = f"sqlite:///{tmp_path_factory.mktemp('fast-path') / 'popliteal.sqlite3'}"
    storage = Storage(url)
    storage.upgrade()
    storage.dispose()
    config = app_config(
        DATABASE_URL=url,
        RATELIMIT_ENABLED=True,
        RATELIMIT_APPLICATION="100000 per minute;10000 per second",
        # As in production: the fast path takes only keys verified within this time.
        API_KEY_CACHE_SECONDS=600,
        CORS_ORIGINS=ORIGIN,
        HSTS_SECONDS=600,
    )
    fast, plain = create_app(config), create_app(config)
    fast_path = install_fast_path(fast, enabled=True)
    assert install_fast_path(plain, enabled=False) is None
    for app in (fast, plain):
        state(app).limiter.shared = MemoryCounts(clock=lambda: FIXED_TIME)
    return Apps(fast, plain, fast_path)


@pytest.fixture
def key(apps, access_lines) -> str:
    """A key of a tenant of this test alone (its rate-limit counts start alike in both apps),
    verified once by each app. A key not yet verified is Flask's: it is looked up there."""
    made, _ = state(apps.fast).storage.keys.create(f"fast-{secrets.token_hex(4)}", label="t")
    answer, served = both(apps, access_lines, post("/v1/escalation-check", made, REPORT))
    assert answer.status == "200 OK"
    assert not served
    return made


def both(apps: Apps, capture: LineCapture, request: dict) -> tuple[Exchange, bool]:
    """The fast app's exchange, equal to the plain app's, and whether the fast path served it."""
    served = apps.fast_path.served
    fast = exchange(apps.fast, capture, request)
    answered_fast = apps.fast_path.served - served
    plain = exchange(apps.plain, capture, request)
    assert apps.fast_path.served - served == answered_fast, "the plain app has no fast path"
    assert_alike(fast, plain)
    return fast, answered_fast == 1


@pytest.mark.parametrize("path", ROUTES)
def test_every_clinical_case_is_answered_alike_and_by_the_fast_path(apps, key, access_lines, path):
    extra = {"store": False} if path == "/v1/assess" else {}
    for name, report in CLINICAL_REPORTS:
        answer, served = both(apps, access_lines, post(path, key, {**report, **extra}))
        assert answer.status == "200 OK", name
        assert served, f"{name}: the fast path left a valid report to Flask"
        decided = json.loads(answer.body)
        level = decided["triage"]["level"] if path == "/v1/assess" else decided["level"]
        assert answer.lines[0]["triage_level"] == level
        assert answer.lines[0]["route"] == path


NULL_AND_ABSENT = {
    "rules_version null": {**examples.SELF_CARE_TECHNIQUE, "rules_version": None},
    "rules_version pinned": {**examples.SELF_CARE_TECHNIQUE, "rules_version": "1.0.0"},
    "optional section null": {**examples.MINIMAL, "signs": None},
    "optional answer null": {"pain": {"intensity": 2, "side": None}},
    "only the required answer": examples.MINIMAL,
}


@pytest.mark.parametrize("name", NULL_AND_ABSENT)
@pytest.mark.parametrize("path", ROUTES)
def test_null_and_absent_answers_are_served_alike(apps, key, access_lines, path, name):
    extra = {"store": False} if path == "/v1/assess" else {}
    answer, served = both(apps, access_lines, post(path, key, {**NULL_AND_ABSENT[name], **extra}))
    assert answer.status == "200 OK"
    assert served


def test_a_subject_with_store_false_is_served_and_not_kept(apps, key, access_lines):
    subject = {"system": "https://fitness.example/member-ids", "value": "m-1"}
    body = {**examples.SELF_CARE_TECHNIQUE, "store": False, "subject": subject}
    answer, served = both(apps, access_lines, post("/v1/assess", key, body))
    assert answer.status == "200 OK"
    assert served


UNSTORED = {**REPORT, "store": False}


class BrokenBody(io.RawIOBase):
    """A connection that breaks while the body is read."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise OSError("connection reset")


OVERSIZE = json.dumps({**UNSTORED, "padding": "x" * 70_000})
# Requests the fast path must leave to Flask, each made with the test's API key.
QUESTIONNAIRE_RESPONSE = examples.QUESTIONNAIRE_RESPONSE_EXAMPLES["possible_dvt"]["value"]
FHIR = "application/fhir+json"
CHUNKED = {"wsgi.input_terminated": True}
FALLING_THROUGH = {
    "no key": lambda key: post("/v1/assess", None, UNSTORED),
    "a wrong key": lambda key: post("/v1/assess", "plt_" + "A" * 54, UNSTORED),
    "a key under another scheme": lambda key: post(
        "/v1/assess", None, UNSTORED, headers={"Authorization": f"Basic {key}"}
    ),
    "malformed JSON": lambda key: post("/v1/assess", key, data='{"pain": '),
    "an empty body": lambda key: post("/v1/escalation-check", key, data=""),
    "an invalid report": lambda key: post("/v1/assess", key, {"pain": {"intensity": 99}}),
    "a required answer null": lambda key: post("/v1/escalation-check", key, {"pain": None}),
    "an unknown field": lambda key: post("/v1/escalation-check", key, {**REPORT, "x": 1}),
    "store on escalation-check": lambda key: post("/v1/escalation-check", key, UNSTORED),
    "store as text": lambda key: post("/v1/assess", key, {**REPORT, "store": "false"}),
    "an unknown rules version": lambda key: post(
        "/v1/assess", key, {**UNSTORED, "rules_version": "9.9.9"}
    ),
    "a well-formed Idempotency-Key, unstored": lambda key: post(
        "/v1/assess", key, UNSTORED, headers={"Idempotency-Key": secrets.token_hex(8)}
    ),
    "a malformed Idempotency-Key": lambda key: post(
        "/v1/assess", key, UNSTORED, headers={"Idempotency-Key": "bad key!"}
    ),
    "a malformed Idempotency-Key, stored": lambda key: post(
        "/v1/assess", key, REPORT, headers={"Idempotency-Key": "bad key!"}
    ),
    "an Idempotency-Key on escalation-check": lambda key: post(
        "/v1/escalation-check", key, REPORT, headers={"Idempotency-Key": secrets.token_hex(8)}
    ),
    "a query string": lambda key: post("/v1/assess", key, UNSTORED, query_string="store=false"),
    "a FHIR body": lambda key: post(
        "/v1/escalation-check", key, QUESTIONNAIRE_RESPONSE, content_type=FHIR
    ),
    "a QuestionnaireResponse sent as JSON": lambda key: post(
        "/v1/escalation-check", key, QUESTIONNAIRE_RESPONSE
    ),
    "text/plain": lambda key: post("/v1/assess", key, UNSTORED, content_type="text/plain"),
    "JSON with a charset": lambda key: post(
        "/v1/assess", key, UNSTORED, content_type="application/json; charset=utf-8"
    ),
    "an over-size body": lambda key: post("/v1/assess", key, data=OVERSIZE),
    "a body shorter than its Content-Length": lambda key: post(
        "/v1/escalation-check", key, REPORT, environ_overrides={"CONTENT_LENGTH": "9000"}
    ),
    "a body whose reading fails": lambda key: post(
        "/v1/escalation-check", key, REPORT, environ_overrides={"wsgi.input": BrokenBody()}
    ),
    "a chunked body": lambda key: post(
        "/v1/escalation-check",
        key,
        input_stream=io.BytesIO(json.dumps(REPORT).encode()),
        environ_overrides=CHUNKED,
        headers={"Transfer-Encoding": "chunked"},
    ),
    "an allowed CORS origin": lambda key: post(
        "/v1/assess", key, UNSTORED, headers={"Origin": ORIGIN}
    ),
    "another CORS origin": lambda key: post(
        "/v1/escalation-check", key, REPORT, headers={"Origin": "https://elsewhere.example"}
    ),
    "a CORS preflight": lambda key: post(
        "/v1/assess",
        None,
        method="OPTIONS",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    ),
    "Accept FHIR": lambda key: post("/v1/assess", key, UNSTORED, headers={"Accept": FHIR}),
    "Accept XML": lambda key: post(
        "/v1/escalation-check", key, REPORT, headers={"Accept": "application/xml"}
    ),
    "Accept FHIR of another version": lambda key: post(
        "/v1/assess", key, UNSTORED, headers={"Accept": f"{FHIR}; fhirVersion=3.0"}
    ),
    "HEAD": lambda key: post("/v1/assess", key, method="HEAD"),
    "GET": lambda key: post("/v1/escalation-check", key, method="GET"),
    "another address": lambda key: post("/v1/interview/next", key, REPORT),
}


@pytest.mark.parametrize("name", FALLING_THROUGH)
def test_what_the_fast_path_may_not_answer_is_flasks_alike(apps, key, access_lines, name):
    _, served = both(apps, access_lines, FALLING_THROUGH[name](key))
    assert not served


def test_a_stored_assessment_and_its_replay_are_flasks_alike(apps, key, access_lines):
    """Stored records have ids of their own: both apps store under one Idempotency-Key (the
    fast path stores, Flask replays), so that the second requests, both replays of that record,
    can be compared."""
    request = post("/v1/assess", key, REPORT, headers={"Idempotency-Key": secrets.token_hex(8)})
    served = apps.fast_path.served
    first = [exchange(app, access_lines, request) for app in (apps.fast, apps.plain)]
    assert [answer.status for answer in first] == ["201 CREATED", "201 CREATED"]
    assert apps.fast_path.served == served + 1
    replay, replayed_by_fast = both(apps, access_lines, request)
    assert ("Idempotent-Replayed", "true") in replay.headers
    assert replayed_by_fast


# -- GET of a stored assessment ----------------------------------------------------------------


def stored_assessment(apps: Apps, key: str, report: dict) -> str:
    """An assessment stored through the plain app (both apps share its database): its path."""
    answer = exchange(apps.plain, LineCapture(), post("/v1/assess", key, report))
    assert answer.status == "201 CREATED"
    return dict(answer.headers)["Location"]


@pytest.fixture(scope="module")
def stored_paths(apps) -> dict[str, str]:
    """Assessments of one in seven clinical cases, one pinned to the first rules version and one
    with a subject; and "key", a key of their tenant. They are stored with another key of that
    tenant, so that the key's rate-limit counts start alike in both apps."""
    keys = state(apps.plain).storage.keys
    tenant = f"store-{secrets.token_hex(4)}"
    writer, _ = keys.create(tenant, label="writer")
    paths = {}
    for name, report in CLINICAL_REPORTS[::7]:
        paths[name] = stored_assessment(apps, writer, report)
    paths["pinned to 1.0.0"] = stored_assessment(apps, writer, {**REPORT, "rules_version": "1.0.0"})
    subject = {"system": "https://fitness.example/member-ids", "value": "m-9"}
    paths["with a subject"] = stored_assessment(apps, writer, {**REPORT, "subject": subject})
    reader, _ = keys.create(tenant, label="reader")
    return {"key": reader, **paths}


def test_a_stored_assessment_is_read_alike_and_by_the_fast_path(apps, stored_paths, access_lines):
    key = stored_paths["key"]
    # A key not yet verified by the fast app is Flask's (it is looked up there, and cached).
    first_path = next(path for name, path in stored_paths.items() if name != "key")
    _, served = both(apps, access_lines, get(first_path, key))
    assert not served
    for name, path in stored_paths.items():
        if name == "key":
            continue
        answer, served = both(apps, access_lines, get(path, key))
        assert answer.status == "200 OK", name
        assert served, f"{name}: the fast path left a stored assessment to Flask"
        assert json.loads(answer.body)["links"]["self"] == path
        assert answer.lines[0]["route"] == "/v1/assessments/<string:assessment_id>"
    for accept in ("application/json", "*/*"):
        _, served = both(apps, access_lines, get(first_path, key, headers={"Accept": accept}))
        assert served


READS_FALLING_THROUGH = {
    "an unknown id": lambda path, key: get("/v1/assessments/" + "0" * 36, key),
    "an id too long": lambda path, key: get(path + "0", key),
    "an empty id": lambda path, key: get("/v1/assessments/", key),
    "a path below the id": lambda path, key: get(path + "/plan", key),
    "no key": lambda path, key: get(path, None),
    "a wrong key": lambda path, key: get(path, "plt_" + "A" * 54),
    "a query string": lambda path, key: get(path, key, query_string="x=1"),
    "Accept FHIR": lambda path, key: get(path, key, headers={"Accept": FHIR}),
    "Accept XML": lambda path, key: get(path, key, headers={"Accept": "application/xml"}),
    "an allowed CORS origin": lambda path, key: get(path, key, headers={"Origin": ORIGIN}),
    "HEAD": lambda path, key: get(path, key, method="HEAD"),
    "DELETE of another tenant's": lambda path, key: get(path, key, method="DELETE"),
    "a body": lambda path, key: get(
        path, key, data="{}", headers={"Content-Type": "application/json"}
    ),
    "its plan": lambda path, key: get(
        path.replace("/v1/assessments/", "/v1/exercise-prescriptions/"), key
    ),
}


@pytest.mark.parametrize("name", READS_FALLING_THROUGH)
def test_what_the_fast_path_may_not_read_is_flasks_alike(
    apps, key, stored_paths, access_lines, name
):
    """Made with the test's own key: the stored assessments are another tenant's (404)."""
    path = stored_paths["pinned to 1.0.0"]
    for_tenant = READS_FALLING_THROUGH[name](path, key)
    _, served = both(apps, access_lines, for_tenant)
    assert not served
    if name in ("DELETE of another tenant's", "no key", "a wrong key"):
        return
    # And with the key of the tenant whose assessment it is.
    own = READS_FALLING_THROUGH[name](path, stored_paths["key"])
    both(apps, access_lines, get(path, stored_paths["key"]))  # its key verified by both
    _, served = both(apps, access_lines, own)
    assert not served


def test_another_tenants_assessment_is_not_found_alike(apps, key, stored_paths, access_lines):
    answer, served = both(apps, access_lines, get(stored_paths["pinned to 1.0.0"], key))
    assert answer.status == "404 NOT FOUND"
    assert not served


def test_a_read_that_fails_is_answered_by_flask_without_a_second_wait(
    apps, stored_paths, access_lines, monkeypatch
):
    """The database away: the fast path's read fails once, and Flask answers that failure (the
    503) rather than try the database again."""
    key, path = stored_paths["key"], stored_paths["with a subject"]
    both(apps, access_lines, get(path, key))  # the key verified by both apps
    reads = {"fast": 0, "plain": 0}

    def failing(name):
        def read(*args, **kwargs):
            reads[name] += 1
            raise StorageUnavailable("the database is away")

        return read

    monkeypatch.setattr(state(apps.fast).storage.records, "get", failing("fast"))
    monkeypatch.setattr(state(apps.plain).storage.records, "get", failing("plain"))
    answer, served = both(apps, access_lines, get(path, key))
    assert answer.status == "503 SERVICE UNAVAILABLE"
    assert not served
    assert reads == {"fast": 1, "plain": 1}


def test_the_rate_limit_is_counted_once_and_refused_alike(apps, key, access_lines, monkeypatch):
    for app in (apps.fast, apps.plain):
        monkeypatch.setattr(state(app).limiter, "windows", parse_windows("3 per minute"))
    answers = [both(apps, access_lines, post("/v1/escalation-check", key, REPORT)) for _ in "1234"]
    assert [served for _, served in answers] == [True, True, True, False]
    assert [dict(answer.headers)["X-RateLimit-Remaining"] for answer, _ in answers] == [
        "2",
        "1",
        "0",
        "0",
    ]
    # Counted once: the fast path hands the refused request's count to Flask with it.
    key_id = state(apps.fast).storage.keys.authenticate(key).key_id
    counts = [
        state(app).limiter.hit(f"key:{key_id}", "assessment.escalation_check").count
        for app in (apps.fast, apps.plain)
    ]
    assert counts == [5, 5]
    refused = answers[-1][0]
    assert refused.status == "429 TOO MANY REQUESTS"
    assert dict(refused.headers)["Retry-After"] == "1"
    assert refused.lines[0]["status"] == 429


def test_the_fast_path_is_behind_a_proxy_fix(tmp_path):
    """Behind a proxy, the fast path sees the client's address as Flask does."""
    url = f"sqlite:///{tmp_path / 'p.sqlite3'}"
    app = create_app(app_config(DATABASE_URL=url, PROXY_HOPS=1))
    fast_path = install_fast_path(app, enabled=True)
    assert app.wsgi_app.app is fast_path


def test_the_fast_path_is_off_when_configured_so(monkeypatch, tmp_path):
    monkeypatch.setenv("POPLITEAL_FAST_PATH", "false")
    app = create_app(app_config(DATABASE_URL=f"sqlite:///{tmp_path / 'o.sqlite3'}"))
    assert install_fast_path(app) is None
    assert not isinstance(app.wsgi_app, FastPath)
