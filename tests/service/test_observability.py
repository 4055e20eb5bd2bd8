"""Logs and metrics: one JSON line per request with the allowed fields only, no health data in
any log at any level (errors included), and Prometheus metrics summed over every worker."""

from __future__ import annotations

import collections
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from bench import run as run_bench
from service import create_app, examples
from service.logs import ACCESS_LOGGER, REQUEST_FIELDS, RedactingJsonFormatter
from tests.conftest import (
    REPO_ROOT,
    app_config,
    free_port,
    gunicorn_env,
    gunicorn_server,
    tenant_factory,
)

STANDARD_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _access_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == ACCESS_LOGGER]


# -- The per-request line --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "authorised", "status", "route"),
    [
        ("post", "/v1/assess", {**examples.POSSIBLE_DVT, "store": False}, True, 200, "/v1/assess"),
        (
            "post",
            "/v1/escalation-check",
            examples.SCIATICA_TINGLING,
            True,
            200,
            "/v1/escalation-check",
        ),
        ("get", "/healthz", None, False, 200, "/healthz"),
        ("get", "/v1/conditions", None, False, 401, "/v1/conditions"),
        ("get", "/no/such/page", None, False, 404, "unmatched"),
        ("post", "/v1/assess", {"pain": {"intensity": "x"}}, True, 422, "/v1/assess"),
    ],
)
def test_every_request_is_logged_once_with_only_the_allowed_fields(
    client, anonymous_client, tenant, caplog, method, path, body, authorised, status, route
):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    user = client if authorised else anonymous_client
    response = getattr(user, method)(path, json=body, headers={"X-Request-ID": "req-123"})
    assert response.status_code == status
    [record] = _access_records(caplog)
    extra = set(vars(record)) - STANDARD_RECORD_FIELDS
    assert extra == set(REQUEST_FIELDS), "nothing but the allow-listed fields"
    assert record.request_id == "req-123"
    assert record.route == route
    assert record.status == status
    assert record.method == method.upper()
    assert record.duration_ms >= 0
    assert record.tenant == (tenant.name if authorised else None)
    if status == 200 and path.startswith("/v1/"):
        assert record.rules_version == response.headers["X-Rules-Version"]
        level = response.json.get("level") or response.json["triage"]["level"]
        assert record.triage_level == level
    else:
        assert record.triage_level is None


def test_the_access_line_is_one_json_object(caplog, client):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    client.post("/v1/escalation-check", json=examples.POSSIBLE_DVT)
    [record] = _access_records(caplog)
    line = json.loads(RedactingJsonFormatter().format(record))
    assert line["message"] == "request"
    assert line["level"] == "INFO"
    assert line["logger"] == ACCESS_LOGGER
    assert line["triage_level"] == "urgent"
    assert {"timestamp", "service"} <= set(line)


# A fixed moment, so that a line's timestamp can be compared as text.
CREATED = 1_700_000_000.25
CREATED_TEXT = "2023-11-14T22:13:20.250000+00:00"


def _record(name: str, level: int, message: str, args=(), exc_info=None, **extra):
    record = logging.getLogger(name).makeRecord(
        name, level, "somewhere.py", 1, message, args, exc_info, None, extra
    )
    record.created = CREATED
    return record


def test_an_access_line_holds_exactly_these_fields_in_this_order():
    values = {
        "request_id": "req-1",
        "tenant": "clinic-ü",
        "method": "POST",
        "route": "/v1/assess",
        "status": 200,
        "duration_ms": 1.25,
        "rules_version": "2.0.0",
        "triage_level": "urgent",
    }
    record = _record(ACCESS_LOGGER, logging.INFO, "request", **values)
    text = RedactingJsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert list(line) == ["level", "logger", "message", "service", *REQUEST_FIELDS, "timestamp"]
    assert line == {
        "level": "INFO",
        "logger": ACCESS_LOGGER,
        "message": "request",
        "service": "popliteal",
        **values,
        "timestamp": CREATED_TEXT,
    }


