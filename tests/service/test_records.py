"""Stored assessments and exercise prescriptions, as a client sees them, on SQLite and on
PostgreSQL: what a record holds, reading and listing it, erasing it, idempotent writes, and
tenants that never see each other's records."""

from __future__ import annotations

import base64
import threading
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa

from service import examples
from service.state import state
from service.storage.packing import unpack
from service.storage.tables import erasures, records

pytestmark = pytest.mark.postgres

SUBJECT = {"system": "https://fitness.example/member-ids", "value": "m-4f9c2a"}
OTHER_SUBJECT = {"system": "https://fitness.example/member-ids", "value": "m-77aa01"}
REPORT = examples.SELF_CARE_TECHNIQUE


def storage_of(app):
    return state(app).storage


def rows(app, **where) -> list:
    query = sa.select(records).where(*(records.c[name] == value for name, value in where.items()))
    with storage_of(app).autocommit() as connection:
        return connection.execute(query).all()


def assess(tenant, report=REPORT, headers=None, **extra):
    return tenant.client.post("/v1/assess", json={**report, **extra}, headers=headers or {})


# -- What a record holds ---------------------------------------------------------------------


def test_an_assessment_is_stored_with_its_request_response_version_tenant_time_and_request_id(
    stored_app, new_tenant
):
    tenant = new_tenant()
    before = datetime.now(UTC)
    response = assess(tenant, subject=SUBJECT, headers={"X-Request-ID": "req-stored-1"})
    after = datetime.now(UTC)

    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/v1/assessments/{body['id']}"
    uuid.UUID(body["id"])
    assert body["subject"] == SUBJECT
    assert body["request_id"] == "req-stored-1"
    assert body["report"] == REPORT

    [row] = rows(stored_app, id=body["id"])
    assert row.kind == "assessment"
    assert row.tenant_id == tenant.principal.tenant_id
    assert row.api_key_id == tenant.principal.key_id
    assert row.request_id == "req-stored-1"
    assert row.rules_version == body["rules_version"] == "2.0.0"
    assert (row.subject_system, row.subject_value) == (SUBJECT["system"], SUBJECT["value"])
    assert row.triage_level == body["triage"]["level"]
    # What was asked, kept as its packed JSON bytes; store and subject are the record's own.
    assert row.request is None
    assert orjson.loads(unpack(row.request_packed)) == REPORT
    assert row.response is None  # the answer is kept as its compressed JSON bytes
    answer = orjson.loads(unpack(row.answer))
    stored = {key: body[key] for key in answer}
    assert answer == stored  # the whole response, as it was given
    assert before - timedelta(seconds=1) <= row.created_at <= after + timedelta(seconds=1)


def test_a_stored_assessment_reads_back_as_the_very_bytes_it_was_answered_with(new_tenant):
    """GET serves the stored answer's bytes without decoding them: the body is exactly the 201's,
    and exactly what encoding the whole record would give."""
    tenant = new_tenant()
    for report in (REPORT, examples.POSSIBLE_DVT, examples.MINIMAL):
        created = assess(tenant, report, subject=SUBJECT)
        read = tenant.client.get(created.headers["Location"])
        assert read.status_code == 200
        assert read.mimetype == "application/json"
        assert read.data == created.data
        plan = tenant.client.get(created.get_json()["links"]["exercise_prescription"])
        assert plan.status_code == 200


def test_no_field_of_an_assessment_is_named_as_a_field_of_its_record():
    """The stored answer's bytes are set between the record's own fields: were a field of the
    answer named as one of them, the JSON would hold it twice."""
    from schemas.responses.assessment import AssessmentSchema

    record_fields = {"id", "created_at", "request_id", "subject", "links", "report"}
    assert not set(AssessmentSchema().fields) & record_fields


def test_the_assessment_links_to_its_plan_which_links_back(new_tenant):
    tenant = new_tenant()
    assessment = assess(tenant, subject=SUBJECT).get_json()
    plan_path = assessment["links"]["exercise_prescription"]

    response = tenant.client.get(plan_path)
    assert response.status_code == 200
    plan = response.get_json()
    assert plan["assessment_id"] == assessment["id"]
    assert plan["links"] == {"self": plan_path, "assessment": f"/v1/assessments/{assessment['id']}"}
    assert plan["exercise_plan"] == assessment["exercise_plan"]
    assert plan["subject"] == SUBJECT
    assert plan["basis"] == "report"


