"""Reassessing stored assessments under a rules version, on SQLite and on PostgreSQL:
POST /v1/assessments/{id}/reassessments (stateless and stored, linked, erased with the
original, tenant-scoped, validated) and the `reassess` command a clinical lead runs after a
release.

Clinical outcomes are never written down here: every expectation comes from the rules
themselves (``load_library().get(version).assess(report)``), so these tests hold whatever a
rules version says. The two versions compared are the oldest ("1.0.0") and the newest.
"""

from __future__ import annotations

import copy
import json
import logging
import uuid

import orjson
import pytest
import sqlalchemy as sa

from rules import LEVELS, load_library
from service import examples
from service.logs import ACCESS_LOGGER
from service.state import state
from service.storage import NewRecord
from service.storage.packing import unpack
from service.storage.records import ASSESSMENT, Subject
from service.storage.tables import erasures, records

pytestmark = pytest.mark.postgres

LIBRARY = load_library()
OLDEST, NEWEST = "1.0.0", LIBRARY.default_version
SUBJECT = {"system": "https://fitness.example/member-ids", "value": "m-4f9c2a"}
REPORT = examples.POSSIBLE_DVT
MISSING_ID = "0190b0c4-0000-7000-8000-000000000000"


def storage_of(app):
    return state(app).storage


def rows(app, **where) -> list:
    query = sa.select(records).where(*(records.c[name] == value for name, value in where.items()))
    with storage_of(app).autocommit() as connection:
        return connection.execute(query).all()


def expected(report: dict, version: str) -> dict:
    """What the rules give for this report under this version, called directly."""
    return LIBRARY.get(version).assess(copy.deepcopy(report))


