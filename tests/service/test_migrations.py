"""Migrations on SQLite and PostgreSQL: they build exactly the tables the code declares, and go
down and up again cleanly."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from rules import prescription_from_assessment
from service import create_app, examples
from service.state import state
from service.storage import NewRecord, Storage
from service.storage.key_format import KeyShape
from service.storage.keys import hash_key
from service.storage.packing import unpack
from service.storage.records import ASSESSMENT
from service.storage.tables import metadata, records
from tests.conftest import app_config, plant_legacy_key, scratch_postgres_database, tenant_factory

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    server = request.getfixturevalue("postgres_database")
    with scratch_postgres_database(server, "popliteal_migrations") as url:
        yield url


def differences(storage: Storage) -> list:
    with storage.autocommit() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def table_names(storage: Storage) -> set[str]:
    return set(sa.inspect(storage.engine).get_table_names())


def test_the_migrations_build_exactly_the_declared_tables(empty_database):
    storage = Storage(empty_database)
    assert storage.readiness() == {"database": "ok", "migrations": "behind"}
    storage.upgrade()
    assert differences(storage) == []
    assert table_names(storage) == {*metadata.tables, "alembic_version"}
    assert storage.current_revisions() == storage.expected_revisions()
    assert storage.readiness() == {"database": "ok", "migrations": "current"}
    storage.dispose()


def test_the_migrations_go_down_and_up_again(empty_database):
    storage = Storage(empty_database)
    storage.upgrade()
    key, _ = storage.keys.create("migrations")
    storage.downgrade("base")
    assert table_names(storage) <= {"alembic_version"}
    assert storage.current_revisions() == set()
    storage.upgrade()
    assert differences(storage) == []
    assert storage.keys.authenticate(key) is None  # down to base dropped the data with it
    storage.dispose()


def test_a_declared_change_without_a_migration_is_noticed(empty_database):
    """The check above can fail: a column declared but not migrated is a difference."""
    storage = Storage(empty_database)
    storage.upgrade()
    extra = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(extra)
    extra.tables["records"].append_column(sa.Column("undeclared", sa.Integer))
    with storage.autocommit() as connection:
        found = compare_metadata(MigrationContext.configure(connection), extra)
    assert [(diff[0], diff[3].name) for diff in found] == [("add_column", "undeclared")]
    storage.dispose()


def migrated_app_client(database_url: str):
    """The app's storage, migrated to head, and a test client with a key of its own."""
    app = create_app(app_config(DATABASE_URL=database_url))
    storage = state(app).storage
    storage.upgrade()
    return storage, tenant_factory(app)("migrations").client


# The records columns added after 0001, and the revision adding each.
ADDED_IN = {"reassessment_of": "0004", "answer": "0008", "request_packed": "0009"}


def records_at(revision: str) -> sa.TableClause:
    """The records table as it is at a revision: the columns it has there."""
    return sa.table(
        "records",
        *(
            sa.column(c.name, c.type)
            for c in records.columns
            if ADDED_IN.get(c.name, "0001") <= revision
        ),
    )


def _record_row(record_id: str, tenant_id: int, **columns) -> dict:
    """A records row as revision 0003 has them."""
    return {
        "id": record_id,
        "tenant_id": tenant_id,
        "api_key_id": None,
        "kind": "assessment",
        "assessment_id": None,
        "plan_id": None,
        "created_at": datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        "request_id": "migrations",
        "rules_version": "1.0.0",
        "subject_system": None,
        "subject_value": None,
        "triage_level": "self_care",
        "request": {"pain": {"intensity": 2}},
        "response": {"triage": {"level": "self_care"}},
        "idempotency_key": None,
        "request_fingerprint": None,
        **columns,
    }