def test_an_error_line_names_the_exception_and_its_causes_but_never_their_messages():
    canary = _canary()
    try:
        try:
            raise KeyError(f"first {canary}")
        except KeyError as error:
            raise RuntimeError(f"second {canary}") from error
    except RuntimeError:
        exc_info = sys.exc_info()
    record = _record(
        "popliteal.test", logging.ERROR, "failed in %s", ("a step",), exc_info, kind="unexpected"
    )
    line = json.loads(RedactingJsonFormatter().format(record))
    assert list(line) == [
        "level", "logger", "message", "service", "exc_info", "kind", "timestamp"
    ]  # fmt: skip
    trace = line.pop("exc_info")
    assert line == {
        "level": "ERROR",
        "logger": "popliteal.test",
        "message": "failed in a step",
        "service": "popliteal",
        "kind": "unexpected",
        "timestamp": CREATED_TEXT,
    }
    assert trace.startswith("Traceback (most recent call last):\n")
    assert "test_an_error_line_names_the_exception" in trace, "the frames are kept"
    assert trace.endswith("RuntimeError (after KeyError)")
    assert canary not in trace


def test_a_value_json_cannot_hold_as_such_still_gives_a_line_without_an_exception_message():
    canary = _canary()
    record = _record(
        "popliteal.test",
        logging.WARNING,
        "odd values",
        error=ValueError(canary),
        big=2**70,
        kind=KeyError,
    )
    line = json.loads(RedactingJsonFormatter().format(record))
    assert line["error"] == "ValueError"
    assert line["big"] == 2**70
    assert line["kind"] == "KeyError"
    assert canary not in json.dumps(line)


def test_each_request_is_observed_once_and_counted_by_its_latency_histogram(client):
    labels = {"route": "/healthz", "method": "GET", "status": "200"}

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        sample("popliteal_http_requests_total"),
        sample("popliteal_http_request_duration_seconds_count"),
    )
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    after = (
        sample("popliteal_http_requests_total"),
        sample("popliteal_http_request_duration_seconds_count"),
    )
    assert after[0] - before[0] == 3
    assert after[1] - before[1] == 3
    assert after[0] == after[1], "the request count is the histogram's count"
    assert REGISTRY.get_sample_value("popliteal_http_requests_created", labels)


# -- No health data in any log ----------------------------------------------------------------


def _canary() -> str:
    return "zqx" + secrets.token_hex(6)


def _leaky_requests(canary: str) -> list[tuple[str, str, dict | bytes | None, dict]]:
    """Requests whose bodies, headers and queries carry the canary, valid and invalid alike."""
    subject = {"system": f"urn:{canary}:members", "value": f"member-{canary}"}
    report = {**examples.SELF_CARE_TECHNIQUE, "subject": subject}
    bad_enum = json.loads(json.dumps(examples.SELF_CARE_TECHNIQUE))
    bad_enum["pain"]["side"] = f"side-{canary}"
    unknown_field = {**examples.SELF_CARE_TECHNIQUE, f"field_{canary}": canary}
    questionnaire = json.loads(
        json.dumps(examples.QUESTIONNAIRE_RESPONSE_EXAMPLES["technique_problem"]["value"])
    )
    questionnaire["subject"] = {"identifier": subject}
    headers = {"Idempotency-Key": f"key-{canary}"}
    return [
        ("POST", "/v1/assess", report, headers),
        ("POST", "/v1/assess", report, headers),  # the replay
        ("POST", "/v1/assess", {**report, "store": False}, {}),
        ("POST", "/v1/escalation-check", bad_enum, {}),
        ("POST", "/v1/assess", unknown_field, {}),
        ("POST", "/v1/assess", f'{{"pain": "{canary}"'.encode(), {}),  # malformed JSON
        ("POST", "/v1/assess", questionnaire, {"Content-Type": "application/fhir+json"}),
        ("POST", "/v1/exercise-prescriptions", {"report": bad_enum["pain"]}, {}),
        ("GET", f"/v1/assessments?subject=urn:{canary}|member-{canary}", None, {}),
        ("GET", f"/v1/assessments?subject={canary}", None, {}),  # a malformed filter
        ("POST", "/v1/assess", b"x" * 70_000 + canary.encode(), {}),  # too large
    ]


