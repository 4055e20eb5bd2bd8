"""What a CDS Hooks call is about: the request read in the CDS Hooks 2.0 shape; the patient's
latest answers to the intake Questionnaire in the prefetch (assessed and stored, once per
response: a chart opened again replays the same record), or else the patient's latest stored
assessment; and who the patient is, as the pseudonyms stored with the records."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import g, request
from marshmallow import ValidationError

from schemas.fhir import QUESTIONNAIRE_URL, date_time_start
from schemas.fhir.questionnaire import QuestionnaireResponseError
from service.evaluation import ASSESS_REQUEST, ASSESS_REQUEST_ACCEPTOR
from service.fhir_intake import response_reader
from service.observability import observe_assessment
from service.record_creation import assessment_record
from service.state import state
from service.storage import ASSESSMENT, Record, Subject
from service.web import flatten_errors

EARLIEST = datetime.min.replace(tzinfo=UTC)


class IntakeEnteredInError(Exception):
    """The prefetched intake holds responses to our Questionnaire, all entered in error."""


class NothingToAssess(Exception):
    """No intake to assess and no assessment stored for the patient, or an intake entered in
    error: a 412, as the specification asks. The message says what to send."""


class HookRequestError(Exception):
    """A CDS Hooks request that does not follow the specification's shape: a 400."""

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None):
        self.detail = detail
        self.errors = errors
        super().__init__(detail)


def read_request(schema) -> dict[str, Any]:
    """The request's JSON body, loaded with ``schema``: a HookRequestError (a 400) when it is
    not JSON or not in the CDS Hooks 2.0 shape."""
    try:
        body = orjson.loads(request.get_data(cache=True))
    except orjson.JSONDecodeError:
        raise HookRequestError("The request body is not valid JSON.") from None
    try:
        return schema.load(body)
    except ValidationError as error:
        raise HookRequestError(
            "The request does not follow the CDS Hooks 2.0 request shape.",
            flatten_errors(error.messages),
        ) from None


def latest_intake(prefetch: dict[str, Any]) -> dict[str, Any] | None:
    """The latest QuestionnaireResponse to our Questionnaire in the prefetch, if any."""
    intake = prefetch.get("intake")
    if intake is None:
        return None
    if not isinstance(intake, dict):
        raise HookRequestError("prefetch.intake must be a FHIR resource.")
    if intake.get("resourceType") == "QuestionnaireResponse":
        candidates = [intake]
    elif intake.get("resourceType") == "Bundle":
        candidates = [
            entry.get("resource")
            for entry in intake.get("entry") or []
            if isinstance(entry, dict)
            and isinstance(entry.get("resource"), dict)
            and entry["resource"].get("resourceType") == "QuestionnaireResponse"
        ]
    else:
        raise HookRequestError("prefetch.intake must be a QuestionnaireResponse or a Bundle.")
    ours = [
        r for r in candidates if str(r.get("questionnaire", "")).split("|")[0] == QUESTIONNAIRE_URL
    ]
    # A response entered in error is not the patient's answer: never the one assessed.
    valid = [r for r in ours if r.get("status") != "entered-in-error"]
    if ours and not valid:
        raise IntakeEnteredInError
    return max(valid, key=_authored, default=None)


def _authored(response: dict[str, Any]) -> datetime:
    """When a response was authored, as an instant, so that offsets compare correctly; a
    missing or unreadable date sorts first."""
    return date_time_start(response.get("authored")) or EARLIEST


def patient_subjects(body: dict[str, Any], intake: dict[str, Any] | None) -> list[Subject]:
    """Who the patient is for our records, most specific first: the response's own subject
    identifier, the Patient's identifiers, and the patient's id on the client's FHIR server,
    each as its keyed-hash pseudonym (service.cds.pseudonyms)."""
    found: list[Subject] = []
    if intake and isinstance(intake.get("subject"), dict):
        identifier = intake["subject"].get("identifier")
        if isinstance(identifier, dict):
            found.append(_subject(identifier))
    patient = (body.get("prefetch") or {}).get("patient")
    if isinstance(patient, dict) and patient.get("resourceType") == "Patient":
        found += [_subject(i) for i in patient.get("identifier") or [] if isinstance(i, dict)]
    if body.get("fhirServer"):
        found.append(
            Subject(f"{body['fhirServer'].rstrip('/')}/Patient", body["context"]["patientId"])
        )
    # Only pseudonyms leave this function: the real identifiers are never stored or logged.
    pseudonymous = state().pseudonymizer.subject
    return list(dict.fromkeys(pseudonymous(s) for s in found if s is not None))


def _subject(identifier: dict[str, Any]) -> Subject | None:
    system, value = identifier.get("system"), identifier.get("value")
    if isinstance(system, str) and isinstance(value, str) and 0 < len(system) <= 255:
        return Subject(system, value) if 0 < len(value) <= 255 else None
    return None


def assess_intake(intake: dict[str, Any], subject: Subject | None):
    response = {key: value for key, value in intake.items() if key != "subject"}
    try:
        report, _ = response_reader(state().rules).read(response)
    except QuestionnaireResponseError as error:
        raise HookRequestError(
            "prefetch.intake cannot be read as a symptom report.", error.errors
        ) from None
    try:
        report = ASSESS_REQUEST_ACCEPTOR.validated(report, ASSESS_REQUEST)
    except ValidationError as error:
        raise HookRequestError(
            "prefetch.intake has answers that are not valid.", flatten_errors(error.messages)
        ) from None
    evaluator = state().rules.get()
    assessment = evaluator.assess(dict(report))
    observe_assessment(assessment)
    # One record per response and patient: opening the chart again replays it.
    fingerprint = hashlib.sha256(
        orjson.dumps([intake, subject and [subject.system, subject.value]],
                     option=orjson.OPT_SORT_KEYS)
    ).hexdigest()  # fmt: skip
    stored, _ = state().storage.records.create(
        tenant_id=g.principal.tenant_id,
        api_key_id=None,
        request_id=g.request_id,
        new_record=assessment_record(report, assessment, subject),
        idempotency_key=f"cds-hooks:{fingerprint}",
        fingerprint=fingerprint,
    )
    return stored


def latest_stored(subjects: list[Subject]):
    records = state().storage.records
    latest = None
    for subject in subjects:
        page = records.page(g.principal.tenant_id, limit=1, subject=subject)
        if page.items and (latest is None or page.items[0].created_at > latest.created_at):
            latest = page.items[0]
    if latest is None:
        return None
    return records.get(g.principal.tenant_id, ASSESSMENT, latest.id)


def assessment_for(body: dict[str, Any]) -> Record:
    """The stored assessment a call is about: its prefetched intake, assessed and stored, or
    else the patient's latest stored assessment; NothingToAssess when there is neither."""
    try:
        intake = latest_intake(body.get("prefetch") or {})
    except IntakeEnteredInError:
        # Not falling back on a stored assessment: it may have been made from that response.
        raise NothingToAssess(
            "The patient's intake QuestionnaireResponse was entered in error: nothing to assess "
            "until it is answered again."
        ) from None
    subjects = patient_subjects(body, intake)
    if intake is not None:
        return assess_intake(intake, subjects[0] if subjects else None)
    record = latest_stored(subjects)
    if record is None:
        raise NothingToAssess(
            "Nothing to assess: prefetch the patient's latest QuestionnaireResponse to "
            f"{QUESTIONNAIRE_URL} (prefetch key 'intake'), or store an assessment for the "
            "patient."
        )
    return record
