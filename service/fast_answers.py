"""What the fast path (``service.fast_path``) answers, as plain values: each route's reply to
a request already admitted (its key checked, its rate limit counted), or None to leave the
request to Flask.

Flask's views give the same answers through the same functions: the evaluation
(``Evaluator``), the record made of an assessment (``assessment_record``), the store
(``RecordStore.create`` and ``get``) and the JSON of a record (``service.records_as_json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Flask

from rules import Evaluator
from schemas.fast import ReportAcceptor
from service.auth import protected
from service.evaluation import (
    ASSESS_REQUEST_ACCEPTOR,
    REPORT_ACCEPTOR,
    assessment_of,
    escalation_of,
)
from service.observability import assessment_level, escalation_level
from service.record_creation import assessment_record, split_assess_request
from service.records_as_json import assessment_json, assessment_path
from service.storage import ASSESSMENT, RECORD_ID_LENGTH, Principal, Record, RecordStore
from service.web import PROBLEM_MEDIA_TYPE, problem_body, stored_but_unanswered_detail

JSON = "application/json"
OK = (200, "200 OK")
CREATED = (201, "201 CREATED")
SERVER_ERROR = (500, "500 INTERNAL SERVER ERROR")
ASSESSMENT_PREFIX = "/v1/assessments/"

EvaluatorFor = Callable[[str | None], Evaluator]


@dataclass(slots=True)  # made per request: a frozen one costs more to make
class Reply:
    """An answer to send: its status, its JSON body (made when it is sent), the headers that
    come before the pipeline's, its rules version and the triage level the metrics count."""

    status: tuple[int, str]  # (200, "200 OK")
    content: Callable[[], bytes]
    headers: tuple[tuple[str, str], ...]
    rules_version: str | None
    triage_level: str | None
    media_type: str = JSON


class StoreFailed(Exception):
    """Storing failed: Flask answers ``error`` (it is not stored a second time)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class Written(Exception):
    """A failure after a record was written: the server's error, never Flask's to answer
    (Flask would store the request again). What is known of the answer: its rules version,
    triage level and the record's address, each None if the failure came first; and, set by
    the fast path, the request as admitted."""

    def __init__(
        self,
        error: Exception,
        rules_version: str,
        triage_level: str | None,
        location: str | None,
    ) -> None:
        super().__init__(str(error))
        self.rules_version = rules_version
        self.triage_level = triage_level
        self.location = location
        self.admitted: Any = None


def stored_but_unanswered(
    request_id: str, rules_version: str | None, triage_level: str | None, location: str | None
) -> Reply:
    """The 500 problem Flask answers a failure after storing with (service.web.errors)."""
    content = orjson.dumps(problem_body(500, stored_but_unanswered_detail(location), request_id))
    return Reply(
        SERVER_ERROR, _computed(content), (), rules_version, triage_level, PROBLEM_MEDIA_TYPE
    )


def _computed(content: bytes) -> Callable[[], bytes]:
    return lambda: content


def assess(evaluator_for: EvaluatorFor, body: dict, _caller: Caller, _records) -> Reply:
    # store and subject: instructions for a stored record, and none is stored here.
    _, _, report = split_assess_request(body)
    _, evaluator, assessment = assessment_of(evaluator_for, report)
    return Reply(
        OK,
        _computed(orjson.dumps(assessment)),
        (),
        evaluator.ruleset.version,
        assessment_level(assessment),
    )


def escalation_check(evaluator_for: EvaluatorFor, body: dict, _caller: Caller, _records) -> Reply:
    evaluator, check = escalation_of(evaluator_for, body)
    return Reply(
        OK, _computed(orjson.dumps(check)), (), evaluator.ruleset.version, escalation_level(check)
    )


@dataclass(slots=True)  # made per request: a frozen one costs more to make
class Caller:
    """Who sent an admitted request, its id, and what a stored record is bound to: the
    Idempotency-Key (checked) and the request's fingerprint, or None for both."""

    principal: Principal
    request_id: str
    idempotency_key: str | None = None
    fingerprint: str | None = None


def assess_and_store(
    evaluator_for: EvaluatorFor, body: dict, caller: Caller, records: RecordStore
) -> Reply:
    """POST /v1/assess stored: the assessment (its plan with it) written in one statement (or, with
    an Idempotency-Key already used for the same request, the assessment stored then). Its
    JSON is made only when sent, so that nothing after the write can send the request back to
    Flask, which would store it again."""
    _, subject, report = split_assess_request(body)
    sent, evaluator, assessment = assessment_of(evaluator_for, report)
    new_record = assessment_record(sent, assessment, subject)
    try:
        record, replayed = records.create(
            tenant_id=caller.principal.tenant_id,
            api_key_id=caller.principal.key_id,
            request_id=caller.request_id,
            new_record=new_record,
            idempotency_key=caller.idempotency_key,
            fingerprint=caller.fingerprint,
        )
    except Exception as error:  # a reused or erased key, the database away: Flask's to answer
        raise StoreFailed(error) from error
    level, location = None, None
    try:
        # Counted in the metrics only once the write is done: a write that failed is counted by
        # Flask, which answers it.
        level = assessment_level(assessment)
        location = assessment_path(record.id)
        headers = (("Location", location),)
        if replayed:
            headers += (("Idempotent-Replayed", "true"),)
        return Reply(
            CREATED,
            lambda: assessment_json(record),
            headers,
            evaluator.ruleset.version,
            level,
        )
    except Exception as error:
        raise Written(error, evaluator.ruleset.version, level, location) from error


def read_assessment(records: RecordStore, principal: Principal, record_id: str) -> Record | None:
    """The caller's assessment of this id; None when there is none of theirs (Flask answers
    the 404). Its errors are the store's."""
    if len(record_id) > RECORD_ID_LENGTH:
        return None
    return records.get(principal.tenant_id, ASSESSMENT, record_id)


def assessment_reply(record: Record) -> Reply:
    """GET /v1/assessments/{id}: the stored bytes, as Flask sends them."""
    return Reply(OK, _computed(assessment_json(record)), (), record.rules_version, None)


@dataclass(frozen=True)
class Route:
    path: str
    rule: str  # Flask's rule string, as the log line and the metrics name it
    endpoint: str  # Flask's endpoint, as the rate limits count it
    acceptor: ReportAcceptor
    answer: Callable[..., Reply]  # (evaluator_for, body, Caller, records) -> Reply
    store: Callable[..., Reply] | None  # the same, for a request that asks to be stored


def post_routes(app: Flask) -> dict[str, Route]:
    """The two report addresses, with Flask's own rule and endpoint for each."""
    routes = {}
    for path, acceptor, answer, store in (
        ("/v1/assess", ASSESS_REQUEST_ACCEPTOR, assess, assess_and_store),
        ("/v1/escalation-check", REPORT_ACCEPTOR, escalation_check, None),
    ):
        rule = _protected_rule(app, path, "POST")
        routes[path] = Route(path, rule.rule, rule.endpoint, acceptor, answer, store)
    return routes


def assessment_rule(app: Flask) -> Any:
    """Flask's rule for a stored assessment, as the log line, the metrics and the limits name
    it."""
    return _protected_rule(app, f"{ASSESSMENT_PREFIX}x", "GET")


def _protected_rule(app: Flask, path: str, method: str):
    rule, _ = app.url_map.bind("localhost").match(path, method=method, return_rule=True)
    # Key-protected /v1 addresses only: the key is checked here as Flask checks it.
    if not protected(path, method):
        raise RuntimeError(f"the fast path serves only key-protected addresses, not {path}")
    return rule