def test_the_reassessment_link_keeps_every_record_and_link_up_and_down(empty_database):
    """0004 rebuilds the records table on SQLite: the rows, their links and the cascades to an
    assessment's plan survive it, both ways (PostgreSQL alters the table in place)."""
    storage = Storage(empty_database)
    storage.upgrade("0003")
    _, api_key_id = plant_legacy_key(storage, "migrations")
    tenant_id = storage.keys.tenant_id("migrations")
    old_records = records_at("0003")
    assessment, plan = (
        "0190b0c4-0000-7000-8000-00000000000a",
        "0190b0c4-0000-7000-8000-00000000000b",
    )
    other, other_plan = (
        "0190b0c4-0000-7000-8000-00000000000c",
        "0190b0c4-0000-7000-8000-00000000000d",
    )
    with storage.transaction() as connection:
        for record_id, plan_id in ((assessment, plan), (other, other_plan)):
            connection.execute(
                sa.insert(old_records).values(
                    _record_row(record_id, tenant_id, plan_id=plan_id, api_key_id=api_key_id)
                )
            )
            connection.execute(
                sa.insert(old_records).values(
                    _record_row(
                        plan_id,
                        tenant_id,
                        kind="exercise_prescription",
                        assessment_id=record_id,
                        request={"assessment_id": record_id},
                    )
                )
            )

    def stored() -> dict:
        with storage.autocommit() as connection:
            return {
                row.id: (row.kind, row.assessment_id, row.plan_id, row.request, row.response)
                for row in connection.execute(sa.select(old_records))
            }

    before = stored()
    assert len(before) == 4
    storage.upgrade("0007")  # 0008 changes how answers are stored: tested below
    assert stored() == before
    storage.upgrade()
    assert differences(storage) == []
    reassessment = storage.records.create(
        tenant_id=tenant_id,
        api_key_id=api_key_id,
        request_id="migrations",
        new_record=NewRecord(
            ASSESSMENT, "1.0.0", {"pain": {"intensity": 2}}, {}, reassessment_of=other
        ),
    )[0]
    # The foreign keys still cascade: the database erases a plan with its assessment.
    with storage.transaction() as connection:
        connection.execute(sa.delete(records).where(records.c.id == assessment))
    assert set(stored()) == {other, other_plan, reassessment.id}

    storage.downgrade("0003")
    assert set(stored()) == {other, other_plan, reassessment.id}  # kept, without its link
    storage.upgrade()
    assert differences(storage) == []
    assert storage.records.get(tenant_id, ASSESSMENT, reassessment.id).reassessment_of is None
    storage.dispose()


def test_keys_made_before_self_checking_keys_keep_working_and_are_marked_legacy(empty_database):
    """0006 adds the key-check secret: keys made before it are kept, listed as unchecked (to be
    replaced), and still authenticate; keys made after it survive a downgrade."""
    storage = Storage(empty_database)
    storage.upgrade("0005")
    legacy_key, legacy_id = plant_legacy_key(storage, "migrations")
    storage.upgrade()
    checker, legacy_keys_exist = storage.keys.key_checker()
    assert legacy_keys_exist
    assert checker.shape(legacy_key) is KeyShape.LEGACY
    assert storage.keys.authenticate(legacy_key).key_id == legacy_id
    new_key, new_info = storage.keys.create("migrations")
    assert checker.shape(new_key) is KeyShape.CHECKED
    assert {info.id: info.checked for info in storage.keys.list("migrations")} == {
        legacy_id: False,
        new_info.id: True,
    }
    storage.keys.revoke(legacy_id)
    assert storage.keys.key_checker()[1] is False  # no unrevoked legacy key is left
    storage.downgrade("0005")
    with storage.autocommit() as connection:
        hashes = set(connection.execute(sa.text("SELECT key_hash FROM api_keys")).scalars())
    assert hash_key(new_key) in hashes
    storage.dispose()


def test_records_stored_before_0008_read_back_identical_after_it_and_after_going_down(
    empty_database,
):
    """0008 keeps answers as compressed JSON bytes and reads an assessment's plan from it: the
    records of every kind read back byte for byte as before, through the API, both ways."""
    storage, client = migrated_app_client(empty_database)
    subject = {"system": "https://example.org/mrn", "value": "0008"}

    def post(path: str, body: dict, **headers):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 201, response.get_json()
        return response

    replayable = {**examples.POSSIBLE_DVT, "subject": subject}
    first = post("/v1/assess", replayable, **{"Idempotency-Key": "k-0008"})
    assessments = [
        first.get_json(),
        post("/v1/assess", examples.SELF_CARE_TECHNIQUE).get_json(),
        post("/v1/assess", {**examples.MINIMAL, "subject": subject}).get_json(),
    ]
    made_from = post("/v1/exercise-prescriptions", {"assessment_id": assessments[1]["id"]})
    paths = [
        *(path for body in assessments for path in (body["links"]["self"],)),
        *(body["links"]["exercise_prescription"] for body in assessments),
        made_from.headers["Location"],
        f"/v1/assessments?subject={subject['system']}|{subject['value']}",
    ]

    def read() -> dict:
        seen = {}
        for path in paths:
            for accept in ("application/json", "application/fhir+json"):
                response = client.get(path, headers={"Accept": accept})
                assert response.status_code == 200, (path, accept)
                seen[path, accept] = response.data
        replay = post("/v1/assess", replayable, **{"Idempotency-Key": "k-0008"})
        assert replay.headers["Idempotent-Replayed"] == "true"
        seen["replay"] = replay.data
        return seen

    expected = read()
    assert expected["replay"] == first.data
    assert expected[paths[0], "application/json"] == first.data

    # Down to 0007: the records are as every version before 0008 stored them, plans copied.
    storage.downgrade("0007")
    old_records = records_at("0007")
    with storage.autocommit() as connection:
        rows = {row.id: row for row in connection.execute(sa.select(old_records))}
    assert len(rows) == 7
    for body in assessments:
        row = rows[body["id"]]
        assert row.response == {
            name: value
            for name, value in body.items()
            if name not in ("id", "created_at", "request_id", "subject", "links", "report")
        }
        assert rows[row.plan_id].response == prescription_from_assessment(row.response)
    assert all(isinstance(row.response, dict) for row in rows.values())

    # Up again: they read back as they did, byte for byte.
    storage.upgrade()
    assert differences(storage) == []
    with storage.autocommit() as connection:
        stored = connection.execute(
            sa.select(records.c.id, records.c.response, records.c.answer)
        ).all()
    plans = {body["links"]["exercise_prescription"].rsplit("/", 1)[1] for body in assessments}
    assert len(stored) == 4  # each assessment's row holds its plan
    for row in stored:
        assert row.response is None
        assert row.answer is not None
        assert row.id not in plans
    assert read() == expected
    storage.dispose()