def store_assessment(tenant, report=REPORT, version=OLDEST, **extra) -> dict:
    response = tenant.client.post(
        "/v1/assess", json={**report, "rules_version": version, "subject": SUBJECT, **extra}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def reassess(tenant, assessment_id: str, headers=None, **body):
    return tenant.client.post(
        f"/v1/assessments/{assessment_id}/reassessments", json=body, headers=headers or {}
    )


def codes(items, key="code") -> list[str]:
    return [item[key] for item in items]


def independent_difference(before: dict, after: dict) -> dict:
    """The difference, worked out here from the two assessments without rules.difference."""

    def moved(was: list[str], now: list[str]) -> dict:
        return {
            "added": [code for code in now if code not in was],
            "removed": [code for code in was if code not in now],
        }

    def plan(one):
        return one["exercise_plan"] or {"status": None, "items": []}

    def lead(one):
        return one["likely_causes"][0]["code"] if one["likely_causes"] else None

    level_from, level_to = before["triage"]["level"], after["triage"]["level"]
    rank = LEVELS.index(level_to) - LEVELS.index(level_from)
    red_flags = moved(codes(before["triage"]["red_flags"]), codes(after["triage"]["red_flags"]))
    causes = moved(codes(before["likely_causes"]), codes(after["likely_causes"]))
    items = moved(
        codes(plan(before)["items"], "exercise_id"), codes(plan(after)["items"], "exercise_id")
    )
    stop = {"from": before["triage"]["stop_stretching"], "to": after["triage"]["stop_stretching"]}

    def frame(one):
        found = one["triage"].get("time_frame")
        return found["code"] if found else None

    complete = {"from": before["triage"]["complete"], "to": after["triage"]["complete"]}
    triage_changed = bool(
        level_from != level_to
        or red_flags["added"]
        or red_flags["removed"]
        or stop["from"] != stop["to"]
        or frame(before) != frame(after)
        or (complete["from"] and not complete["to"])
    )
    return {
        "level": {
            "from": level_from,
            "to": level_to,
            "direction": "raised" if rank > 0 else "lowered" if rank < 0 else "unchanged",
        },
        "stop_stretching": stop,
        "time_frame": {"from": frame(before), "to": frame(after)},
        "complete": complete,
        "red_flags": red_flags,
        "causes": causes,
        "leading_cause": {"from": lead(before), "to": lead(after)},
        "plan": {"from_status": plan(before)["status"], "to_status": plan(after)["status"]},
        "plan_items": items,
        "recommendations": moved(codes(before["recommendations"]), codes(after["recommendations"])),
        "triage_changed": triage_changed,
        "changed": bool(
            triage_changed
            or causes["added"]
            or causes["removed"]
            or lead(before) != lead(after)
            or plan(before)["status"] != plan(after)["status"]
            or items["added"]
            or items["removed"]
        ),
    }


def store_as_if_assessed_by_other_rules(app, tenant, report: dict, answered: dict) -> str:
    """A stored assessment of ``report`` whose stored answer is ``answered``: what a record
    made under rules that decided otherwise looks like. Returns its id."""
    version = answered["rules_version"]
    level = answered["triage"]["level"]
    stored, _ = storage_of(app).records.create(
        tenant_id=tenant.principal.tenant_id,
        api_key_id=tenant.principal.key_id,
        request_id="seeded",
        new_record=NewRecord(ASSESSMENT, version, report, answered, Subject(**SUBJECT), level),
    )
    return stored.id


# -- Stateless -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored_under", "reassessed_under"),
    [(OLDEST, NEWEST), (NEWEST, OLDEST), (OLDEST, OLDEST)],
    ids=["oldest to newest", "newest to oldest", "same version"],
)
def test_a_reassessment_answers_both_results_and_their_difference_and_writes_nothing(
    stored_app, new_tenant, stored_under, reassessed_under
):
    tenant = new_tenant()
    original = store_assessment(tenant, version=stored_under)
    before = rows(stored_app, tenant_id=tenant.principal.tenant_id)

    response = reassess(tenant, original["id"], rules_version=reassessed_under)

    assert response.status_code == 200, response.get_json()
    assert "Location" not in response.headers
    assert response.headers["X-Rules-Version"] == reassessed_under
    body = response.get_json()
    assert body["assessment_id"] == original["id"]
    assert body["reassessment_id"] is None
    assert body["links"] == {"original": f"/v1/assessments/{original['id']}"}
    # Each side is what the rules give for the report under its version.
    assert body["original"]["rules_version"] == stored_under
    assert body["original"]["assessment"] == expected(REPORT, stored_under)
    assert body["reassessed"]["rules_version"] == reassessed_under
    assert body["reassessed"]["assessment"] == expected(REPORT, reassessed_under)
    # The original is the stored answer, as GET gives it.
    stored = tenant.client.get(f"/v1/assessments/{original['id']}").get_json()
    assert body["original"]["assessment"] == {
        key: stored[key] for key in body["original"]["assessment"]
    }
    assert body["difference"] == independent_difference(
        body["original"]["assessment"], body["reassessed"]["assessment"]
    )
    # Nothing written, nothing edited.
    assert rows(stored_app, tenant_id=tenant.principal.tenant_id) == before


def test_the_new_result_is_what_post_assess_gives_for_the_report_under_that_version(new_tenant):
    tenant = new_tenant()
    original = store_assessment(tenant, examples.SCIATICA_TINGLING)
    direct = tenant.client.post(
        "/v1/assess",
        json={**examples.SCIATICA_TINGLING, "rules_version": NEWEST, "store": False},
    ).get_json()
    body = reassess(tenant, original["id"], rules_version=NEWEST).get_json()
    assert body["reassessed"]["assessment"] == direct


def test_a_changed_triage_is_reported_with_its_direction(stored_app, new_tenant):
    """A record whose stored answer differs from what the rules now say (as after a release
    that changed them): the difference names every change, worked out independently."""
    tenant = new_tenant()
    answered = expected(examples.SELF_CARE_TECHNIQUE, OLDEST)
    now = expected(REPORT, NEWEST)
    record_id = store_as_if_assessed_by_other_rules(stored_app, tenant, REPORT, answered)

    body = reassess(tenant, record_id, rules_version=NEWEST).get_json()

    assert body["original"]["assessment"] == answered
    assert body["reassessed"]["assessment"] == now
    difference = body["difference"]
    assert difference == independent_difference(answered, now)
    # The two reports really are triaged differently (whatever the rules say exactly).
    assert difference["triage_changed"] is True
    assert difference["changed"] is True


