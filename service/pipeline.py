"""The request pipeline: every hook that runs around a view, installed here and only here.

Flask runs before-request hooks in the order they were installed and after-request hooks in
the reverse order; several of them depend on one another, so the order is the design. Each hook
is a Python call (and a coroutine check by Flask) on every request, so work that may run at the
same place in the order shares one hook. It is:

Before the view (any may answer instead, and the rest are skipped):
  1. start_request                    starts the clock, so the duration covers every check
                                      below; assigns the request id, so every answer,
                                      refusals included, carries it
  2. answer_preflight (CORS, if on)   preflights carry no key
  3. require_api_key (auth)           the rate limit counts per key, so the key comes first
  4. check_rate_limit (limits)        after the key, before any work
  5. require_json_body                the body's media type, for routes that take the method

After the view, or after a hook's answer, in this order:
  1. add_rate_limit_headers (limits)  X-RateLimit-* on every answer counted, Retry-After only
                                      on the limiter's own 429 (a 503's own is left alone)
  2. add_security_headers (hygiene)   on everything, answers of the hooks included
  3. allow_listed_origin (CORS, if on)
  4. finish_request                   X-Request-ID and X-Rules-Version (no hook before it
                                      reads them), then the log line and metrics, which see
                                      the final answer

BEFORE_REQUEST and AFTER_REQUEST name them (a test holds the app to them).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable

from flask import Flask, Response, g, request

from service.auth import install_api_key_check
from service.hygiene import install_cors, install_security_headers
from service.limits import install_rate_limits
from service.logs import REQUEST_ID
from service.observability import record_response
from service.state import AppState
from service.web import problem

JSON_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))

BEFORE_REQUEST = (
    "start_request",
    "answer_preflight",
    "require_api_key",
    "check_rate_limit",
    "require_json_body",
)
AFTER_REQUEST = (
    "add_rate_limit_headers",
    "add_security_headers",
    "allow_listed_origin",
    "finish_request",
)


def install_pipeline(app: Flask, app_state: AppState, cors_origins: Iterable[str]) -> None:
    """Install every hook, each at its place in the order above."""
    app.before_request(start_request)  # before 1
    app.after_request(finish_request)  # after 4 (after-request hooks run last installed first)
    install_cors(app, cors_origins)  # before 2, after 3
    install_security_headers(app)  # after 2
    install_api_key_check(app, app_state.storage.keys)  # before 3
    install_rate_limits(app, app_state.limiter)  # before 4, after 1
    app.before_request(require_json_body)  # before 5


def start_request() -> None:
    context = g._get_current_object()  # one proxy look-up for the attributes set below
    context.request_started = time.perf_counter()
    supplied = request.headers.get("X-Request-ID", "")
    # Else 128 random bits as 32 hex digits, the shape of a UUID's hex form at a fifth of
    # uuid4's cost.
    context.request_id = supplied if REQUEST_ID.match(supplied) else secrets.token_hex(16)


def require_json_body():
    # Only for routes that take the method: elsewhere the answer is 404 or 405.
    if (
        request.method in JSON_BODY_METHODS
        and request.routing_exception is None
        and not request.is_json
    ):
        return problem(415)
    return None


def finish_request(response: Response) -> Response:
    context = g._get_current_object()
    response.headers["X-Request-ID"] = getattr(context, "request_id", "")
    version = getattr(context, "rules_version", None)
    if version:
        response.headers["X-Rules-Version"] = version
    record_response(response)
    return response
