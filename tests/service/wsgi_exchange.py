"""Requests sent to a WSGI app as calls, and what came back: status, headers, body, the access
log lines and the metric samples it changed. For the tests that hold two apps' answers equal
(the fast path's and Flask's)."""

from __future__ import annotations

import io
import json
import logging
import secrets
from dataclasses import dataclass

from prometheus_client import REGISTRY
from werkzeug.test import Client

from service.logs import RedactingJsonFormatter


class LineCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(RedactingJsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = json.loads(self.format(record))
        line.pop("timestamp")
        self.lines.append(line)


def metric_samples() -> dict[tuple, float]:
    """The service's samples (creation times left out: a series is created once per process)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in REGISTRY.collect()
        if family.name.startswith("popliteal_")
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


@dataclass
class Exchange:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    lines: list[dict]
    metrics: dict[tuple, float]


def exchange(app, capture: LineCapture, request: dict) -> Exchange:
    if "input_stream" in request:  # each app reads a stream of its own
        request = {**request, "input_stream": io.BytesIO(request["input_stream"].getvalue())}
    before_lines, before = len(capture.lines), metric_samples()
    response = Client(app).open(**request)
    after = metric_samples()
    delta = {
        name: value - before.get(name, 0.0)
        for name, value in after.items()
        if value != before.get(name, 0.0)
    }
    return Exchange(
        response.status,
        list(response.headers.items()),
        response.get_data(),
        capture.lines[before_lines:],
        delta,
    )


def post(path: str, key: str | None, body=None, *, data=None, **extra) -> dict:
    headers = {"X-Request-ID": f"fast-{secrets.token_hex(6)}", **extra.pop("headers", {})}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if data is None and body is not None:
        data = json.dumps(body)
    return {
        "path": path,
        "method": extra.pop("method", "POST"),
        "data": data,
        "headers": headers,
        "content_type": extra.pop("content_type", "application/json"),
        **extra,
    }


def get(path: str, key: str | None, **extra) -> dict:
    headers = {"X-Request-ID": f"fast-{secrets.token_hex(6)}", **extra.pop("headers", {})}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return {"path": path, "method": extra.pop("method", "GET"), "headers": headers, **extra}


def assert_alike(fast: Exchange, plain: Exchange) -> None:
    """Two apps' exchanges for one request: the same status, headers (in order), body, one
    access log line each, the same, and the same metric samples changed."""
    assert (fast.status, fast.headers) == (plain.status, plain.headers)
    assert fast.body == plain.body
    assert len(fast.lines) == 1
    assert fast.lines == plain.lines
    assert fast.metrics == plain.metrics
