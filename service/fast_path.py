"""A thin WSGI path for the valid success case of the hottest requests.

``POST /v1/assess`` with ``"store": false`` and ``POST /v1/escalation-check`` are most of the
traffic of a fitness app, and for a valid report their answer is a pure function of the report;
``GET /v1/assessments/{id}`` of a stored assessment is most of an EHR's, and its answer is the
stored bytes. Flask's request and response objects, its context and its hooks cost more per
request than the clinical evaluation itself, so this middleware answers exactly those cases
itself and passes everything else to Flask, untouched.

It answers only a request that is, without any doubt: a POST to one of the two addresses, with
no query string, ``Content-Type: application/json`` exactly, a ``Content-Length`` within the
size limit (no chunked body), no ``Idempotency-Key``, a JSON body the fast report checker
accepts (on /v1/assess with ``"store": false``, or with storing turned off); or a GET of an
assessment of the caller's, with no query string and no body; either with no ``Origin`` (CORS
is Flask's), an ``Accept`` that is absent, ``application/json`` or ``*/*``, a key the key check
accepts, and within its rate limit. Anything else, a refusal of any kind or an error, goes to
Flask with the body it sent (re-supplied from the bytes read here) and, if it was counted, its
rate-limit count, so that Flask answers it as if this path did not exist. A read that failed
here (the database away) is not tried again by Flask: Flask answers its error
(``FAILED_READ``), so that an outage costs a request one wait, not two.

Every concern of the pipeline is the pipeline's own function (``service.pipeline.Edge``): the
request id, the key check, the rate limit, the headers in the pipeline's order, the log line
and the metrics. ``tests/service/test_fast_path.py`` holds the two paths byte-equal.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from rules import Evaluator
from schemas.fast import ASSESS_REQUEST_EXTRA_FIELDS, ReportAcceptor
from service.auth import client_address, protected
from service.config import env_flag
from service.evaluation import ASSESS_REQUEST_ACCEPTOR, REPORT_ACCEPTOR
from service.limits import COUNTED_TALLY
from service.logs import request_id_from
from service.observability import assessment_level, clock, escalation_level, record_outcome
from service.pipeline import FAILED_READ, edge, identity_headers
from service.records_as_json import assessment_json
from service.state import state as app_state
from service.storage import ASSESSMENT, RECORD_ID_LENGTH, Principal

JSON = "application/json"
ASSESSMENT_PREFIX = "/v1/assessments/"
# Accept values that ask for nothing but what these routes answer.
PLAIN_ACCEPTS = frozenset((JSON, "*/*"))
OK = "200 OK"


@dataclass(frozen=True)
class Answer:
    """What a route made of a report: its rules version, its JSON, and how its triage level is
    counted in the metrics (called only once the answer is sure to be sent)."""

    rules_version: str
    payload: dict
    observe: Callable[[dict], str]


def _assess(evaluator_for: Callable[[str | None], Evaluator], body: dict) -> Answer:
    # store and subject: instructions for a stored record, and none is stored here.
    report = {key: value for key, value in body.items() if key not in ASSESS_REQUEST_EXTRA_FIELDS}
    evaluator = evaluator_for(report.pop("rules_version", None))
    return Answer(evaluator.ruleset.version, evaluator.assess(report), assessment_level)


def _escalation_check(evaluator_for: Callable[[str | None], Evaluator], body: dict) -> Answer:
    report = dict(body)
    evaluator = evaluator_for(report.pop("rules_version", None))
    return Answer(evaluator.ruleset.version, evaluator.escalation_check(report), escalation_level)


@dataclass(frozen=True)
class Route:
    rule: str  # Flask's rule string, as the log line and the metrics name it
    endpoint: str  # Flask's endpoint, as the rate limits count it
    acceptor: ReportAcceptor
    answer: Callable[[Callable[[str | None], Evaluator], dict], Answer]
    stores: bool  # whether a request may ask for a stored record ("store")


class FastPath:
    """The WSGI middleware; ``served`` counts the requests it answered itself."""

    def __init__(self, app: Flask, inner: Callable) -> None:
        self._inner = inner
        self.served = 0  # read by the tests
        # Read once: the app is built before its fast path is put in front of it.
        self._edge = edge(app)
        self._routes = _routes(app)
        self._max_size = app.config["MAX_CONTENT_LENGTH"]
        self._storing_enabled = app.config["STORE_RECORDS"]
        self._evaluator_for = app_state(app).rules.get
        self._records = app_state(app).storage.records
        self._assessment_rule = _assessment_rule(app)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        route = self._routes.get(path)
        if route is None:
            if path.startswith(ASSESSMENT_PREFIX) and self._plain_read(environ):
                return self._read(path[len(ASSESSMENT_PREFIX) :], environ, start_response)
            return self._inner(environ, start_response)
        if not self._plain_request(environ):
            return self._inner(environ, start_response)
        started = clock()  # where Flask's first hook starts it: before the body is read
        size = _declared_size(environ, self._max_size)
        if size is None:
            return self._inner(environ, start_response)
        stream = environ["wsgi.input"]
        try:
            body = stream.read(size)
        except Exception as error:  # Flask meets the same failure, and answers it
            environ["wsgi.input"] = _Failing(error)
            return self._inner(environ, start_response)
        if len(body) != size:  # the client went away: Flask says so from the same bytes
            environ["wsgi.input"] = io.BytesIO(body)
            return self._inner(environ, start_response)
        try:
            answered = self._answer(route, environ, body, started, start_response)
        except Exception:  # any doubt is Flask's: it answers the same request its own way
            answered = None
        if answered is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return self._inner(environ, start_response)
        self.served += 1
        return answered

    def _read(self, record_id: str, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = clock()
        try:
            answered = self._answer_read(record_id, environ, started, start_response)
        except Exception:  # any doubt is Flask's
            answered = None
        if answered is None:
            return self._inner(environ, start_response)
        self.served += 1
        return answered

    def _answer_read(
        self, record_id: str, environ: dict, started: float, start_response: Callable
    ) -> list[bytes] | None:
        """A stored assessment of the caller's, sent; None to leave the request to Flask (an
        unknown id, another tenant's, a refusal: Flask answers each its own way)."""
        if not record_id or "/" in record_id or len(record_id) > RECORD_ID_LENGTH:
            return None
        admitted = self._admit(environ, self._assessment_rule.endpoint)
        if admitted is None:
            return None
        request_id, principal, tally = admitted
        try:
            record = self._records.get(principal.tenant_id, ASSESSMENT, record_id)
        except Exception as error:  # the database: Flask answers this error, without a 2nd wait
            environ[FAILED_READ] = error
            return None
        if record is None:
            return None
        return self._send(
            start_response,
            assessment_json(record),
            tally,
            request_id,
            record.rules_version,
            outcome={"route": self._assessment_rule.rule, "method": "GET", "started": started},
            principal=principal,
            triage_level=None,
        )

    @staticmethod
    def _plain_request(environ: dict) -> bool:
        return (
            environ.get("REQUEST_METHOD") == "POST"
            and not environ.get("QUERY_STRING")
            and environ.get("CONTENT_TYPE") == JSON
            and environ.get("HTTP_ACCEPT", JSON) in PLAIN_ACCEPTS
            and "HTTP_ORIGIN" not in environ
            and "HTTP_IDEMPOTENCY_KEY" not in environ
            and "HTTP_TRANSFER_ENCODING" not in environ
        )

    @staticmethod
    def _plain_read(environ: dict) -> bool:
        return (
            environ.get("REQUEST_METHOD") == "GET"
            and not environ.get("QUERY_STRING")
            and environ.get("HTTP_ACCEPT", JSON) in PLAIN_ACCEPTS
            and "HTTP_ORIGIN" not in environ
            and not environ.get("CONTENT_TYPE")
            and environ.get("CONTENT_LENGTH", "") in ("", "0")
            and "HTTP_TRANSFER_ENCODING" not in environ
        )

    def _admit(self, environ: dict, endpoint: str) -> tuple[str, Principal, Any] | None:
        """The request id, the caller and the rate-limit count of a request the fast path may
        answer; None to leave it to Flask."""
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        shared = self._edge
        address = client_address(environ.get("REMOTE_ADDR"))
        # Only a key verified within the cache's fresh time: Flask looks the others up (once,
        # and caches them) and refuses the wrong ones, spending the address's budget if it must.
        principal = shared.key_check.verdict(
            environ.get("HTTP_AUTHORIZATION", ""), address, look_up=False
        )
        if not isinstance(principal, Principal):
            return None
        tally = None
        if shared.rate_limits is not None:
            tally = shared.rate_limits.count(principal, address, endpoint)
            # Counted once: if Flask answers after all (the 429, or any failure below), it
            # takes this count rather than counting the request again.
            environ[COUNTED_TALLY] = tally
            if tally is not None and tally.refused:
                return None
        return request_id, principal, tally

    def _answer(
        self, route: Route, environ: dict, body: bytes, started: float, start_response: Callable
    ) -> list[bytes] | None:
        """The answer, sent; None (nothing sent, nothing recorded) to leave it to Flask."""
        accepted = route.acceptor.accept(orjson.loads(body))
        if accepted is None or (route.stores and not self._unstored(accepted)):
            return None
        admitted = self._admit(environ, route.endpoint)
        if admitted is None:
            return None
        request_id, principal, tally = admitted
        # After the limit, as in Flask's pipeline: a refused request costs no evaluation.
        answer = route.answer(self._evaluator_for, accepted)
        return self._send(
            start_response,
            orjson.dumps(answer.payload),
            tally,
            request_id,
            answer.rules_version,
            outcome={"route": route.rule, "method": "POST", "started": started},
            principal=principal,
            triage_level=answer.observe(answer.payload),
        )

    def _send(
        self,
        start_response: Callable,
        content: bytes,
        tally,
        request_id: str,
        rules_version: str,
        *,
        outcome: dict[str, Any],
        principal: Principal,
        triage_level: str | None,
    ) -> list[bytes]:
        """A 200 of JSON ``content`` with the pipeline's headers, logged and counted."""
        shared = self._edge
        headers = [("Content-Type", JSON), ("Content-Length", str(len(content)))]
        if shared.rate_limits is not None:
            headers += shared.rate_limits.headers(tally, 200)
        headers += shared.security_headers.for_answer(JSON, False)
        headers += identity_headers(request_id, rules_version)
        record_outcome(
            **outcome,
            status=200,
            request_id=request_id,
            tenant=principal.tenant,
            rules_version=rules_version,
            triage_level=triage_level,
        )
        start_response(OK, headers)
        return [content]

    def _unstored(self, accepted: dict[str, Any]) -> bool:
        """Whether an assessment request asks for nothing to be stored (or storing is off)."""
        return accepted.get("store", True) is False or not self._storing_enabled


