"""Structured logs: one JSON object per line, with no health data in any of them.

What a person reported about their knee must never reach a log, where it would outlive every
erasure request and be read by people with no clinical reason to. So:

- the per-request line (``popliteal.access``) carries only an allow-list of fields about the
  request (id, tenant, route template, status, duration, rules version, triage level), never a
  body value, a query string or a client address;
- exceptions are logged with their type and stack frames but without their message, because
  messages can quote the values that caused them (a database error quotes its parameters);
- the database engine hides SQL parameters in its own errors as well.

The formatter is python-json-logger's; gunicorn's error and access logs use it too
(``gunicorn.conf.py``), so every line a container prints parses as JSON.
"""

from __future__ import annotations

import logging
import re
import traceback
from types import TracebackType
from typing import Any

from gunicorn.glogging import Logger as GunicornBaseLogger
from pythonjsonlogger.json import JsonFormatter

ACCESS_LOGGER = "popliteal.access"
_access_log = logging.getLogger(ACCESS_LOGGER)
# What a client-supplied X-Request-ID may look like; anything else is replaced by the service.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
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


class RedactingJsonFormatter(JsonFormatter):
    """JSON lines whose exceptions show where and what kind, never the message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("static_fields", {"service": "popliteal"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

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


def log_request(fields: dict[str, Any]) -> None:
    """Write the per-request line; only the allow-listed fields are kept."""
    _access_log.info("request", extra={name: fields.get(name) for name in REQUEST_FIELDS})


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