def test_the_report_is_the_stored_one_without_the_pinned_version(stored_app, new_tenant):
    tenant = new_tenant()
    original = store_assessment(tenant, version=OLDEST)
    assert original["report"]["rules_version"] == OLDEST
    body = reassess(tenant, original["id"], rules_version=NEWEST).get_json()
    assert body["reassessed"]["assessment"]["rules_version"] == NEWEST


# -- Stored ----------------------------------------------------------------------------------


def test_a_stored_reassessment_is_a_new_linked_assessment(stored_app, new_tenant):
    tenant = new_tenant()
    original = store_assessment(tenant, version=OLDEST)

    response = reassess(tenant, original["id"], rules_version=NEWEST, store=True)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    new_id = body["reassessment_id"]
    uuid.UUID(new_id)
    assert response.headers["Location"] == f"/v1/assessments/{new_id}"
    assert body["links"] == {
        "original": f"/v1/assessments/{original['id']}",
        "reassessment": f"/v1/assessments/{new_id}",
    }
    assert body["reassessed"]["assessment"] == expected(REPORT, NEWEST)

    stored = tenant.client.get(response.headers["Location"])
    assert stored.status_code == 200
    assert stored.headers["X-Rules-Version"] == NEWEST
    record = stored.get_json()
    assert record["links"]["reassessment_of"] == f"/v1/assessments/{original['id']}"
    assert record["subject"] == SUBJECT
    assert record["report"] == {
        **{key: value for key, value in REPORT.items()},
        "rules_version": NEWEST,
    }
    assert {key: record[key] for key in body["reassessed"]["assessment"]} == body["reassessed"][
        "assessment"
    ]
    # With its plan, as every stored assessment.
    plan = tenant.client.get(record["links"]["exercise_prescription"])
    assert plan.status_code == 200
    assert plan.get_json()["assessment_id"] == new_id
    # In the database: same tenant and subject, linked; the original untouched.
    [row] = rows(stored_app, id=new_id)
    assert row.tenant_id == tenant.principal.tenant_id
    assert (row.subject_system, row.subject_value) == (SUBJECT["system"], SUBJECT["value"])
    assert row.reassessment_of == original["id"]
    assert row.rules_version == NEWEST
    assert tenant.client.get(f"/v1/assessments/{original['id']}").get_json() == original
    assert "reassessment_of" not in original["links"]
    # Listed like any assessment, with its link.
    items = tenant.client.get("/v1/assessments").get_json()["items"]
    assert [item["id"] for item in items] == [new_id, original["id"]]
    assert items[0]["links"]["reassessment_of"] == f"/v1/assessments/{original['id']}"


def test_a_stored_reassessment_is_idempotent_with_a_key(stored_app, new_tenant):
    tenant = new_tenant()
    original = store_assessment(tenant)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = reassess(tenant, original["id"], headers=key, rules_version=NEWEST, store=True)
    again = reassess(tenant, original["id"], headers=key, store=True, rules_version=NEWEST)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert len(rows(stored_app, reassessment_of=original["id"])) == 1

    # The same key for another request (another assessment, or a first POST /v1/assess).
    another = store_assessment(tenant)
    for refused in (
        reassess(tenant, another["id"], headers=key, rules_version=NEWEST, store=True),
        tenant.client.post("/v1/assess", json=REPORT, headers=key),
    ):
        assert refused.status_code == 422
        assert refused.get_json()["type"].endswith("idempotency-key-reused")
    assert rows(stored_app, reassessment_of=another["id"]) == []
    assert len(rows(stored_app, reassessment_of=original["id"])) == 1


def test_storage_turned_off_for_the_deployment_writes_nothing(migrated_database_url):
    from service import create_app
    from tests.conftest import app_config, tenant_factory

    app = create_app(app_config(DATABASE_URL=migrated_database_url, STORE_RECORDS=False))
    tenant = tenant_factory(app)()
    record_id = store_as_if_assessed_by_other_rules(app, tenant, REPORT, expected(REPORT, OLDEST))
    response = reassess(tenant, record_id, rules_version=NEWEST, store=True)
    assert response.status_code == 200
    assert response.get_json()["reassessment_id"] is None
    assert rows(app, reassessment_of=record_id) == []
    storage_of(app).dispose()


# -- Erasure ---------------------------------------------------------------------------------