def test_a_stored_assessment_reads_back_exactly_as_it_was_answered(new_tenant):
    tenant = new_tenant()
    created = assess(tenant, examples.POSSIBLE_DVT, subject=SUBJECT)
    read = tenant.client.get(created.headers["Location"])
    assert read.status_code == 200
    assert read.get_json() == created.get_json()
    assert read.headers["X-Rules-Version"] == "2.0.0"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**REPORT, "store": False}, 200),
        ({**REPORT, "store": False, "subject": SUBJECT}, 200),
    ],
)
def test_store_false_writes_nothing(stored_app, new_tenant, body, status):
    tenant = new_tenant()
    response = tenant.client.post("/v1/assess", json=body)
    assert response.status_code == status
    assert "id" not in response.get_json()
    assert rows(stored_app, tenant_id=tenant.principal.tenant_id) == []


def test_the_escalation_check_never_stores_and_refuses_storage_fields(stored_app, new_tenant):
    tenant = new_tenant()
    assert tenant.client.post("/v1/escalation-check", json=REPORT).status_code == 200
    refused = tenant.client.post("/v1/escalation-check", json={**REPORT, "store": True})
    assert refused.status_code == 422
    assert "store" in refused.get_json()["errors"]
    assert rows(stored_app, tenant_id=tenant.principal.tenant_id) == []


@pytest.mark.parametrize(
    ("subject", "field"),
    [
        ({"system": "fitness members", "value": "m-1"}, "system"),
        ({"system": "https://x.example/ids", "value": "Jane Doe"}, "value"),
        ({"system": "https://x.example/ids", "value": "m-1\n"}, "value"),
        ({"system": "https://x.example/ids", "value": "x" * 129}, "value"),
        ({"system": "https://x.example/ids"}, "value"),
        ({"system": "https://x.example/ids", "value": "m-1", "name": "Jane"}, "name"),
    ],
    ids=["system not a URI", "a name", "trailing newline", "too long", "no value", "extra"],
)
def test_a_subject_must_be_a_pseudonymous_identifier(stored_app, new_tenant, subject, field):
    tenant = new_tenant()
    response = assess(tenant, subject=subject)
    assert response.status_code == 422
    assert f"subject.{field}" in response.get_json()["errors"]
    assert rows(stored_app, tenant_id=tenant.principal.tenant_id) == []


def test_storage_turned_off_for_the_deployment_writes_nothing(migrated_database_url):
    from service import create_app
    from tests.conftest import app_config, tenant_factory

    app = create_app(app_config(DATABASE_URL=migrated_database_url, STORE_RECORDS=False))
    tenant = tenant_factory(app)()
    assessed = tenant.client.post("/v1/assess", json=REPORT)
    prescribed = tenant.client.post(
        "/v1/exercise-prescriptions", json={"conditions": ["tight_hamstrings"], "pain_intensity": 1}
    )
    assert (assessed.status_code, prescribed.status_code) == (200, 200)
    assert rows(app, tenant_id=tenant.principal.tenant_id) == []
    storage_of(app).dispose()


# -- Exercise prescriptions as resources ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"report": REPORT},
        {"conditions": ["tight_hamstrings"], "pain_intensity": 2, "profile": {"age": 40}},
    ],
    ids=["from a report", "from conditions"],
)
def test_a_prescription_is_stored_and_read_back(stored_app, new_tenant, body):
    tenant = new_tenant()
    response = tenant.client.post("/v1/exercise-prescriptions", json={**body, "subject": SUBJECT})
    assert response.status_code == 201
    created = response.get_json()
    assert response.headers["Location"] == f"/v1/exercise-prescriptions/{created['id']}"
    assert created["request"] == body
    assert created["assessment_id"] is None
    assert tenant.client.get(response.headers["Location"]).get_json() == created
    [row] = rows(stored_app, id=created["id"])
    assert row.kind == "exercise_prescription"
    assert orjson.loads(unpack(row.request_packed)) == body


