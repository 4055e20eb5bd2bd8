"""The per-request log line (``popliteal.access``): one per request, so its cost counts.

Through the logging machinery a line cost some 16 us here: a LogRecord (the time, the thread,
the process), the logger's and handler's filters and locks, the generic formatter's walk over
the record's attributes. When the access logger is set up as ``logging_config`` sets it up
(one plain stream handler with the JSON formatter, no filters, not propagated, logging's own
record factory), the line is written straight to that handler's stream, under its lock, as the
formatter would have written it (``record_line``, the formatter's own): about a third of the
cost. Any other set-up (a test's capturing handler, an operator's own configuration) goes
through logging as usual. ``tests/service/test_access_log.py`` holds the two lines equal.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from service.logs import ACCESS_LOGGER, REQUEST_FIELDS, RedactingJsonFormatter, record_line

_access_log = logging.getLogger(ACCESS_LOGGER)
MESSAGE = "request"


def log_request(fields: dict[str, Any]) -> None:
    """Write the per-request line; only the allow-listed fields are kept (its one caller passes
    exactly those, but the allow-list is what keeps a report's values out of the log, so it is
    applied here, where the line is written)."""
    if not _access_log.isEnabledFor(logging.INFO):
        return
    extra = {name: fields.get(name) for name in REQUEST_FIELDS}
    handler = _plain_stream_handler()
    if handler is None:
        _access_log.handle(_record(extra))
        return
    created = time.time()
    level = logging.getLevelName(logging.INFO)
    try:
        text = record_line(level, ACCESS_LOGGER, MESSAGE, extra, created) + handler.terminator
        with handler.lock:  # a re-entrant lock, which flush takes again, as in Handler.handle
            handler.stream.write(text)
            handler.flush()
    except RecursionError:  # as StreamHandler.emit does
        raise
    except Exception:  # as StreamHandler.emit does: the handler reports it, the request goes on
        handler.handleError(_record(extra))


def _plain_stream_handler() -> logging.StreamHandler | None:
    """The access logger's one handler, if the logger is set up as ``logging_config`` sets it
    up, so that writing the formatter's line straight to its stream is exactly what logging
    would do; else None."""
    logger = _access_log
    if logger.propagate or logger.filters or len(logger.handlers) != 1:
        return None
    if logging.getLogRecordFactory() is not logging.LogRecord:  # it may add fields to records
        return None
    handler = logger.handlers[0]
    if (
        type(handler) is not logging.StreamHandler
        or type(handler.formatter) is not RedactingJsonFormatter
        or handler.filters
        or handler.level > logging.INFO
    ):
        return None
    return handler


def _record(extra: dict[str, Any]) -> logging.LogRecord:
    # Made here rather than by Logger.info, which would walk the stack to find the caller's
    # file and line: the line never shows them.
    return _access_log.makeRecord(
        ACCESS_LOGGER, logging.INFO, "", 0, MESSAGE, (), None, None, extra
    )