def test_erasing_the_original_erases_its_reassessments_and_all_that_came_from_them(
    stored_app, new_tenant
):
    """Right to erasure: everything derived from the erased report goes with it, however
    deep (a reassessment of a reassessment, a prescription made from one)."""
    tenant = new_tenant()
    original = store_assessment(tenant)
    first = reassess(tenant, original["id"], rules_version=NEWEST, store=True).get_json()
    second = reassess(tenant, first["reassessment_id"], rules_version=OLDEST, store=True).get_json()
    prescription = tenant.client.post(
        "/v1/exercise-prescriptions", json={"assessment_id": second["reassessment_id"]}
    ).get_json()
    unrelated = store_assessment(tenant)
    derived_paths = [
        f"/v1/assessments/{first['reassessment_id']}",
        f"/v1/assessments/{second['reassessment_id']}",
        f"/v1/exercise-prescriptions/{prescription['id']}",
    ]
    derived_paths += [
        tenant.client.get(path).get_json()["links"]["exercise_prescription"]
        for path in derived_paths[:2]
    ]

    response = tenant.client.delete(f"/v1/assessments/{original['id']}")

    assert response.status_code == 204
    for path in [f"/v1/assessments/{original['id']}", *derived_paths]:
        assert tenant.client.get(path).status_code == 404, path
    remaining = rows(stored_app, tenant_id=tenant.principal.tenant_id)
    assert {row.id for row in remaining} == {unrelated["id"]}  # its row holds its plan
    plan = unrelated["links"]["exercise_prescription"]
    assert tenant.client.get(plan).status_code == 200
    with storage_of(stored_app).autocommit() as connection:
        [logged] = connection.execute(
            sa.select(erasures).where(erasures.c.record_id == original["id"])
        ).all()
    # The original and its plan, two reassessments and their plans, one prescription.
    assert logged.records_erased == 7


def test_erasing_a_reassessment_leaves_the_original(stored_app, new_tenant):
    tenant = new_tenant()
    original = store_assessment(tenant)
    created = reassess(tenant, original["id"], rules_version=NEWEST, store=True)
    assert tenant.client.delete(created.headers["Location"]).status_code == 204
    assert tenant.client.get(created.headers["Location"]).status_code == 404
    assert tenant.client.get(f"/v1/assessments/{original['id']}").get_json() == original


def test_an_original_erased_while_its_reassessment_is_stored_leaves_nothing(
    stored_app, new_tenant, monkeypatch
):
    """The erasure lands between reading the original and storing the reassessment: the
    database refuses the orphan, and the client gets the 404 the erased id now answers."""
    tenant = new_tenant()
    original = store_assessment(tenant)
    store = storage_of(stored_app).records
    original_get = store.get

    def get_then_erase(tenant_id, kind, record_id):
        found = original_get(tenant_id, kind, record_id)
        store.erase(tenant_id, None, kind, record_id)
        return found

    monkeypatch.setattr(store, "get", get_then_erase)
    response = reassess(
        tenant,
        original["id"],
        headers={"Idempotency-Key": str(uuid.uuid4())},
        rules_version=NEWEST,
        store=True,
    )
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert rows(stored_app, tenant_id=tenant.principal.tenant_id) == []


# -- Refusals --------------------------------------------------------------------------------


def _without_request_id(problem: dict) -> dict:
    return {key: value for key, value in problem.items() if key != "request_id"}


