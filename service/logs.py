"""Structured logs: one JSON object per line, with no health data in any of them.

What a person reported about their knee must never reach a log, where it would outlive every
erasure request and be read by people with no clinical reason to. So:

- the per-request line (``popliteal.access``) carries only an allow-list of fields about the
  request (id, tenant, route template, status, duration, rules version, triage level), never a
  body value, a query string or a client address;
- exceptions are logged with their type and stack frames but without their message, because
  messages can quote the values that caused them (a database error quotes its parameters);
- the database engine hides SQL parameters in its own errors as well.

Lines are serialised with orjson (a line per request, so the encoder's cost counts); gunicorn's
error and access logs use the same formatter (``gunicorn.conf.py``), so every line a container
prints parses as JSON.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson
from gunicorn.glogging import Logger as GunicornBaseLogger

ACCESS_LOGGER = "popliteal.access"
# What a client-supplied X-Request-ID may look like; anything else is replaced by the service.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_from(supplied: str) -> str:
    """The request's id: the client's X-Request-ID when it has the allowed shape, so that the
    client can find its own request in the logs; else 128 random bits as 32 hex digits (the
    shape of a UUID's hex form at a fifth of uuid4's cost)."""
    return supplied if REQUEST_ID.match(supplied) else secrets.token_hex(16)


# Methods named in metric labels and log lines; anything else is "other", so that made-up
# methods cannot create new series.
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

# The fields a per-request line may carry: nothing else is ever added to it.
REQUEST_FIELDS = (
    "request_id",
    "tenant",
    "method",
    "route",
    "status",
    "duration_ms",
    "rules_version",
    "triage_level",
)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


# Attributes every log record has: anything else on a record was passed as ``extra`` and becomes
# a field of its line.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
SERVICE_NAME = "popliteal"


def _as_text(value: Any) -> Any:
    """What orjson cannot encode by itself: an exception by its type alone (its message may
    quote the values that caused it), a class by its name, anything else as text."""
    if isinstance(value, BaseException):
        return type(value).__qualname__
    if isinstance(value, type):
        return value.__name__
    try:
        return str(value)
    except Exception:  # a log line must not fail over one odd value
        return f"<unprintable {type(value).__qualname__}>"


class RedactingJsonFormatter(logging.Formatter):
    """One JSON object per record, in this order: level, logger, message, service, exc_info and
    stack_info (when there are any), the record's extra fields, timestamp (ISO 8601, UTC).
    Exceptions show where and what kind, never the message."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        details: dict[str, Any] = {}
        if record.exc_info:
            details["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            details["exc_info"] = record.exc_text
        if record.stack_info:
            details["stack_info"] = self.formatStack(record.stack_info)
        fields = {
            name: value
            for name, value in vars(record).items()
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_")
        }
        return record_line(
            record.levelname, record.name, record.message, fields, record.created, details
        )

    def formatException(self, ei: ExcInfo) -> str:
        exc_type, exc, tb = ei
        frames = "".join(traceback.format_list(traceback.extract_tb(tb)))
        chain = []
        cause = (exc.__cause__ or exc.__context__) if exc is not None else None
        while cause is not None and len(chain) < 5:
            chain.append(type(cause).__qualname__)
            cause = cause.__cause__ or cause.__context__
        caused_by = f" (after {' <- '.join(chain)})" if chain else ""
        # The message is left out on purpose: it may quote the values that caused the error.
        return f"Traceback (most recent call last):\n{frames}{exc_type.__qualname__}{caused_by}"


class GunicornErrorRedaction(logging.Filter):
    """gunicorn's own error lines can quote a request: a malformed request line or header
    (query strings, even an API key sent without its colon), or the URI of a request that
    crashed or timed out. Those quotes are removed; the event stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Invalid request from"):
            record.msg, record.args = "invalid request refused (not quoted: it may hold data)", ()
        elif message.startswith("Error handling request") and isinstance(record.args, tuple):
            record.args = tuple(
                arg.split("?", 1)[0] if isinstance(arg, str) else arg for arg in record.args
            )
        elif "%" not in message and "?" in message:
            # A pre-formatted message quoting a URI: keep the part before any query string.
            record.msg = message.split("?", 1)[0] + "?(query withheld)"
        return True


def logging_config(level: str = "INFO", access_log: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the service and for gunicorn (``logconfig_dict``)."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stdout",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": RedactingJsonFormatter}},
        "filters": {"gunicorn_redaction": {"()": GunicornErrorRedaction}},
        "handlers": {"stdout": handler},
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {
                "level": level,
                "handlers": ["stdout"],
                "filters": ["gunicorn_redaction"],
                "propagate": False,
            },
            # Off unless asked for: the service's own line (popliteal.access) already covers
            # every request, with more of what an operator needs.
            "gunicorn.access": {
                "level": "INFO" if access_log else "CRITICAL",
                "handlers": ["stdout"],
                "propagate": False,
            },
            ACCESS_LOGGER: {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        },
    }


def record_line(
    level: str,
    logger: str,
    message: str,
    fields: dict[str, Any],
    created: float,
    details: dict[str, Any] | None = None,
) -> str:
    """A line in the order every line has: level, logger, message, service, the details
    (exc_info, stack_info) when there are any, the fields, and the time ``created`` (seconds
    since the epoch) as timestamp (ISO 8601, UTC). The formatter's, and the access line's when
    it is written without a record (``service.access_log``)."""
    line: dict[str, Any] = {
        "level": level,
        "logger": logger,
        "message": message,
        "service": SERVICE_NAME,
    }
    if details:
        line.update(details)
    line.update(fields)
    line["timestamp"] = datetime.fromtimestamp(created, tz=UTC)
    return json_line(line)


def json_line(line: dict[str, Any]) -> str:
    try:
        return orjson.dumps(line, default=_as_text, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson refuses what JSON can hold (an integer beyond 64 bits)
        return json.dumps(line, default=_as_text)


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's logger with its access line as structured JSON fields.

    Off by default (``GUNICORN_ACCESS_LOG``): the service's own line is the one per request.
    When on, it holds the method, the path without its query string (queries can carry a
    subject's identifier), status, size, duration and request id; nothing else.
    """

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log.isEnabledFor(logging.INFO):
            return
        request_id = next(
            (value for name, value in req.headers if name.upper() == "X-REQUEST-ID"), None
        )
        if request_id is not None and not REQUEST_ID.match(request_id):
            request_id = None  # the service replaced it with an id of its own
        self.access_log.info(
            "access",
            extra={
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "status": resp.status_code,
                "bytes": getattr(resp, "sent", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "request_id": request_id,
            },
        )
