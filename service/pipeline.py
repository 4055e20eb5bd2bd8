"""The request pipeline: every hook that runs around a view, installed here and only here.

Flask runs before-request hooks in the order they were installed and after-request hooks in
the reverse order; several of them depend on one another, so the order is the design. It is:

Before the view (any may answer instead, and the rest are skipped):
  1. start the clock (observability)  the duration covers every check below
  2. assign_request_id                every answer, refusals included, carries the id
  3. answer_preflight (CORS, if on)   preflights carry no key
  4. require_api_key (auth)           the rate limit counts per key, so the key comes first
  5. check_rate_limit (limits)        after the key, before any work
  6. require_json_body                the body's media type, for routes that take the method

After the view, or after a hook's answer, in this order:
  1. add_headers                      X-Request-ID and X-Rules-Version
  2. add_rate_limit_headers (limits)  X-RateLimit-* on every answer counted, Retry-After only
                                      on the limiter's own 429 (a 503's own is left alone)
  3. add_security_headers (hygiene)   on everything, answers of the hooks included
  4. allow_listed_origin (CORS, if on)
  5. observe (observability)          the log line and metrics see the final answer

BEFORE_REQUEST and AFTER_REQUEST name them (a test holds the app to them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from flask import Flask, Response, g, request

from service.auth import install_api_key_check
from service.hygiene import install_cors, install_security_headers
from service.limits import install_rate_limits
from service.logs import REQUEST_ID
from service.observability import install_request_observation
from service.state import AppState
from service.web import problem

JSON_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))

BEFORE_REQUEST = (
    "_start_clock",
    "assign_request_id",
    "answer_preflight",
    "require_api_key",
    "check_rate_limit",
    "require_json_body",
)
AFTER_REQUEST = (
    "add_headers",
    "add_rate_limit_headers",
    "add_security_headers",
    "allow_listed_origin",
    "observe",
)


def install_pipeline(app: Flask, app_state: AppState, cors_origins: Iterable[str]) -> None:
    """Install every hook, each at its place in the order above."""
    install_request_observation(app)  # before 1, after 5
    app.before_request(assign_request_id)  # before 2
    install_cors(app, cors_origins)  # before 3, after 4
    install_security_headers(app)  # after 3
    install_api_key_check(app, app_state.storage.keys)  # before 4
    install_rate_limits(app, app_state.limiter)  # before 5, after 2
    app.before_request(require_json_body)  # before 6
    app.after_request(add_headers)  # after 1


def assign_request_id() -> None:
    supplied = request.headers.get("X-Request-ID", "")
    g.request_id = supplied if REQUEST_ID.match(supplied) else uuid.uuid4().hex


def require_json_body():
    # Only for routes that take the method: elsewhere the answer is 404 or 405.
    if (
        request.method in JSON_BODY_METHODS
        and request.routing_exception is None
        and not request.is_json
    ):
        return problem(415)
    return None


def add_headers(response: Response) -> Response:
    response.headers["X-Request-ID"] = getattr(g, "request_id", "")
    version = getattr(g, "rules_version", None)
    if version:
        response.headers["X-Rules-Version"] = version
    return response
