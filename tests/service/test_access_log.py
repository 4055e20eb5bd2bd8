"""The per-request line written straight to the stream is the line logging would have written,
and any other logging set-up gets its records as usual."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.config
import sys

import pytest

from service import access_log
from service.access_log import log_request
from service.logs import ACCESS_LOGGER, REQUEST_FIELDS, RedactingJsonFormatter, logging_config

FIELDS = {
    "request_id": "4f6d0c1e9a2b4c3d8e7f6a5b4c3d2e1f",
    "tenant": "clinic-a",
    "method": "POST",
    "route": "/v1/assess",
    "status": 200,
    "duration_ms": 1.234,
    "rules_version": "2.0.0",
    "triage_level": "self_care",
}
NOW = 1796338382.123456


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("the pipe is gone")


@contextlib.contextmanager
def put_back(*loggers: logging.Logger):
    """Each logger's handlers, filters, level and propagation as they were, afterwards."""
    saved = [
        (logger, logger.handlers[:], logger.filters[:], logger.level, logger.propagate)
        for logger in loggers
    ]
    try:
        yield
    finally:
        for logger, handlers, filters, level, propagate in saved:
            logger.handlers, logger.filters, logger.propagate = handlers, filters, propagate
            logger.setLevel(level)


@pytest.fixture
def access_logger(monkeypatch):
    """The access logger as logging_config sets it up (gunicorn's), writing to a buffer."""
    logger = logging.getLogger(ACCESS_LOGGER)
    configured = logging_config()["loggers"][ACCESS_LOGGER]
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(RedactingJsonFormatter())
    monkeypatch.setattr(access_log.time, "time", lambda: NOW)
    with put_back(logger):
        logger.handlers = [handler]
        logger.filters = []
        logger.setLevel(configured["level"])
        logger.propagate = configured["propagate"]
        yield logger


def ours_only(logger: logging.Logger) -> logging.Logger:
    """The fixture's handler alone: at the start of each test phase pytest attaches capturing
    handlers of its own to every logger that does not propagate."""
    logger.handlers = logger.handlers[:1]
    return logger


def not_through_logging(record):
    raise AssertionError("the line went through logging")


@contextlib.contextmanager
def shipped_logging():
    """logging_config applied as gunicorn applies it; every logger it sets put back after."""
    config = logging_config()
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in config["loggers"])]
    with put_back(*loggers):
        logging.config.dictConfig(config)
        yield


def written(logger: logging.Logger) -> list[str]:
    return logger.handlers[0].stream.getvalue().splitlines()


def formatter_line(fields: dict) -> str:
    record = logging.getLogger(ACCESS_LOGGER).makeRecord(
        ACCESS_LOGGER, logging.INFO, "", 0, "request", (), None, None, fields
    )
    record.created = NOW
    return RedactingJsonFormatter().format(record)


@pytest.mark.parametrize(
    "fields",
    [
        FIELDS,
        {**FIELDS, "tenant": None, "rules_version": None, "triage_level": None},
        {**FIELDS, "status": 429, "route": "unmatched", "duration_ms": 0.0},
    ],
    ids=["an assessment", "a request of no tenant and no rules", "a refusal"],
)
def test_the_line_written_straight_to_the_stream_is_the_formatters_line(
    access_logger, monkeypatch, fields
):
    ours_only(access_logger)
    expected = formatter_line(fields)
    monkeypatch.setattr(access_logger, "handle", not_through_logging)

    log_request(fields)

    assert written(access_logger) == [expected]


def test_the_set_up_the_service_ships_is_written_straight_to_the_stream(monkeypatch):
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)  # where logging_config's handler writes
    with shipped_logging():
        monkeypatch.setattr(logging.getLogger(ACCESS_LOGGER), "handle", not_through_logging)
        monkeypatch.setattr(access_log.time, "time", lambda: NOW)

        log_request(FIELDS)

    assert stdout.getvalue().splitlines() == [formatter_line(FIELDS)]


def test_only_the_allow_listed_fields_reach_the_line(access_logger):
    ours_only(access_logger)
    log_request({**FIELDS, "symptoms": {"swelling": True}, "client_address": "10.0.0.7"})

    [line] = written(access_logger)
    assert set(json.loads(line)) == {"level", "logger", "message", "service", "timestamp"} | set(
        REQUEST_FIELDS
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda logger, capture: logger.addHandler(capture),
        lambda logger, capture: setattr(logger, "handlers", [capture]),
        lambda logger, capture: logger.handlers[0].addFilter(capture.handle),
        lambda logger, capture: logger.addFilter(capture.handle),
        lambda logger, capture: setattr(logger, "propagate", True),
    ],
    ids=[
        "another handler",
        "a handler of another kind",
        "a filter on the handler",
        "a filter on the logger",
        "propagated to the root",
    ],
)
def test_any_other_set_up_gets_its_records_through_logging(access_logger, change):
    ours_only(access_logger)
    capture = Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        change(access_logger, capture)
        log_request(FIELDS)
    finally:
        root.removeHandler(capture)

    [record] = capture.records
    assert {name: getattr(record, name) for name in REQUEST_FIELDS} == FIELDS
    assert record.getMessage() == "request"


class JsonSubclass(RedactingJsonFormatter):
    pass


def json_file_handler(path) -> logging.FileHandler:
    handler = logging.FileHandler(path, delay=True)
    handler.setFormatter(RedactingJsonFormatter())
    return handler


@pytest.mark.parametrize(
    "change",
    [
        lambda logger, monkeypatch, tmp_path: logger.handlers[0].setLevel(logging.WARNING),
        lambda logger, monkeypatch, tmp_path: logger.handlers[0].setFormatter(JsonSubclass()),
        lambda logger, monkeypatch, tmp_path: setattr(
            logger, "handlers", [json_file_handler(tmp_path / "access.log")]
        ),
        lambda logger, monkeypatch, tmp_path: monkeypatch.setattr(
            logging, "getLogRecordFactory", lambda: lambda *a, **k: logging.LogRecord(*a, **k)
        ),
    ],
    ids=[
        "a handler above INFO",
        "a formatter of another class",
        "a stream handler of another class",
        "a record factory of its own",
    ],
)
def test_a_set_up_logging_may_treat_otherwise_is_never_written_straight(
    access_logger, monkeypatch, tmp_path, change
):
    ours_only(access_logger)
    assert access_log._plain_stream_handler() is access_logger.handlers[0]

    change(access_logger, monkeypatch, tmp_path)

    assert access_log._plain_stream_handler() is None


def test_a_stream_that_fails_is_reported_by_the_handler_and_the_request_goes_on(
    access_logger, monkeypatch
):
    ours_only(access_logger)
    reported = []
    handler = access_logger.handlers[0]
    handler.setStream(BrokenStream())
    monkeypatch.setattr(handler, "handleError", reported.append)

    log_request(FIELDS)

    [record] = reported
    assert record.name == ACCESS_LOGGER
    assert record.status == 200


def test_nothing_is_written_when_the_access_logger_is_off(access_logger):
    ours_only(access_logger)
    access_logger.setLevel(logging.WARNING)

    log_request(FIELDS)

    assert written(access_logger) == []