def test_no_request_value_reaches_the_logs_in_process_even_on_a_crash(sqlite_database, caplog):
    """A fresh app with a route that crashes quoting its body, as a careless bug would."""
    canary = _canary()
    app = create_app(app_config(DATABASE_URL=sqlite_database))

    def crash():
        from flask import request

        raise RuntimeError(f"could not handle {request.get_data(as_text=True)}")

    app.add_url_rule("/v1/crash", "crash", crash, methods=["POST"])
    tenant = tenant_factory(app)()
    caplog.set_level(logging.DEBUG)
    for method, path, body, headers in [
        *_leaky_requests(canary),
        ("POST", "/v1/crash", {"note": canary}, {}),
    ]:
        kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
        headers = {"Content-Type": "application/json", **headers}
        tenant.client.open(path, method=method, headers=headers, **kwargs)

    crash_records = [r for r in caplog.records if r.exc_info and "crash" in r.getMessage()]
    assert crash_records, "the crash was logged (else this test could not fail)"
    # Without redaction the crash's message would leak the body: the check below has teeth.
    assert canary in logging.Formatter().format(crash_records[0])
    formatter = RedactingJsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert len(lines) >= len(_leaky_requests(canary)) + 1
    leaking = [line for line in lines if canary in line]
    assert leaking == []
    assert "RuntimeError" in formatter.format(crash_records[0])


@pytest.fixture(scope="module")
def logged_server(tmp_path_factory):
    """gunicorn with gunicorn.conf.py at DEBUG, its whole output kept in a file."""
    folder = tmp_path_factory.mktemp("logged")
    output = folder / "gunicorn.log"
    with gunicorn_server(
        f"sqlite:///{folder / 'popliteal.sqlite3'}",
        tenant="log-tests",
        output=output,
        POPLITEAL_LOG_LEVEL="DEBUG",
        GUNICORN_ACCESS_LOG="true",
        RATELIMIT_ENABLED="false",
    ) as server:
        yield server.url, server.keys[0], output, server.process


def _send(base: str, method: str, path: str, body, headers: dict) -> int:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _gunicorn_logged(text: str) -> set[str]:
    """The request ids of gunicorn's access lines written so far (a line still being written
    is not one)."""
    logged = set()
    for line in text.splitlines():
        if '"gunicorn.access"' in line:
            try:
                logged.add(json.loads(line).get("request_id"))
            except ValueError:
                continue
    return logged


