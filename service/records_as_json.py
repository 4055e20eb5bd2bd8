"""Stored records as the JSON the API answers: their paths, their times, their links, and the
bodies of an assessment, a prescription and a list entry. (``service.records_as_fhir`` gives
the same records as FHIR; ``service.storage`` stores them.)"""

from __future__ import annotations

from typing import Any

import orjson

from service.storage import Record, RecordSummary, Subject


def assessment_path(record_id: str) -> str:
    return f"/v1/assessments/{record_id}"


def prescription_path(record_id: str) -> str:
    return f"/v1/exercise-prescriptions/{record_id}"


def timestamp(record: Record | RecordSummary) -> str:
    return record.created_at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _subject(subject: Subject | None) -> dict[str, str] | None:
    return None if subject is None else {"system": subject.system, "value": subject.value}


def _record_head(record: Record | RecordSummary) -> dict[str, Any]:
    return {
        "id": record.id,
        "created_at": timestamp(record),
        "request_id": record.request_id,
        "subject": _subject(record.subject),
    }


def assessment_links(record: Record | RecordSummary) -> dict[str, str]:
    links = {
        "self": assessment_path(record.id),
        "exercise_prescription": prescription_path(record.plan_id),
    }
    if record.reassessment_of:
        links["reassessment_of"] = assessment_path(record.reassessment_of)
    return links


def render_assessment(record: Record) -> dict[str, Any]:
    return {
        **_record_head(record),
        "links": assessment_links(record),
        **record.response,
        "report": record.request,
    }


def assessment_json(record: Record) -> bytes:
    """``render_assessment(record)`` as JSON, byte for byte what orjson makes of it, without
    decoding the stored answer: its bytes are set between the record's head and its report.
    (The answer's fields are the assessment's own; none is named as a head field or "report",
    which would make the spliced object differ from the merged dict.)"""
    answer = record.response_json
    head = orjson.dumps({**_record_head(record), "links": assessment_links(record)})
    if len(answer) <= 2:  # {}: nothing between the head and the report
        return head[:-1] + b',"report":' + orjson.dumps(record.request) + b"}"
    return head[:-1] + b"," + answer[1:-1] + b',"report":' + orjson.dumps(record.request) + b"}"


def render_prescription(record: Record) -> dict[str, Any]:
    links = {"self": prescription_path(record.id)}
    if record.assessment_id:
        links["assessment"] = assessment_path(record.assessment_id)
    return {
        **_record_head(record),
        "assessment_id": record.assessment_id,
        "links": links,
        **record.response,
        "request": record.request,
    }


def render_summary(record: RecordSummary) -> dict[str, Any]:
    return {
        **_record_head(record),
        "rules_version": record.rules_version,
        "level": record.triage_level,
        "links": assessment_links(record),
    }
