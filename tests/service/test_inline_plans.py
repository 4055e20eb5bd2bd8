"""An assessment's row holds its plan: the plan's id and the assessment's give each other, a
held plan is its tenant's alone, and the counts of records (backups, erasures) count it once,
whatever form the database holds plans in."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from service import create_app, examples
from service.state import state
from service.storage import COUNT_RECORDS, NewRecord, plan_id_for
from service.storage.inline_plans import HOLDS_ITS_PLAN, assessment_id_for, holds_its_plan
from service.storage.record_types import new_record_id
from service.storage.tables import records
from tests.conftest import app_config, scratch_postgres_database, tenant_factory


def test_a_plans_id_and_its_assessments_give_each_other():
    for _ in range(1_000):
        assessment_id = new_record_id()
        plan_id = plan_id_for(assessment_id)
        assert plan_id != assessment_id
        assert plan_id[14] == "8"
        assert len(plan_id) == len(assessment_id)
        assert assessment_id_for(plan_id) == assessment_id
        assert assessment_id_for(assessment_id) is None  # a record with a row of its own


@pytest.mark.parametrize(
    "not_a_held_plans_id",
    [
        None,
        "",
        "8",
        "0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8091",  # a record's own id (version 7)
        "0193a4b2-7c1d-4e2f-8a3b-4c5d6e7f8091",  # version 4
        "0193a4b2-7c1d-8e2f-8a3b-4c5d6e7f80910",  # one character too many
        "0193a4b2x7c1d-8e2f-8a3b-4c5d6e7f8091",  # not a UUID's text
    ],
)
def test_an_id_that_is_not_a_held_plans_names_no_assessment(not_a_held_plans_id):
    assert assessment_id_for(not_a_held_plans_id) is None


def test_only_a_records_own_id_makes_a_plans():
    with pytest.raises(ValueError, match="not an id of this service's records"):
        plan_id_for("0193a4b2-7c1d-8e2f-8a3b-4c5d6e7f8091")


def post(tenant, path: str, body: dict):
    response = tenant.client.post(path, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_held_plan_is_its_tenants_alone(stored_app, new_tenant):
    owner, other = new_tenant(), new_tenant()
    plan = post(owner, "/v1/assess", examples.SELF_CARE_TECHNIQUE)["links"]["exercise_prescription"]
    assert owner.client.get(plan).status_code == 200
    assert other.client.get(plan).status_code == 404
    assert other.client.get(f"{plan}/fhir").status_code == 404
    assert other.client.delete(plan).status_code == 404
    assert owner.client.delete(plan).status_code == 409  # erased with its assessment only
    assert owner.client.get(plan).status_code == 200


def test_an_assessment_stored_without_a_plan_links_to_none(stored_app, new_tenant):
    """As records seeded by hand are: its plan is no record, and reading it is no error."""
    tenant = new_tenant()
    answer = {"rules_version": "2.0.0", "triage": {"level": "self_care"}}
    store = state(stored_app).storage.records
    stored, _ = store.create(
        tenant_id=tenant.principal.tenant_id,
        api_key_id=tenant.principal.key_id,
        request_id="no-plan",
        new_record=NewRecord("assessment", "2.0.0", {}, answer, triage_level="self_care"),
    )
    assert stored.plan_id is None
    assert store.get(tenant.principal.tenant_id, "exercise_prescription", stored.plan_id) is None


@pytest.fixture(params=["sqlite", "postgresql"])
def own_app(request, tmp_path):
    """The app on a database of its own: counts of the whole table are this test's."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'counts.sqlite3'}"
        yield _migrated_app(url)
        return
    server = request.getfixturevalue("postgres_database")
    with scratch_postgres_database(server, "popliteal_counts") as url:
        yield _migrated_app(url)


def _migrated_app(url: str):
    app = create_app(app_config(DATABASE_URL=url))
    state(app).storage.upgrade()
    return app


def _counts(app) -> tuple[int, int, int]:
    """COUNT_RECORDS; the rows HOLDS_ITS_PLAN selects; the held plans Python recognises."""
    with state(app).storage.autocommit() as connection:
        counted = connection.execute(sa.text(COUNT_RECORDS)).scalar_one()
        selected = connection.execute(
            sa.select(sa.func.count()).select_from(records).where(HOLDS_ITS_PLAN)
        ).scalar_one()
        rows = connection.execute(sa.select(records.c.id, records.c.kind, records.c.plan_id))
        recognised = sum(1 for row in rows if holds_its_plan(row))
    return counted, selected, recognised


@pytest.mark.postgres
def test_every_record_is_counted_once_whatever_form_its_plan_is_stored_in(own_app):
    tenant = tenant_factory(own_app)("counts")
    storage = state(own_app).storage
    for report in (examples.SELF_CARE_TECHNIQUE, examples.POSSIBLE_DVT, examples.MINIMAL):
        held = post(tenant, "/v1/assess", report)
    post(tenant, "/v1/exercise-prescriptions", {"assessment_id": held["id"]})
    # 3 assessments, their 3 plans, 1 prescription
    assert _counts(own_app) == (7, 3, 3)

    # A plan given a row of its own going down to 0010, as a database being migrated holds it
    # between the downgrade and the upgrade: still one record.
    plan_id = held["links"]["exercise_prescription"].rsplit("/", 1)[1]
    with storage.autocommit() as connection:
        [assessment] = connection.execute(
            sa.select(records).where(records.c.id == held["id"])
        ).mappings()
        connection.execute(
            sa.insert(records).values(
                {
                    **assessment,
                    "id": plan_id,
                    "kind": "exercise_prescription",
                    "assessment_id": held["id"],
                    "plan_id": None,
                    "idempotency_key": None,
                    "request_fingerprint": None,
                    "answer": None,
                }
            )
        )
    assert _counts(own_app)[0] == 7
    storage.dispose()