@pytest.mark.parametrize("whose", ["another tenant's", "unknown", "malformed", "erased"])
def test_only_your_own_stored_assessments_can_be_reassessed(stored_app, new_tenant, whose):
    owner, caller = new_tenant(), new_tenant()
    theirs = store_assessment(owner)["id"]
    if whose == "erased":
        caller = owner
        assert owner.client.delete(f"/v1/assessments/{theirs}").status_code == 204
    assessment_id = {"unknown": MISSING_ID, "malformed": "x" * 40}.get(whose, theirs)

    response = reassess(caller, assessment_id, rules_version=NEWEST, store=True)
    missing = reassess(caller, MISSING_ID, rules_version=NEWEST, store=True)

    assert response.status_code == missing.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert _without_request_id(response.get_json()) == _without_request_id(missing.get_json())
    assert rows(stored_app, tenant_id=caller.principal.tenant_id, reassessment_of=theirs) == []
    if whose == "another tenant's":
        assert owner.client.get(f"/v1/assessments/{theirs}").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rules_version": "9.9.9"}, "rules_version"),
        ({"rules_version": 1}, "rules_version"),
        ({}, "rules_version"),
        ({"rules_version": NEWEST, "store": 1}, "store"),
        ({"rules_version": NEWEST, "store": "true"}, "store"),
        ({"rules_version": NEWEST, "subject": SUBJECT}, "subject"),
        ({"rules_version": NEWEST, "pain": {"intensity": 2}}, "pain"),
    ],
    ids=[
        "unknown version",
        "version not a string",
        "no version",
        "store 1",
        "store a string",
        "a subject",
        "a report",
    ],
)
def test_an_invalid_body_is_a_422_naming_the_field(stored_app, new_tenant, body, field):
    tenant = new_tenant()
    original = store_assessment(tenant)
    response = reassess(tenant, original["id"], **body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == "urn:popliteal:problem:validation-error"
    assert list(problem["errors"]) == [field]
    assert rows(stored_app, reassessment_of=original["id"]) == []


def test_an_unknown_rules_version_is_refused_as_post_assess_refuses_it(new_tenant):
    tenant = new_tenant()
    original = store_assessment(tenant)
    refused = reassess(tenant, original["id"], rules_version="0.0.1").get_json()
    by_assess = tenant.client.post(
        "/v1/assess", json={**REPORT, "rules_version": "0.0.1"}
    ).get_json()
    assert _without_request_id(refused) == _without_request_id(by_assess)


@pytest.mark.parametrize(
    ("send", "status"),
    [
        ({"data": "{", "content_type": "application/json"}, 400),
        ({"data": "rules_version=1.0.0", "content_type": "text/plain"}, 415),
        ({"json": {"rules_version": NEWEST}, "query_string": {"store": "true"}}, 422),
    ],
    ids=["malformed JSON", "not JSON", "a query"],
)
def test_other_malformed_requests_are_problems(stored_app, new_tenant, send, status):
    tenant = new_tenant()
    original = store_assessment(tenant)
    response = tenant.client.post(f"/v1/assessments/{original['id']}/reassessments", **send)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert rows(stored_app, reassessment_of=original["id"]) == []


def test_a_key_is_needed(stored_app, new_tenant):
    tenant = new_tenant()
    original = store_assessment(tenant)
    response = stored_app.test_client().post(
        f"/v1/assessments/{original['id']}/reassessments", json={"rules_version": NEWEST}
    )
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_a_stored_report_the_checks_no_longer_accept_is_a_409(stored_app, new_tenant):
    """A report stored before the report vocabulary changed: it is not evaluated as it is."""
    tenant = new_tenant()
    old_report = {"pain": {"intensity": 3, "retired_question": True}}
    record_id = store_as_if_assessed_by_other_rules(
        stored_app, tenant, old_report, expected({"pain": {"intensity": 3}}, OLDEST)
    )
    response = reassess(tenant, record_id, rules_version=NEWEST, store=True)
    assert response.status_code == 409
    problem = response.get_json()
    assert problem["type"] == "urn:popliteal:problem:stored-report-invalid"
    assert list(problem["errors"]) == ["report.pain.retired_question"]
    assert rows(stored_app, reassessment_of=record_id) == []


def test_the_request_is_logged_with_the_new_level_and_no_record_id(new_tenant, caplog):
    tenant = new_tenant()
    original = store_assessment(tenant)
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    caplog.clear()
    reassess(tenant, original["id"], rules_version=NEWEST)
    [line] = [record for record in caplog.records if record.name == ACCESS_LOGGER]
    assert line.route == "/v1/assessments/<string:assessment_id>/reassessments"
    assert line.rules_version == NEWEST
    assert line.triage_level == expected(REPORT, NEWEST)["triage"]["level"]
    assert original["id"] not in line.getMessage() + json.dumps(vars(line), default=str)


# -- The reassess command --------------------------------------------------------------------


def run_reassess(app, *arguments: str):
    result = app.test_cli_runner().invoke(args=["reassess", *arguments])
    return result


def seed_tenant(stored_app, new_tenant):
    """Six assessments: three the rules still answer as stored, two stored with another
    answer (a changed triage), and one with a report the checks no longer accept."""
    tenant = new_tenant()
    same = [
        store_assessment(tenant, report)["id"]
        for report in (examples.SELF_CARE_TECHNIQUE, REPORT, examples.SCIATICA_TINGLING)
    ]
    changed = [
        store_as_if_assessed_by_other_rules(
            stored_app, tenant, REPORT, expected(examples.SELF_CARE_TECHNIQUE, OLDEST)
        ),
        store_as_if_assessed_by_other_rules(
            stored_app, tenant, examples.SELF_CARE_TECHNIQUE, expected(REPORT, OLDEST)
        ),
    ]
    invalid = store_as_if_assessed_by_other_rules(
        stored_app, tenant, {"pain": {"intensity": 1, "retired": 1}}, expected(REPORT, OLDEST)
    )
    return tenant, same, changed, invalid


def test_the_command_reports_the_records_whose_triage_changed(stored_app, new_tenant, tmp_path):
    tenant, _, changed, invalid = seed_tenant(stored_app, new_tenant)
    other = new_tenant()
    store_assessment(other)  # another tenant's: never read
    before = rows(stored_app)
    output = tmp_path / "report.json"

    result = run_reassess(
        stored_app,
        "--tenant", tenant.name, "--rules-version", OLDEST, "--output", str(output),
        "--changed-only", "--page-size", "2",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text(encoding="utf-8"))
    assert (report["tenant"], report["rules_version"], report["changed_only"]) == (
        tenant.name,
        OLDEST,
        True,
    )
    listed = {entry["id"]: entry for entry in report["records"]}
    assert set(listed) == {*changed, invalid}
    for record_id in changed:
        entry = listed[record_id]
        [row] = rows(stored_app, id=record_id)
        assert entry["subject"] == SUBJECT
        assert entry["created_at"] == row.created_at.isoformat(timespec="microseconds").replace(
            "+00:00", "Z"
        )
        assert entry["rules_versions"] == {"original": row.rules_version, "reassessed": OLDEST}
        assert entry["triage_changed"] is True
        assert entry["difference"] == independent_difference(
            orjson.loads(unpack(row.answer)),
            expected(orjson.loads(unpack(row.request_packed)), OLDEST),
        )
    assert list(listed[invalid]["errors"]) == ["report.pain.retired"]
    directions = [listed[record_id]["difference"]["level"]["direction"] for record_id in changed]
    assert report["summary"] == {
        "records_read": 6,
        "changed": 2,
        "level_raised": directions.count("raised"),
        "level_lowered": directions.count("lowered"),
        "not_reassessable": 1,
    }
    assert "Nothing was stored" in result.output
    assert rows(stored_app) == before  # it never stores anything


def test_the_command_lists_every_record_without_changed_only_and_writes_json_lines(
    stored_app, new_tenant
):
    tenant, same, changed, invalid = seed_tenant(stored_app, new_tenant)
    result = run_reassess(
        stored_app, "--tenant", tenant.name, "--rules-version", OLDEST, "--format", "jsonl"
    )
    assert result.exit_code == 0, result.output
    *lines, last = [json.loads(line) for line in result.stdout.splitlines()]
    # Newest first, every record once.
    assert [line["id"] for line in lines] == [invalid, *reversed(changed), *reversed(same)]
    assert {line["id"]: line.get("triage_changed") for line in lines} == {
        **dict.fromkeys(same, False),
        **dict.fromkeys(changed, True),
        invalid: None,
    }
    assert last["summary"]["records_read"] == 6
    assert last["summary"]["changed"] == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--tenant", "no-such-tenant", "--rules-version", OLDEST], "No tenant"),
        (["--tenant", "{tenant}", "--rules-version", "9.9.9"], "not an available"),
    ],
    ids=["unknown tenant", "unknown version"],
)
def test_the_command_refuses_an_unknown_tenant_or_version(
    stored_app, new_tenant, tmp_path, arguments, message
):
    tenant = new_tenant()
    output = tmp_path / "report.json"
    arguments = [argument.format(tenant=tenant.name) for argument in arguments]
    result = run_reassess(stored_app, *arguments, "--output", str(output))
    assert result.exit_code != 0
    assert message in result.output
    assert not output.exists()