def test_a_prescription_from_a_stored_assessment_uses_its_report_and_subject(new_tenant):
    tenant = new_tenant()
    assessment = assess(tenant, subject=SUBJECT).get_json()
    response = tenant.client.post(
        "/v1/exercise-prescriptions", json={"assessment_id": assessment["id"]}
    )
    assert response.status_code == 201
    prescription = response.get_json()
    assert prescription["assessment_id"] == assessment["id"]
    assert prescription["subject"] == SUBJECT
    assert prescription["exercise_plan"] == assessment["exercise_plan"]
    assert prescription["links"]["assessment"] == f"/v1/assessments/{assessment['id']}"


@pytest.mark.parametrize(
    "body",
    [
        {"assessment_id": "0190b0c4-0000-7000-8000-000000000000"},
        {"assessment_id": "not-an-id"},
        {"assessment_id": None},
        {"assessment_id": "0190b0c4-0000-7000-8000-000000000000", "subject": SUBJECT},
        {"assessment_id": "0190b0c4-0000-7000-8000-000000000000", "report": REPORT},
    ],
    ids=["unknown", "malformed", "null", "with a subject", "with a report"],
)
def test_a_prescription_from_an_assessment_needs_one_of_yours(new_tenant, body):
    response = new_tenant().client.post("/v1/exercise-prescriptions", json=body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"]


# -- Listing ---------------------------------------------------------------------------------


def test_the_list_is_newest_first_and_pages_through_everything_once(new_tenant):
    tenant = new_tenant()
    created = [assess(tenant, subject=SUBJECT).get_json()["id"] for _ in range(7)]

    seen, path, pages = [], "/v1/assessments?limit=3", 0
    while path:
        response = tenant.client.get(path)
        assert response.status_code == 200
        page = response.get_json()
        seen += [item["id"] for item in page["items"]]
        assert all(item["subject"] == SUBJECT for item in page["items"])
        path = page["links"].get("next")
        assert (path is None) == (page["next_cursor"] is None)
        pages += 1
    assert pages == 3
    assert seen == list(reversed(created))


def test_the_list_filters_by_subject(new_tenant):
    tenant = new_tenant()
    mine = [assess(tenant, subject=SUBJECT).get_json()["id"] for _ in range(2)]
    assess(tenant, subject=OTHER_SUBJECT)
    assess(tenant)

    subject = f"{SUBJECT['system']}|{SUBJECT['value']}"
    page = tenant.client.get("/v1/assessments", query_string={"subject": subject}).get_json()
    assert [item["id"] for item in page["items"]] == list(reversed(mine))
    summary = page["items"][0]
    assert summary["level"] == "self_care"
    assert summary["links"]["self"] == f"/v1/assessments/{summary['id']}"
    assert "report" not in summary  # a summary: the whole record is one GET away


def test_the_list_filters_by_date_on_each_side_of_the_bounds(stored_app, new_tenant):
    tenant = new_tenant()
    first = assess(tenant).get_json()
    second = assess(tenant).get_json()
    [row] = rows(stored_app, id=second["id"])
    at = row.created_at.isoformat()

    def ids(**query):
        page = tenant.client.get("/v1/assessments", query_string=query).get_json()
        return [item["id"] for item in page["items"]]

    # created_after is inclusive, created_before exclusive: a record at the bound is in the
    # first and not in the second, so adjacent windows never count one twice.
    assert second["id"] in ids(created_after=at)
    assert second["id"] not in ids(created_before=at)
    assert first["id"] in ids(created_before=at) or first["id"] in ids(created_after=at)
    later = (row.created_at + timedelta(microseconds=1)).isoformat()
    assert second["id"] not in ids(created_after=later)
    assert ids(created_after=later, created_before=at) == []  # an empty window: nothing


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"cursor": "bm90IGEgY3Vyc29y"},
        {"cursor": "%%%"},
        {"subject": "no-bar"},
        {"subject": "https://x.example/ids|Jane Doe"},
        {"created_after": "2026-01-01T00:00:00"},
    ],
    ids=[
        "limit 0",
        "limit 101",
        "limit not a number",
        "foreign cursor",
        "garbage cursor",
        "subject without bar",
        "subject with a name",
        "time without zone",
    ],
)
def test_a_bad_list_query_is_a_422(new_tenant, query):
    response = new_tenant().client.get("/v1/assessments", query_string=query)
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"