def _declared_size(environ: dict, limit: int | None) -> int | None:
    """The length a request declares for its body, if it is within ``limit``; else None."""
    length = environ.get("CONTENT_LENGTH", "")
    if not (length.isascii() and length.isdigit()):
        return None
    size = int(length)
    if size == 0 or (limit is not None and size > limit):
        return None
    return size


class _Failing(io.RawIOBase):
    """A body whose reading failed here: it fails the same way when Flask reads it."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise self._error


def _routes(app: Flask) -> dict[str, Route]:
    """The two addresses, with Flask's own rule and endpoint for each."""
    adapter = app.url_map.bind("localhost")
    routes = {}
    for path, acceptor, answer, stores in (
        ("/v1/assess", ASSESS_REQUEST_ACCEPTOR, _assess, True),
        ("/v1/escalation-check", REPORT_ACCEPTOR, _escalation_check, False),
    ):
        rule, _ = adapter.match(path, method="POST", return_rule=True)
        # Both are key-protected /v1 addresses: the key is checked here as Flask checks it.
        if not protected(path, "POST"):
            raise RuntimeError(f"the fast path serves only key-protected addresses, not {path}")
        routes[path] = Route(rule.rule, rule.endpoint, acceptor, answer, stores)
    return routes


def _assessment_rule(app: Flask):
    """Flask's rule for a stored assessment, as the log line, the metrics and the limits name
    it."""
    adapter = app.url_map.bind("localhost")
    rule, _ = adapter.match(f"{ASSESSMENT_PREFIX}x", method="GET", return_rule=True)
    if not protected(f"{ASSESSMENT_PREFIX}x", "GET"):
        raise RuntimeError("the fast path serves only key-protected addresses")
    return rule


def install_fast_path(app: Flask, enabled: bool | None = None) -> FastPath | None:
    """Puts the fast path in front of Flask (behind any ProxyFix, so that it sees the client's
    address as Flask does), unless ``enabled`` is False or, left out, POPLITEAL_FAST_PATH is
    false. Answers the middleware, or None when off."""
    if enabled is None:
        enabled = env_flag("POPLITEAL_FAST_PATH", True)
    if not enabled:
        return None
    outer = app.wsgi_app
    if isinstance(outer, ProxyFix):
        fast_path = outer.app = FastPath(app, outer.app)
    else:
        fast_path = app.wsgi_app = FastPath(app, outer)
    return fast_path