def _log_text(output, ready, timeout: float = 5.0) -> str:
    """The log file once ``ready(text)`` holds, or at the deadline: workers write their lines
    on their own, and gunicorn's access line only after the answer has been sent."""
    deadline = time.monotonic() + timeout
    while True:
        text = output.read_text()
        if ready(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def _raw(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        return connection.recv(65536)


def test_requests_gunicorn_refuses_itself_are_logged_without_quoting_them(logged_server):
    """A malformed request line or header never reaches the app: gunicorn answers 400 and
    logs it, and its message would quote the request (query, header, even a key)."""
    base, _key, output, _process = logged_server
    canary = _canary()
    answers = [
        _raw(base, f"GET /v1/assessments?subject={canary}\x01 HTTP/1.1\r\n\r\n".encode()),
        _raw(base, f"GET /healthz HTTP/1.1\r\nAuthorization Bearer {canary}\r\n\r\n".encode()),
    ]
    assert all(answer.startswith(b"HTTP/1.1 400") for answer in answers), answers
    text = _log_text(output, lambda text: text.count("invalid request refused") >= 2)
    assert canary not in text
    refusals = [line for line in text.splitlines() if "invalid request refused" in line]
    assert len(refusals) >= 2, "the refusals are logged (else this test could not fail)"


def test_no_request_value_reaches_gunicorns_output_at_any_level(logged_server):
    base, key, output, _process = logged_server
    canary = _canary()
    sent = []
    for n, (method, path, body, headers) in enumerate(_leaky_requests(canary)):
        request_id = f"leak-{n}"
        status = _send(
            base,
            method,
            path,
            body,
            {
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "X-Request-ID": request_id,
                **headers,
            },
        )
        sent.append((request_id, status))
    statuses = {status for _, status in sent}
    assert {201, 200, 400, 413, 422} <= statuses, "valid and invalid requests alike"

    # Ready when gunicorn logged each of these requests (but the over-size one, see below):
    # the file holds the module's earlier tests' lines too, so a count of lines is not enough.
    expected = {rid for rid, _ in sent[:-1]}
    text = _log_text(output, lambda text: expected <= _gunicorn_logged(text))
    assert canary not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # all JSON
    access = collections.Counter(
        line["request_id"] for line in lines if line["logger"] == ACCESS_LOGGER
    )
    for request_id, status in sent:
        assert access[request_id] == 1, f"{request_id} ({status}) logged once"
    gunicorn_access = [line for line in lines if line["logger"] == "gunicorn.access"]
    logged_by_gunicorn = collections.Counter(line.get("request_id") for line in gunicorn_access)
    # The over-size body is refused unread: the client may close while gunicorn still drains
    # it, and gunicorn then writes no access line for that connection (a race, seen in CI).
    oversize = sent[-1][0]
    missing = [rid for rid, _ in sent if rid != oversize and logged_by_gunicorn[rid] != 1]
    assert missing == [], f"gunicorn's access line missing or repeated for {missing}"
    assert gunicorn_access, "gunicorn's own access line, when on, is JSON too"
    assert all("?" not in (line.get("path") or "") for line in gunicorn_access)


# -- Metrics ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def measured_server(tmp_path_factory):
    """gunicorn with two workers, metrics on their own port, a small per-key budget."""
    folder = tmp_path_factory.mktemp("metrics")
    metrics_port = free_port()
    samples = folder / "samples"
    samples.mkdir()
    with gunicorn_server(
        f"sqlite:///{folder / 'popliteal.sqlite3'}",
        tenant="metrics-tests",
        keys=3,
        output=subprocess.DEVNULL,
        POPLITEAL_METRICS_PORT=str(metrics_port),
        PROMETHEUS_MULTIPROC_DIR=str(samples),
        RATELIMIT_APPLICATION="10 per minute",
        POPLITEAL_AUTH_FAILURE_LIMIT="3 per minute",
        legacy_key=True,  # so that legacy-shaped wrong keys are looked up, and budgeted
    ) as server:
        yield server.url, f"http://127.0.0.1:{metrics_port}", server.keys, samples


def _post(base: str, path: str, body: dict, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, {}


def _held_post(base: str, path: str, body: dict, key: str):
    """A POST sent but for the second half of its body, which the worker that accepted it waits
    for; the function it answers sends the rest and answers (status, JSON body)."""
    data = json.dumps(body).encode()
    address = urllib.parse.urlsplit(base)
    connection = socket.create_connection((address.hostname, address.port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    half = len(data) // 2
    connection.sendall(head + data[:half])
    time.sleep(0.5)  # accepted by a worker, which now waits for the rest of the body

    def finish() -> tuple[int, dict]:
        with connection:
            connection.sendall(data[half:])
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        head_part, _, payload = answer.partition(b"\r\n\r\n")
        return int(head_part.split(b" ", 2)[1]), json.loads(payload)

    finish.connection = connection
    return finish


@pytest.fixture
def held_posts():
    """_held_post, with every connection it opened closed at the end, even if a test failed
    before finishing it (its worker would otherwise wait for the body until its timeout)."""
    held = []

    def hold(base: str, path: str, body: dict, key: str):
        held.append(_held_post(base, path, body, key))
        return held[-1]

    yield hold
    for finish in held:
        finish.connection.close()


def _samples(metrics_url: str) -> dict[tuple[str, frozenset], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _rule_firings(samples: dict[tuple[str, frozenset], float]) -> dict[str, float]:
    return {
        dict(labels)["rule_id"]: value
        for (name, labels), value in samples.items()
        if name == "popliteal_rule_firings_total"
    }


def test_metrics_sum_every_worker_and_match_what_clients_saw(measured_server, held_posts):
    base, metrics_url, (assess_key, check_key, flood_key), samples = measured_server
    reports = [examples.POSSIBLE_DVT, examples.SCIATICA_TINGLING, examples.SELF_CARE_TECHNIQUE]
    levels, fired = collections.Counter(), collections.Counter()
    # Both workers must serve: the first escalation check holds one worker while its body is
    # still arriving (a sync worker serves one request at a time), so the assessments sent
    # meanwhile are the other worker's.
    held = held_posts(base, "/v1/escalation-check", reports[0], check_key)
    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(
            pool.map(
                lambda n: _post(base, "/v1/assess", {**reports[n % 3], "store": False}, assess_key),
                range(9),
            )
        )
    for status, body in answers:
        assert status == 200
        levels[body["triage"]["level"]] += 1
        fired.update(rule["rule_id"] for rule in body["trace"]["rules_fired"])
    check_levels = collections.Counter()
    flags_of_first_report = []
    for n in range(3):
        if n == 0:
            status, body = held()
        else:
            status, body = _post(base, "/v1/escalation-check", reports[n], check_key)
        assert status == 200
        check_levels[body["level"]] += 1
        fired.update(flag["rule_id"] for flag in body["red_flags"])
        if n == 0:
            flags_of_first_report = [flag["rule_id"] for flag in body["red_flags"]]
    flood = collections.Counter(
        _post(base, "/v1/escalation-check", reports[0], flood_key)[0] for _ in range(30)
    )
    wrong_key = collections.Counter(
        _post(base, "/v1/escalation-check", reports[0], "plt_" + "w" * 43)[0] for _ in range(10)
    )
    assert flood[429] > 0
    assert wrong_key[429] > 0
    expected_firings = fired + collections.Counter(
        {rule_id: flood[200] for rule_id in flags_of_first_report}
    )
    # Rule firings reach the samples within POPLITEAL_METRICS_FLUSH_SECONDS (1 s); the rest as
    # each request is answered.
    metrics = _samples(metrics_url)
    deadline = time.monotonic() + 10
    while _rule_firings(metrics) != expected_firings and time.monotonic() < deadline:
        time.sleep(0.1)
        metrics = _samples(metrics_url)

    def value(name: str, **labels: str) -> float:
        return metrics.get((name, frozenset(labels.items())), 0.0)

    assert (
        value("popliteal_http_requests_total", route="/v1/assess", method="POST", status="200") == 9
    )
    assert value(
        "popliteal_http_request_duration_seconds_count",
        route="/v1/assess", method="POST", status="200",
    ) == 9  # fmt: skip
    for level, count in levels.items():
        assert value("popliteal_assessments_total", triage_level=level) == count
    for level, count in check_levels.items():
        assert value("popliteal_escalation_checks_total", triage_level=level) == count + (
            flood[200] if level == "urgent" else 0
        )
    assert _rule_firings(metrics) == dict(expected_firings)
    assert value("popliteal_rate_limit_rejections_total", limit="api_key") == flood[429]
    assert (
        value("popliteal_rate_limit_rejections_total", limit="failed_authentication")
        == wrong_key[429]
    )
    # Both workers served and left their samples; the master summed them.
    pids = {name.rsplit("_", 1)[-1] for name in os.listdir(samples) if name.endswith(".db")}
    assert len(pids) >= 2, pids


def _firings_in(samples: Path) -> dict[str, float]:
    """The rule firings the workers' samples files hold, summed as the master sums them."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(samples))
    return _rule_firings(
        {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in registry.collect()
            for sample in family.samples
        }
    )


def test_a_worker_writes_the_rule_firings_it_counted_when_it_exits(tmp_path):
    """With a flush interval longer than the test, only the worker's exit can write them."""
    samples = tmp_path / "samples"
    samples.mkdir()
    reports = [examples.POSSIBLE_DVT, examples.SCIATICA_TINGLING, examples.SELF_CARE_TECHNIQUE]
    fired = collections.Counter()
    with gunicorn_server(
        f"sqlite:///{tmp_path / 'popliteal.sqlite3'}",
        tenant="metrics-exit-tests",
        output=subprocess.DEVNULL,
        POPLITEAL_METRICS_PORT="0",
        PROMETHEUS_MULTIPROC_DIR=str(samples),
        POPLITEAL_METRICS_FLUSH_SECONDS="3600",
    ) as server:
        for report in reports:
            status, body = _post(
                server.url, "/v1/assess", {**report, "store": False}, server.keys[0]
            )
            assert status == 200
            fired.update(rule["rule_id"] for rule in body["trace"]["rules_fired"])
        assert fired
        assert _firings_in(samples) == {}  # counted, not written yet
    assert _firings_in(samples) == dict(fired)


def test_metrics_are_not_served_on_the_public_port(measured_server):
    base, metrics_url, _keys, _samples_dir = measured_server
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{base}/metrics", timeout=5)
    assert error.value.code == 404
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=5) as response:
        assert response.status == 200


def test_an_unreachable_database_is_counted():
    closed = free_port()
    app = create_app(
        app_config(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{closed}/none")
    )
    before = REGISTRY.get_sample_value("popliteal_database_errors_total", {"kind": "unavailable"})
    response = app.test_client().post(
        "/v1/assess",
        json=examples.SELF_CARE_TECHNIQUE,
        headers={"Authorization": "Bearer plt_unknown"},
    )
    assert response.status_code == 503
    after = REGISTRY.get_sample_value("popliteal_database_errors_total", {"kind": "unavailable"})
    assert (after or 0) - (before or 0) == 1


def _gunicorn_settings(code: str, **environment: str) -> list[str]:
    """What ``code`` prints with ``settings``, gunicorn.conf.py's names, loaded as gunicorn does."""
    program = f"import runpy; settings = runpy.run_path('gunicorn.conf.py'); {code}"
    env = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO_ROOT,
        env={**env, **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def test_the_gunicorn_config_takes_its_worker_count_from_the_environment_or_the_cpus():
    code = "print(settings['workers'], settings['_cpus_available']())"
    assert _gunicorn_settings(code, WEB_CONCURRENCY="7")[0] == "7"
    workers, cpus = map(int, _gunicorn_settings(code))
    assert cpus >= 1
    assert workers == cpus + 1


def test_the_default_worker_count_is_one_per_cpu_and_one_more():
    """The rule measured with bench/run.py: one sync worker per CPU and one more, which uses
    the CPU while the others wait on a commit or a client; so at least two, and one slow
    request never leaves no worker free."""
    code = "print(*(settings['default_workers'](cpus) for cpus in (1, 2, 3, 4, 8, 16)))"
    assert list(map(int, _gunicorn_settings(code))) == [2, 3, 4, 5, 9, 17]


def test_the_benchmark_runs_the_default_worker_count_of_its_two_cpu_machine():
    code = "print(settings['default_workers'](2))"
    assert int(_gunicorn_settings(code)[0]) == run_bench.WORKERS


def test_the_gunicorn_config_file_exists_where_every_launcher_looks():
    for launcher in ("scripts/run", "Dockerfile"):
        assert "gunicorn.conf.py" in Path(REPO_ROOT / launcher).read_text(), launcher


def test_a_made_up_method_does_not_make_a_metric_series_of_its_own(client, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = client.open("/healthz", method="BREWCOFFEE")
    assert response.status_code == 405
    [record] = _access_records(caplog)
    assert record.method == "other"
    assert REGISTRY.get_sample_value(
        "popliteal_http_requests_total",
        {"route": "unmatched", "method": "other", "status": "405"},
    )
    assert (
        REGISTRY.get_sample_value(
            "popliteal_http_requests_total",
            {"route": "unmatched", "method": "BREWCOFFEE", "status": "405"},
        )
        is None
    )


def test_by_default_the_metrics_folder_is_made_at_start_and_removed_at_exit(tmp_path):
    """No PROMETHEUS_MULTIPROC_DIR given: gunicorn.conf.py makes one, the workers' samples are
    summed from it, and the master removes it when it stops."""
    metrics_port = free_port()
    assert "PROMETHEUS_MULTIPROC_DIR" not in gunicorn_env()
    output = tmp_path / "gunicorn.log"
    with gunicorn_server(
        f"sqlite:///{tmp_path / 'popliteal.sqlite3'}",
        keys=0,
        output=output,
        POPLITEAL_METRICS_PORT=str(metrics_port),
    ) as server:
        for _ in range(4):
            urllib.request.urlopen(f"{server.url}/healthz", timeout=5).close()
        samples = _samples(f"http://127.0.0.1:{metrics_port}")
        healthz = {"route": "/healthz", "method": "GET", "status": "200"}
        assert samples[("popliteal_http_requests_total", frozenset(healthz.items()))] == 4
        [folder] = [
            Path(json.loads(line)["message"].removeprefix("metrics samples in "))
            for line in output.read_text().splitlines()
            if "metrics samples in " in line
        ]
        assert any(name.endswith(".db") for name in os.listdir(folder))
    assert not folder.exists()
