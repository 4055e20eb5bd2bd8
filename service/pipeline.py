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

Each hook's work is a framework-free function of plain values (``request_id_from``,
``ApiKeyCheck``, ``RateLimits``, ``SecurityHeaders``, ``identity_headers``,
``record_outcome``). The hooks call them, and so does the fast path (``service.fast_path``),
which answers the valid success case of the hottest requests (the report POSTs, stored or
not, and the read of a stored assessment) without Flask and in the same order;
``install_pipeline`` leaves them on the app as its ``Edge`` (``edge(app)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask, Response, g, request

from service.auth import ApiKeyCheck, install_api_key_check
from service.hygiene import SecurityHeaders, install_cors, install_security_headers
from service.limits import RateLimits, install_rate_limits
from service.logs import request_id_from
from service.observability import clock, record_response
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


# Where install_pipeline leaves the hooks' shared functions among the app's extensions.
EDGE = "popliteal_edge"
# Where the fast path leaves the error of a read or write it tried and that failed (the database
# away), for Flask to answer rather than wait for the database a second time, or write a record
# whose first write may have happened (raise_failed_storage).
FAILED_STORAGE = "popliteal.failed_storage"
# When the fast path began a request it left to Flask (``clock()``).
REQUEST_STARTED = "popliteal.request_started"


@dataclass(frozen=True)
class Edge:
    """The pipeline's checks and headers as framework-free objects, for the fast path."""

    key_check: ApiKeyCheck
    rate_limits: RateLimits | None  # None: rate limits are off
    security_headers: SecurityHeaders


def install_pipeline(app: Flask, app_state: AppState, cors_origins: Iterable[str]) -> None:
    """Install every hook, each at its place in the order above."""
    app.before_request(start_request)  # before 1
    app.after_request(finish_request)  # after 4 (after-request hooks run last installed first)
    install_cors(app, cors_origins)  # before 2, after 3
    security_headers = install_security_headers(app)  # after 2
    key_check = install_api_key_check(app, app_state.storage.keys)  # before 3
    rate_limits = install_rate_limits(app, app_state.limiter)  # before 4, after 1
    app.before_request(require_json_body)  # before 5
    app.extensions[EDGE] = Edge(key_check, rate_limits, security_headers)


def edge(app: Flask) -> Edge:
    return app.extensions[EDGE]


def raise_failed_storage() -> None:
    """Raise the error of the read or write the fast path tried for this request, if it
    failed: called where Flask's view would read or write."""
    error = request.environ.pop(FAILED_STORAGE, None)
    if error is not None:
        raise error


def start_request() -> None:
    context = g._get_current_object()  # one proxy look-up for the attributes set below
    # A request the fast path began and left to Flask: its duration counts from there.
    started = request.environ.get(REQUEST_STARTED)
    context.request_started = clock() if started is None else started
    context.request_id = request_id_from(request.headers.get("X-Request-ID", ""))


def require_json_body():
    # Only for routes that take the method: elsewhere the answer is 404 or 405.
    if (
        request.method in JSON_BODY_METHODS
        and request.routing_exception is None
        and not request.is_json
    ):
        return problem(415)
    return None


def identity_headers(request_id: str, rules_version: str | None) -> list[tuple[str, str]]:
    """X-Request-ID on every answer, and X-Rules-Version on those a rules version made."""
    headers = [("X-Request-ID", request_id)]
    if rules_version:
        headers.append(("X-Rules-Version", rules_version))
    return headers


def finish_request(response: Response) -> Response:
    context = g._get_current_object()
    for name, value in identity_headers(
        getattr(context, "request_id", ""), getattr(context, "rules_version", None)
    ):
        response.headers[name] = value
    record_response(response)
    return response