# -- Erasure ---------------------------------------------------------------------------------


def test_erasing_an_assessment_erases_its_plan_and_prescriptions_made_from_it(
    stored_app, new_tenant
):
    tenant = new_tenant()
    assessment = assess(tenant, subject=SUBJECT).get_json()
    derived = tenant.client.post(
        "/v1/exercise-prescriptions", json={"assessment_id": assessment["id"]}
    ).get_json()
    kept = tenant.client.post("/v1/exercise-prescriptions", json={"report": REPORT}).get_json()

    response = tenant.client.delete(f"/v1/assessments/{assessment['id']}")
    assert response.status_code == 204
    assert response.get_data() == b""

    for path in (
        f"/v1/assessments/{assessment['id']}",
        assessment["links"]["exercise_prescription"],
        f"/v1/exercise-prescriptions/{derived['id']}",
    ):
        assert tenant.client.get(path).status_code == 404, path
    assert tenant.client.delete(f"/v1/assessments/{assessment['id']}").status_code == 404
    assert tenant.client.get(f"/v1/exercise-prescriptions/{kept['id']}").status_code == 200
    # Gone from the database for real, and from the list.
    assert rows(stored_app, id=assessment["id"]) == []
    assert rows(stored_app, assessment_id=assessment["id"]) == []
    assert tenant.client.get("/v1/assessments").get_json()["items"] == []
    # The erasure log says what was done, holding nothing of the record.
    with storage_of(stored_app).autocommit() as connection:
        [logged] = connection.execute(
            sa.select(erasures).where(erasures.c.record_id == assessment["id"])
        ).all()
    assert logged.records_erased == 3
    assert logged.api_key_id == tenant.principal.key_id


def test_an_assessments_plan_is_erased_only_with_its_assessment(new_tenant):
    tenant = new_tenant()
    assessment = assess(tenant).get_json()
    plan_path = assessment["links"]["exercise_prescription"]
    response = tenant.client.delete(plan_path)
    assert response.status_code == 409
    assert assessment["id"] in response.get_json()["detail"]
    assert tenant.client.get(plan_path).status_code == 200


def test_a_stand_alone_prescription_is_erased(stored_app, new_tenant):
    tenant = new_tenant()
    created = tenant.client.post("/v1/exercise-prescriptions", json={"report": REPORT})
    path = created.headers["Location"]
    assert tenant.client.delete(path).status_code == 204
    assert tenant.client.get(path).status_code == 404
    assert rows(stored_app, id=created.get_json()["id"]) == []


def test_records_are_never_edited(new_tenant):
    tenant = new_tenant()
    path = assess(tenant).headers["Location"]
    for method in ("put", "patch"):
        response = getattr(tenant.client, method)(path, json=REPORT)
        assert response.status_code == 405
        assert response.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS"


# -- Idempotency -----------------------------------------------------------------------------


def test_a_retry_with_the_same_key_and_body_returns_the_first_result(stored_app, new_tenant):
    tenant = new_tenant()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = assess(tenant, headers=key, subject=SUBJECT)
    # The same JSON content, with its keys in another order.
    reordered = dict(reversed(list({**REPORT, "subject": SUBJECT}.items())))
    again = tenant.client.post("/v1/assess", json=reordered, headers=key)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    # One assessment, its row holding its plan.
    assert len(rows(stored_app, tenant_id=tenant.principal.tenant_id)) == 1


def test_the_same_key_with_another_body_is_a_422_and_writes_nothing(stored_app, new_tenant):
    tenant = new_tenant()
    key = {"Idempotency-Key": "order-1234"}
    assert assess(tenant, headers=key).status_code == 201
    response = assess(tenant, examples.POSSIBLE_DVT, headers=key)
    assert response.status_code == 422
    assert response.get_json()["type"].endswith("idempotency-key-reused")
    other_endpoint = tenant.client.post(
        "/v1/exercise-prescriptions", json={"report": REPORT}, headers=key
    )
    assert other_endpoint.status_code == 422
    assert len(rows(stored_app, tenant_id=tenant.principal.tenant_id)) == 1


