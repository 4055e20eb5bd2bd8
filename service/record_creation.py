"""New records from a request: an assessment made into the record stored (its plan with it),
and the write made idempotent (the Idempotency-Key checked, the request
fingerprinted, a replay told apart). ``service.storage`` does the writing itself;
``service.records_as_json`` writes the records out."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import orjson
from flask import current_app, g, request

from schemas.records import IDEMPOTENCY_KEY
from service.pipeline import raise_failed_storage
from service.state import state
from service.storage import ASSESSMENT, NewRecord, Record, Subject, plan_id_for
from service.web import MalformedIdempotencyKey, json_bytes_response

IDEMPOTENCY_HEADER = "Idempotency-Key"


def assessment_record(
    request_body: dict[str, Any],
    assessment: dict[str, Any],
    subject: Subject | None,
    reassessment_of: str | None = None,
) -> NewRecord:
    """An assessment as the record stored, its plan held by its row (the plan's id and
    everything in it follow from the assessment); for a reassessment, linked to the one it
    re-evaluated."""
    record = NewRecord(
        ASSESSMENT,
        assessment["rules_version"],
        request_body,
        assessment,
        subject,
        assessment["triage"]["level"],
        reassessment_of=reassessment_of,
    )
    record.plan_id = plan_id_for(record.id)
    return record


def storing_enabled() -> bool:
    return current_app.config["STORE_RECORDS"]


def subject_from(body: dict[str, Any] | None) -> Subject | None:
    return None if body is None else Subject(body["system"], body["value"])


def split_assess_request(body: dict[str, Any]) -> tuple[bool, Subject | None, dict[str, Any]]:
    """A POST /v1/assess body (checked) -> whether it asks to be stored, who it is about, and
    the symptom report itself (the body is left as it was)."""
    report = dict(body)
    return report.pop("store", True), subject_from(report.pop("subject", None)), report


def idempotency_key() -> str | None:
    """The request's Idempotency-Key, checked; a malformed one is refused before any work."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise MalformedIdempotencyKey
    return key


def fingerprint() -> str:
    """What a key is bound to: method, path, query and the body's JSON content (key order,
    parameter order and white space do not matter). Called only after the body was parsed
    and validated."""
    target = request.path
    if request.args:
        # A FHIR request's settings (rules_version, store) travel in the query: the same key
        # and body with another query is another request. Without a query the fingerprint is
        # what it always was, so keys stored before still replay.
        target += "?" + urlencode(sorted(request.args.items(multi=True)))
    return fingerprint_of(request.method, target, request.get_data(cache=True))


def fingerprint_of(method: str, target: str, body: bytes) -> str:
    """``fingerprint()`` from plain values (the fast path's): SHA-256 of the method and target,
    then of the body's JSON with its keys sorted."""
    digest = hashlib.sha256(f"{method} {target}\n".encode())
    digest.update(orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def store(new_record: NewRecord, key: str | None) -> tuple[Record, bool]:
    """Store the record; it as stored, and whether it is a replay."""
    raise_failed_storage()
    principal = g.principal
    return state().storage.records.create(
        tenant_id=principal.tenant_id,
        api_key_id=principal.key_id,
        request_id=g.request_id,
        new_record=new_record,
        idempotency_key=key,
        fingerprint=fingerprint() if key else None,
    )


def created(body: dict[str, Any], location: str, replayed: bool):
    """The 201 of a stored record."""
    return created_json(orjson.dumps(body), location, replayed)


def created_json(content: bytes, location: str, replayed: bool):
    """The 201 of a stored record whose JSON is made already (a stored answer's bytes)."""
    headers = {"Location": location}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_bytes_response(content, 201, headers)