def _reads(client, paths: list[str]) -> dict:
    """Each path's body, as JSON and as FHIR."""
    return {
        (path, accept): client.get(path, headers={"Accept": accept}).data
        for path in paths
        for accept in ("application/json", "application/fhir+json")
    }


def test_records_stored_before_0009_read_back_identical_after_it_and_after_going_down(
    empty_database,
):
    """0009 keeps what a record was sent as packed JSON bytes: the records of every kind read
    back byte for byte through the API after going down to 0008 (every request as JSON, the
    form before) and up again, where the rows stored before it keep their JSON requests."""
    storage, client = migrated_app_client(empty_database)
    subject = {"system": "https://example.org/mrn", "value": "0009"}

    def post(path: str, body: dict):
        response = client.post(path, json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    assessments = [
        post("/v1/assess", {**examples.POSSIBLE_DVT, "subject": subject}),
        post("/v1/assess", examples.SELF_CARE_TECHNIQUE),
    ]
    prescription = post("/v1/exercise-prescriptions", {"assessment_id": assessments[1]["id"]})
    paths = [
        *(body["links"]["self"] for body in assessments),
        *(body["links"]["exercise_prescription"] for body in assessments),
        f"/v1/exercise-prescriptions/{prescription['id']}",
        f"/v1/assessments?subject={subject['system']}|{subject['value']}",
    ]

    expected = _reads(client, paths)
    storage.downgrade("0008")
    with storage.autocommit() as connection:
        rows = {row.id: row for row in connection.execute(sa.select(records_at("0008")))}
    assert len(rows) == 5
    assert all(isinstance(row.request, dict) for row in rows.values())
    # Answers are back in the only encoding releases before 0009 read: zlib.
    assert {row.answer[:1] for row in rows.values() if row.answer is not None} == {b"\x01"}
    for body in assessments:
        assert rows[body["id"]].request == body["report"]

    storage.upgrade()
    assert differences(storage) == []
    with storage.autocommit() as connection:
        packed = connection.execute(sa.select(records.c.request_packed)).scalars().all()
    # Rows stored before 0009 are not rewritten; the plans' rows the way down made for 0010
    # are gone again (their assessments' rows hold them).
    assert packed == [None] * 3
    assert _reads(client, paths) == expected
    storage.dispose()


def _stored(client, body: dict) -> dict:
    response = client.post("/v1/assess", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _plan_id(assessment: dict) -> str:
    return assessment["links"]["exercise_prescription"].rsplit("/", 1)[1]


def test_plans_held_by_their_assessments_rows_get_rows_of_their_own_going_down_to_0010(
    empty_database,
):
    """0011: an assessment's row holds its plan. Down to 0010, each such plan gets the row
    0010 would have stored for it; up again, those rows go, and every record reads back byte
    for byte as before."""
    storage, client = migrated_app_client(empty_database)
    subject = {"system": "https://example.org/mrn", "value": "0011"}
    held = [
        _stored(client, {**examples.POSSIBLE_DVT, "subject": subject}),
        _stored(client, examples.SELF_CARE_TECHNIQUE),
    ]
    paths = [
        *(body["links"]["self"] for body in held),
        *(body["links"]["exercise_prescription"] for body in held),
        f"/v1/assessments?subject={subject['system']}|{subject['value']}",
    ]

    expected = _reads(client, paths)
    storage.downgrade("0010")
    with storage.autocommit() as connection:
        rows = {row.id: row for row in connection.execute(sa.select(records))}
    assert len(rows) == 4
    shared = ("tenant_id", "api_key_id", "created_at", "request_id", "rules_version",
              "subject_system", "subject_value", "triage_level")  # fmt: skip
    for body in held:
        assessment, plan = rows[body["id"]], rows[_plan_id(body)]
        assert [getattr(plan, name) for name in shared] == [
            getattr(assessment, name) for name in shared
        ]
        assert (plan.kind, plan.assessment_id, plan.plan_id, plan.answer) == (
            "exercise_prescription", body["id"], None, None,
        )  # fmt: skip
        assert orjson.loads(unpack(plan.request_packed)) == {"assessment_id": body["id"]}
        assert (plan.request, plan.response, plan.idempotency_key) == (None, None, None)

    storage.upgrade()
    assert differences(storage) == []
    with storage.autocommit() as connection:
        ids = set(connection.execute(sa.select(records.c.id)).scalars())
    assert ids == {body["id"] for body in held}
    assert _reads(client, paths) == expected
    storage.dispose()


def test_a_plan_0010_stored_with_a_row_and_an_id_of_its_own_keeps_them_after_0011(
    empty_database,
):
    """It reads back as it did, cannot be erased alone, and goes with its assessment."""
    storage, client = migrated_app_client(empty_database)
    assessment = _stored(client, examples.SELF_CARE_TECHNIQUE)
    plan = client.get(assessment["links"]["exercise_prescription"]).get_json()
    # Down to 0010 and the plan's row given an id of its own, as 0010 stored plans.
    storage.downgrade("0010")
    own_id = assessment["id"][:-4] + "ffff"
    with storage.transaction() as connection:
        connection.execute(
            sa.update(records).where(records.c.id == _plan_id(assessment)).values(id=own_id)
        )
        connection.execute(
            sa.update(records).where(records.c.id == assessment["id"]).values(plan_id=own_id)
        )

    storage.upgrade()
    with storage.autocommit() as connection:
        ids = set(connection.execute(sa.select(records.c.id)).scalars())
    assert ids == {assessment["id"], own_id}
    linked = client.get(assessment["links"]["self"]).get_json()["links"]["exercise_prescription"]
    assert linked == f"/v1/exercise-prescriptions/{own_id}"
    own = client.get(linked).get_json()
    assert own == {**plan, "id": own_id, "links": {**plan["links"], "self": linked}}
    assert client.delete(linked).status_code == 409
    assert client.delete(assessment["links"]["self"]).status_code == 204
    assert client.get(linked).status_code == 404
    storage.dispose()


def test_a_plan_that_is_not_its_assessments_exactly_keeps_its_copy(empty_database):
    """0008 drops a plan's copy only when reading it from the assessment gives the very same
    answer; any other stored plan keeps what it holds."""
    storage = Storage(empty_database)
    storage.upgrade("0007")
    _, api_key_id = plant_legacy_key(storage, "migrations")
    tenant_id = storage.keys.tenant_id("migrations")
    old_records = records_at("0007")
    assessment = "0190b0c4-0000-7000-8000-00000000000a"
    plan = "0190b0c4-0000-7000-8000-00000000000b"
    odd_plan = {"rules_version": "1.0.0", "basis": "report", "hand": "made"}
    with storage.transaction() as connection:
        connection.execute(
            sa.insert(old_records).values(
                _record_row(assessment, tenant_id, plan_id=plan, api_key_id=api_key_id)
            )
        )
        connection.execute(
            sa.insert(old_records).values(
                _record_row(
                    plan,
                    tenant_id,
                    kind="exercise_prescription",
                    assessment_id=assessment,
                    request={"assessment_id": assessment},
                    response=odd_plan,
                )
            )
        )
    storage.upgrade()
    assert storage.records.get(tenant_id, "exercise_prescription", plan).response == odd_plan
    assert storage.records.get(tenant_id, ASSESSMENT, assessment).response == {
        "triage": {"level": "self_care"}
    }
    storage.downgrade("0007")
    with storage.autocommit() as connection:
        query = sa.select(old_records.c.id, old_records.c.response)
        assert {row.id: row.response for row in connection.execute(query)} == {
            assessment: {"triage": {"level": "self_care"}},
            plan: odd_plan,
        }
    storage.dispose()