def test_a_retry_with_the_key_of_an_erased_record_is_a_410_and_stores_nothing(
    stored_app, new_tenant
):
    tenant = new_tenant()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = assess(tenant, headers=key, subject=SUBJECT)
    assert first.status_code == 201
    erased = tenant.client.delete(first.headers["Location"])
    assert erased.status_code == 204
    for body_is_the_same in (True, False):
        report = REPORT if body_is_the_same else examples.POSSIBLE_DVT
        retry = assess(tenant, report, headers=key, subject=SUBJECT)
        assert retry.status_code == 410
        assert retry.mimetype == "application/problem+json"
        assert retry.get_json()["type"].endswith("idempotency-key-erased")
    other = tenant.client.post("/v1/exercise-prescriptions", json={"report": REPORT}, headers=key)
    assert other.status_code == 410
    assert rows(stored_app, tenant_id=tenant.principal.tenant_id) == []
    # Another tenant's same key is its own.
    assert assess(new_tenant(), headers=key).status_code == 201


def test_the_key_of_a_record_erased_with_its_original_is_a_410(stored_app, new_tenant):
    tenant = new_tenant()
    original = assess(tenant).get_json()
    key = {"Idempotency-Key": "prescription-from-it"}
    made = tenant.client.post(
        "/v1/exercise-prescriptions", json={"assessment_id": original["id"]}, headers=key
    )
    assert made.status_code == 201
    assert tenant.client.delete(f"/v1/assessments/{original['id']}").status_code == 204
    again = tenant.client.post("/v1/exercise-prescriptions", json={"report": REPORT}, headers=key)
    assert again.status_code == 410
    assert rows(stored_app, tenant_id=tenant.principal.tenant_id) == []


def test_keys_belong_to_a_tenant(new_tenant):
    one, other = new_tenant(), new_tenant()
    key = {"Idempotency-Key": "shared-looking-key"}
    first = assess(one, headers=key).get_json()
    second = assess(other, examples.POSSIBLE_DVT, headers=key)
    assert second.status_code == 201
    assert second.get_json()["id"] != first["id"]


@pytest.mark.parametrize("key", ["", "has space", "é", "x" * 256])
def test_a_malformed_idempotency_key_is_a_400(stored_app, new_tenant, key):
    tenant = new_tenant()
    response = assess(tenant, headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.get_json()["detail"]
    assert rows(stored_app, tenant_id=tenant.principal.tenant_id) == []


def test_concurrent_retries_with_one_key_make_one_record(stored_app, new_tenant):
    """Eight requests race with one key: each gets the same record, and one is stored."""
    tenant = new_tenant()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    start = threading.Barrier(8)
    answers: list = [None] * 8

    def post(index: int) -> None:
        client = stored_app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tenant.key}"
        start.wait()
        answers[index] = client.post("/v1/assess", json=REPORT, headers=key)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.get_json()["id"] for answer in answers}) == 1
    assert sum("Idempotent-Replayed" in answer.headers for answer in answers) == 7
    assert len(rows(stored_app, tenant_id=tenant.principal.tenant_id, kind="assessment")) == 1


# -- Tenants ---------------------------------------------------------------------------------


def _records_of(tenant) -> dict[str, str]:
    assessment = assess(tenant, subject=SUBJECT).get_json()
    prescription = tenant.client.post(
        "/v1/exercise-prescriptions", json={"report": REPORT}
    ).get_json()
    return {
        "assessment": f"/v1/assessments/{assessment['id']}",
        "plan": assessment["links"]["exercise_prescription"],
        "prescription": f"/v1/exercise-prescriptions/{prescription['id']}",
        "assessment_id": assessment["id"],
    }


MISSING = {
    "assessment": "/v1/assessments/0190b0c4-0000-7000-8000-000000000000",
    "plan": "/v1/exercise-prescriptions/0190b0c4-0000-7000-8000-000000000001",
    "prescription": "/v1/exercise-prescriptions/0190b0c4-0000-7000-8000-000000000002",
}


