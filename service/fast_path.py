"""A thin WSGI path for the valid success case of the hottest requests.

``POST /v1/assess`` and ``POST /v1/escalation-check`` are most of the traffic of a fitness app,
and for a valid report their answer is a pure function of the report (and, stored, one write);
``GET /v1/assessments/{id}`` of a stored assessment is most of an EHR's, and its answer is the
stored bytes. Flask's request and response objects, its context and its hooks cost more per
request than the clinical evaluation itself, so this middleware answers exactly those cases
itself and passes everything else to Flask, untouched.

It answers only a request that is, without any doubt: a POST to one of the two addresses, with
no query string, ``Content-Type: application/json`` exactly, a ``Content-Length`` within the
size limit (no chunked body), and a JSON body the fast report checker accepts (an assessment
stored or not; an ``Idempotency-Key`` only on a stored one, and well-formed: the store replays
it or refuses it, and a refusal is Flask's to answer); or a GET of an assessment of the
caller's, with no query string and no body; either with no ``Origin`` (CORS is Flask's), an
``Accept`` that is absent, ``application/json`` or ``*/*``, a key the key check accepts, and
within its rate limit. Anything else, a refusal of any kind or an error, goes to Flask with the
body it sent (re-supplied from the bytes read here) and, if it was counted, its rate-limit
count, so that Flask answers it as if this path did not exist. A read or a write that failed
here (the database away, a key reused) is not tried again by Flask: Flask answers its error
(``FAILED_STORAGE``), so that an outage costs a request one wait, not two, and a write whose
outcome is unknown is not made twice. Once a record is written, nothing goes back to Flask.

Every concern of the pipeline is the pipeline's own function (``service.pipeline.Edge``): the
request id, the key check, the rate limit, the headers in the pipeline's order, the log line
and the metrics. ``tests/service/test_fast_path.py`` and ``test_fast_path_stored.py`` hold
the two paths byte-equal.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from schemas.records import IDEMPOTENCY_KEY
from service.auth import client_address
from service.config import env_flag
from service.fast_answers import (
    ASSESSMENT_PREFIX,
    Caller,
    Reply,
    Route,
    StoreFailed,
    Written,
    assessment_reply,
    assessment_rule,
    post_routes,
    read_assessment,
    stored_but_unanswered,
)
from service.limits import COUNTED_TALLY
from service.logs import request_id_from
from service.observability import clock, record_outcome
from service.pipeline import FAILED_STORAGE, REQUEST_STARTED, edge, identity_headers
from service.rate_windows import Tally
from service.record_creation import fingerprint_of
from service.state import state
from service.storage import Principal

# The logger of Flask's error handlers (service.web.errors): the same errors, the same lines.
log = logging.getLogger("popliteal")

JSON = "application/json"
# Accept values that ask for nothing but what these routes answer.
PLAIN_ACCEPTS = frozenset((JSON, "*/*"))


@dataclass(slots=True)  # made per request: a frozen one costs more to make
class Admitted:
    """A request the fast path may answer: its id, its caller and its rate-limit count."""

    request_id: str
    principal: Principal
    tally: Tally | None
    started: float


class FastPath:
    """The WSGI middleware; ``served`` counts the requests it answered itself."""

    def __init__(self, app: Flask, inner: Callable) -> None:
        self._inner = inner
        self.served = 0  # read by the tests
        # Read once: the app is built before its fast path is put in front of it.
        self._edge = edge(app)
        self._routes = post_routes(app)
        self._assessment_rule = assessment_rule(app)
        self._max_size = app.config["MAX_CONTENT_LENGTH"]
        self._storing_enabled = app.config["STORE_RECORDS"]
        self._evaluator_for = state(app).rules.get
        self._records = state(app).storage.records

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        route = self._routes.get(path)
        if route is not None and _plain_post(environ):
            return self._post(route, environ, start_response)
        if path.startswith(ASSESSMENT_PREFIX) and _plain_read(environ):
            return self._read(path[len(ASSESSMENT_PREFIX) :], environ, start_response)
        return self._inner(environ, start_response)

    def _post(self, route: Route, environ: dict, start_response: Callable) -> Iterable[bytes]:
        # Before the body is read, where Flask's first hook starts it, and Flask's if it
        # answers after all.
        started = environ[REQUEST_STARTED] = clock()
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
            answered = self._answer_post(route, environ, body, started)
        except StoreFailed as failed:  # Flask answers this error, and stores nothing itself
            environ[FAILED_STORAGE] = failed.error
            answered = None
        except Written as written:  # stored: answered here (an error in this clause is not
            # caught by the next one: it is gunicorn's 500, never Flask's, which would store
            # the request again)
            log.error(
                "unhandled error on POST %s after storing %s",
                route.path,
                written.location,
                exc_info=written.__cause__,
            )
            reply = stored_but_unanswered(
                written.admitted.request_id,
                written.rules_version,
                written.triage_level,
                written.location,
            )
            answered = (reply, written.admitted, route.rule, "POST")
        except Exception:  # any doubt is Flask's: it answers the same request its own way
            answered = None
        if answered is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return self._inner(environ, start_response)
        # Outside the try: once a record is written, a failure is the server's, never Flask's.
        return self._send(*answered, start_response)

    def _answer_post(
        self, route: Route, environ: dict, body: bytes, started: float
    ) -> tuple[Reply, Admitted, str, str] | None:
        accepted = route.acceptor.accept(orjson.loads(body))
        if accepted is None:
            return None
        stores = route.store is not None and self._stores(accepted)
        key = environ.get("HTTP_IDEMPOTENCY_KEY")
        # A key binds a stored record only; a malformed one is Flask's 400.
        if key is not None and not (stores and IDEMPOTENCY_KEY.match(key)):
            return None
        admitted = self._admit(environ, route.endpoint, started)
        if admitted is None:
            return None
        # After the limit, as in Flask's pipeline: a refused request costs no evaluation.
        fingerprint = None if key is None else fingerprint_of("POST", route.path, body)
        caller = Caller(admitted.principal, admitted.request_id, key, fingerprint)
        answer = route.store if stores else route.answer
        try:
            reply = answer(self._evaluator_for, accepted, caller, self._records)
        except Written as written:
            written.admitted = admitted
            raise
        return reply, admitted, route.rule, "POST"

    def _read(self, record_id: str, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = environ[REQUEST_STARTED] = clock()
        try:
            answered = self._answer_read(record_id, environ, started)
        except Exception:  # any doubt is Flask's
            answered = None
        if answered is None:
            return self._inner(environ, start_response)
        return self._send(*answered, start_response)

    def _answer_read(
        self, record_id: str, environ: dict, started: float
    ) -> tuple[Reply, Admitted, str, str] | None:
        if not record_id or "/" in record_id:
            return None
        admitted = self._admit(environ, self._assessment_rule.endpoint, started)
        if admitted is None:
            return None
        try:
            record = read_assessment(self._records, admitted.principal, record_id)
        except Exception as error:  # the database: Flask answers this error, without a 2nd wait
            environ[FAILED_STORAGE] = error
            return None
        if record is None:
            return None
        return assessment_reply(record), admitted, self._assessment_rule.rule, "GET"

    def _admit(self, environ: dict, endpoint: str, started: float) -> Admitted | None:
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
        return Admitted(request_id, principal, tally, started)

    def _send(
        self, reply: Reply, admitted: Admitted, rule: str, method: str, start_response: Callable
    ) -> list[bytes]:
        """The reply, with the pipeline's headers in its order, logged and counted."""
        shared = self._edge
        try:
            content = reply.content()
        except Exception:  # only a stored record's body is made here, after the write
            location = dict(reply.headers).get("Location")
            log.exception("unhandled error on %s %s after storing %s", method, rule, location)
            reply = stored_but_unanswered(
                admitted.request_id, reply.rules_version, reply.triage_level, location
            )
            content = reply.content()
        headers = [
            *reply.headers,
            ("Content-Type", reply.media_type),
            ("Content-Length", str(len(content))),
        ]
        if shared.rate_limits is not None:
            headers += shared.rate_limits.headers(admitted.tally, reply.status[0])
        headers += shared.security_headers.for_answer(reply.media_type, False)
        headers += identity_headers(admitted.request_id, reply.rules_version)
        record_outcome(
            route=rule,
            method=method,
            status=reply.status[0],
            started=admitted.started,
            request_id=admitted.request_id,
            tenant=admitted.principal.tenant,
            rules_version=reply.rules_version,
            triage_level=reply.triage_level,
        )
        self.served += 1
        start_response(reply.status[1], headers)
        return [content]

    def _stores(self, accepted: dict) -> bool:
        """Whether an assessment request asks for a stored record (and storing is on)."""
        return accepted.get("store", True) is not False and self._storing_enabled


def _plain_post(environ: dict) -> bool:
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and not environ.get("QUERY_STRING")
        and environ.get("CONTENT_TYPE") == JSON
        and environ.get("HTTP_ACCEPT", JSON) in PLAIN_ACCEPTS
        and "HTTP_ORIGIN" not in environ
        and "HTTP_TRANSFER_ENCODING" not in environ
    )


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
