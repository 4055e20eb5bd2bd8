"""Bad input: a clear problem+json error with the right status, never a 500 or a stack trace."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from service.storage.records import ASSESSMENT
from service.storage.tables import records
from tests.conftest import gunicorn_server, tenant_factory

VALID = {"pain": {"intensity": 3}}
ENDPOINTS = ["/v1/assess", "/v1/escalation-check"]


def assert_problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["type"]
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"pain": {"intensity": "5"}}, "pain.intensity", "whole number from 0 to 10"),
        ({"pain": {"intensity": 5.0}}, "pain.intensity", "whole number from 0 to 10"),
        ({"pain": {"intensity": True}}, "pain.intensity", "whole number from 0 to 10"),
        ({"pain": {"intensity": 11}}, "pain.intensity", "less than or equal to 10"),
        ({"pain": {"intensity": -1}}, "pain.intensity", "greater than or equal to 0"),
        ({"pain": {"intensity": 3}, "signs": {"swelling": 0}}, "signs.swelling", "boolean"),
        ({"pain": {"intensity": 3}, "signs": {"swelling": "yes"}}, "signs.swelling", "boolean"),
        ({"pain": {"intensity": None}}, "pain.intensity", "required"),  # null is "not asked"
        ({"pain": {"intensity": 3}, "signs": {"swollen": True}}, "signs.swollen", "Unknown"),
        ({"pain": {"intensity": 3}, "sings": {}}, "sings", "Unknown"),
        ({"pain": {"intensity": 3, "quality": ["stabbing"]}}, "pain.quality.0", "one of"),
        ({"pain": {"intensity": 3, "quality": ["sharp", "sharp"]}}, "pain.quality", "repeat"),
        ({"pain": {"intensity": 3, "side": "middle"}}, "pain.side", "one of"),
        ({"pain": {"intensity": 3, "duration_days": 3651}}, "pain.duration_days", "less than"),
        ({"pain": {"intensity": 3}, "profile": {"age": 4}}, "profile.age", "greater than"),
        ({"pain": {}}, "pain.intensity", "required"),
        ({}, "pain", "required"),
        ({"pain": {"intensity": 3}, "rules_version": "9.9.9"}, "rules_version", "available"),
        ({"pain": {"intensity": 3}, "rules_version": 1}, "rules_version", "string"),
        ({"pain": "bad"}, "pain", "Invalid input type"),
        ([], "body", "Invalid input type"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(client, endpoint, body, field, fragment):
    problem = assert_problem(client.post(endpoint, json=body), 422)
    assert field in problem["errors"], problem["errors"]
    assert any(fragment.lower() in message.lower() for message in problem["errors"][field])


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"pain": {"intensity": NaN}}', b"[" * 5000, b"\xff\xfe", b'{"pain": }'],
    ids=["truncated", "NaN", "too deep", "not UTF-8", "syntax"],
)
def test_malformed_json_is_400(client, endpoint, raw):
    assert_problem(client.post(endpoint, data=raw, content_type="application/json"), 400)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_content_type_is_415(client, endpoint, content_type):
    kwargs = {"data": b'{"pain": {"intensity": 3}}'}
    if content_type:
        kwargs["content_type"] = content_type
    assert_problem(client.post(endpoint, **kwargs), 415)


def test_json_with_a_vendor_type_is_accepted(client):
    response = client.post(
        "/v1/assess", data=b'{"pain": {"intensity": 3}}', content_type="application/vnd.x+json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_body_over_64_kib_is_413(client, endpoint):
    padding = "x" * (64 * 1024)
    body = f'{{"pain": {{"intensity": 3}}, "pad": "{padding}"}}'.encode()
    assert_problem(client.post(endpoint, data=body, content_type="application/json"), 413)


def test_a_body_just_under_the_limit_is_parsed_not_refused(client):
    padding = "x" * (64 * 1024 - 100)
    body = f'{{"pain": {{"intensity": 3}}, "pad": "{padding}"}}'.encode()
    assert len(body) < 64 * 1024
    problem = assert_problem(
        client.post("/v1/assess", data=body, content_type="application/json"), 422
    )
    assert "pad" in problem["errors"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("get", "/v1/assess", "OPTIONS, POST"),
        ("put", "/v1/escalation-check", "OPTIONS, POST"),
        ("delete", "/v1/exercises", "GET, HEAD, OPTIONS"),
        ("post", "/healthz", "GET, HEAD, OPTIONS"),
    ],
)
def test_wrong_method_is_405_with_allow(client, method, path, allow):
    response = getattr(client, method)(path, json=VALID)
    assert_problem(response, 405)
    assert response.headers["Allow"] == allow


def test_an_unexpected_error_is_a_500_problem_without_details(client, monkeypatch):
    from rules.engine import Evaluator

    def explode(self, report):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(Evaluator, "assess", explode)
    response = client.post("/v1/assess", json=VALID)
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert "retry" in body["detail"]


# -- Chunked bodies: no Content-Length, so the limit is checked while the body is read -------

LIMIT = 64 * 1024  # MAX_CONTENT_LENGTH, in the tests and by default


def padded(report: dict, size: int) -> bytes:
    """``size`` bytes of valid JSON: the report, then white space."""
    text = json.dumps(report).encode()
    assert len(text) < size
    return text + b" " * (size - len(text))


class DechunkedInput:
    """wsgi.input as a server that decodes chunked bodies hands it over (gunicorn, the
    development server): no Content-Length, and ``error`` raised once ``data`` is read."""

    def __init__(self, data: bytes, error: Exception | None = None):
        self.data, self.error = data, error

    def read(self, size: int = -1) -> bytes:
        size = len(self.data) if size is None or size < 0 else size
        piece, self.data = self.data[:size], self.data[size:]
        if not piece and self.error is not None:
            raise self.error
        return piece


def post_chunked(client, body: DechunkedInput):
    return client.post(
        "/v1/assess",
        headers={"Transfer-Encoding": "chunked"},
        content_type="application/json",
        environ_overrides={"wsgi.input": body, "wsgi.input_terminated": True},
    )


def stored_assessments(client) -> list:
    response = client.get("/v1/assessments")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["items"]


def test_a_chunked_body_over_the_limit_is_413_not_cut_to_the_limit(app):
    tenant = tenant_factory(app)()
    # Cut to the limit, this body would still be a valid report.
    response = post_chunked(tenant.client, DechunkedInput(padded(VALID, LIMIT + 1)))
    assert_problem(response, 413)
    assert stored_assessments(tenant.client) == []


def test_a_chunked_body_of_exactly_the_limit_is_accepted(app):
    tenant = tenant_factory(app)()
    response = post_chunked(tenant.client, DechunkedInput(padded(VALID, LIMIT)))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert len(stored_assessments(tenant.client)) == 1


def _gunicorn_parse_error() -> Exception:
    from gunicorn.http.errors import InvalidChunkSize

    return InvalidChunkSize(b"zz")


@pytest.mark.parametrize(
    "error",
    [_gunicorn_parse_error(), OSError("Invalid chunk header")],
    ids=["gunicorn", "development server"],
)
def test_a_chunked_body_the_server_cannot_decode_is_400(app, error):
    tenant = tenant_factory(app)()
    response = post_chunked(tenant.client, DechunkedInput(b'{"pain": {"inten', error))
    body = assert_problem(response, 400)
    assert "chunked" in body["detail"]
    assert stored_assessments(tenant.client) == []


@pytest.fixture(scope="module")
def chunked_server(tmp_path_factory) -> Iterator[tuple[str, int, str]]:
    """gunicorn as the README starts it, on a SQLite file: (database URL, port, API key)."""
    database = f"sqlite:///{tmp_path_factory.mktemp('chunked') / 'popliteal.sqlite3'}"
    with gunicorn_server(
        database,
        tenant="chunked-tests",
        workers=1,
        RATELIMIT_ENABLED="false",
        POPLITEAL_MAX_BODY_BYTES=str(LIMIT),
    ) as server:
        yield database, server.port, server.keys[0]


def chunked(body: bytes, size: int = 8192) -> bytes:
    """``body`` in Transfer-Encoding: chunked, ``size`` bytes a chunk."""
    pieces = [body[start : start + size] for start in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def send_chunked(port: int, key: str, encoded: bytes, *, end: bool = False):
    """POST /v1/assess with an already chunk-encoded body over a raw socket; ``end`` closes
    the sending side after it. (status, headers, body) of the answer."""
    head = (
        "POST /v1/assess HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head.encode() + encoded)
        if end:
            connection.shutdown(socket.SHUT_WR)
        answer = b""
        while data := connection.recv(65536):
            answer += data
    head_bytes, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def stored_count(database: str) -> int:
    """How many assessments the database holds."""
    query = sa.select(sa.func.count()).select_from(records).where(records.c.kind == ASSESSMENT)
    engine = sa.create_engine(database)
    try:
        with engine.connect() as connection:
            return connection.execute(query).scalar_one()
    finally:
        engine.dispose()


def assert_raw_problem(answer, status: int) -> dict:
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["type"]
    assert problem["title"]
    assert problem["detail"]
    assert problem["request_id"] == headers["x-request-id"]
    assert b"Traceback" not in body
    return problem


@pytest.mark.live
def test_under_gunicorn_a_chunked_body_over_the_limit_is_413_and_stores_nothing(
    chunked_server,
):
    database, port, key = chunked_server
    before = stored_count(database)
    answer = send_chunked(port, key, chunked(padded(VALID, LIMIT + 1)))
    assert_raw_problem(answer, 413)
    assert stored_count(database) == before


@pytest.mark.live
@pytest.mark.parametrize(
    ("body", "status"),
    [(padded(VALID, LIMIT), 201), (padded({"pain": {"intensity": 11}}, 1000), 422)],
    ids=["valid, exactly the limit", "invalid field"],
)
def test_under_gunicorn_a_chunked_body_within_the_limit_is_answered_as_usual(
    chunked_server, body, status
):
    database, port, key = chunked_server
    before = stored_count(database)
    got, _headers, answer = send_chunked(port, key, chunked(body))
    assert got == status, answer
    assert stored_count(database) == before + (1 if status == 201 else 0)


@pytest.mark.live
@pytest.mark.parametrize(
    ("encoded", "end"),
    [
        (b"zz\r\n" + chunked(json.dumps(VALID).encode()), False),
        (b"5\r\n{    XX" + chunked(json.dumps(VALID).encode()), False),
        (b"100\r\n" + json.dumps(VALID).encode(), True),
        (chunked(json.dumps(VALID).encode()).removesuffix(b"\r\n"), True),
    ],
    ids=["bad chunk size", "chunk without its CRLF", "ends inside a chunk", "no final CRLF"],
)
def test_under_gunicorn_a_malformed_chunked_body_is_400_not_500(chunked_server, encoded, end):
    database, port, key = chunked_server
    before = stored_count(database)
    problem = assert_raw_problem(send_chunked(port, key, encoded, end=end), 400)
    assert "chunked" in problem["detail"]
    assert stored_count(database) == before