@pytest.mark.parametrize("resource", ["assessment", "plan", "prescription"])
@pytest.mark.parametrize("method", ["get", "delete"])
def test_another_tenants_record_answers_exactly_as_a_missing_one(
    stored_app, new_tenant, resource, method
):
    owner, intruder = new_tenant(), new_tenant()
    path = _records_of(owner)[resource]

    theirs = getattr(intruder.client, method)(path)
    missing = getattr(intruder.client, method)(MISSING[resource])
    assert theirs.status_code == missing.status_code == 404
    strip = ("instance", "request_id")
    assert {k: v for k, v in theirs.get_json().items() if k not in strip} == {
        k: v for k, v in missing.get_json().items() if k not in strip
    }
    # And it is still there for its owner.
    assert owner.client.get(path).status_code == 200


def test_another_tenants_assessment_cannot_seed_a_prescription(new_tenant):
    owner, intruder = new_tenant(), new_tenant()
    theirs = _records_of(owner)["assessment_id"]
    response = intruder.client.post("/v1/exercise-prescriptions", json={"assessment_id": theirs})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "assessment_id": ["No assessment of yours has this id."]
    }


def test_lists_never_include_another_tenants_records(new_tenant):
    owner, intruder = new_tenant(), new_tenant()
    _records_of(owner)
    subject = f"{SUBJECT['system']}|{SUBJECT['value']}"
    for query in ({}, {"subject": subject}):
        page = intruder.client.get("/v1/assessments", query_string=query).get_json()
        assert page["items"] == []
    assert len(owner.client.get("/v1/assessments").get_json()["items"]) == 1


def test_an_assessment_erased_while_a_prescription_is_made_from_it_is_a_422(
    stored_app, new_tenant, monkeypatch
):
    """The erasure lands between reading the assessment and storing the prescription: the
    database refuses the orphan, and the client gets the same 422 as for an unknown id."""
    tenant = new_tenant()
    assessment = assess(tenant).get_json()
    store = storage_of(stored_app).records
    original_get = store.get

    def get_then_erase(tenant_id, kind, record_id):
        found = original_get(tenant_id, kind, record_id)
        store.erase(tenant_id, None, kind, record_id)
        return found

    monkeypatch.setattr(store, "get", get_then_erase)
    response = tenant.client.post(
        "/v1/exercise-prescriptions",
        json={"assessment_id": assessment["id"]},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "assessment_id": ["No assessment of yours has this id."]
    }
    assert rows(stored_app, tenant_id=tenant.principal.tenant_id) == []


@pytest.mark.parametrize(
    "query",
    [
        "created_after=0001-01-01T00:00:00%2B14:00",
        "created_before=0001-01-01T00:00:00%2B00:01",
        "cursor="
        + base64.urlsafe_b64encode(b'["0001-01-01T00:00:00+14:00","x"]').decode().rstrip("="),
    ],
    ids=["created_after before year one in UTC", "created_before likewise", "a cursor likewise"],
)
def test_a_time_out_of_range_in_utc_is_a_4xx_not_a_500(new_tenant, query):
    response = new_tenant().client.get(f"/v1/assessments?{query}")
    assert response.status_code in (400, 422), response.get_json()
    assert response.mimetype == "application/problem+json"


def test_a_store_on_a_connection_the_pool_checked_after_idling_is_one_committed_insert(
    stored_app, new_tenant, monkeypatch
):
    """Every checkout counts as idle here, so the pool checks each connection first: the store
    still commits on its own, and the connection goes back to the pool in no transaction."""
    from service.storage import engine as storage_engine

    monkeypatch.setattr(storage_engine, "IDLE_BEFORE_PING_SECONDS", -1.0)
    tenant = new_tenant()
    statements = []
    engine = state(stored_app).storage.engine

    def seen(_connection, _cursor, statement, *_args):
        statements.append(statement.split(None, 1)[0].upper())

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        for _ in range(3):
            created = assess(tenant, subject=SUBJECT)
            assert created.status_code == 201
            assert tenant.client.get(created.headers["Location"]).data == created.data
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert statements.count("INSERT") == 3
