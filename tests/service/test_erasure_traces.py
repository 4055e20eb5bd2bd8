"""Erasure leaves no trace: after DELETE, unique marker values planted in the record (its
subject) and in what was derived from it (a clinician's comment in CDS card feedback) are found
in no table and, on SQLite, in no file of the database (the main file, its write-ahead log or
its shared memory), as raw bytes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from service import create_app, examples
from service.state import state
from service.storage.cds import Feedback
from service.storage.tables import metadata
from tests.conftest import app_config, tenant_factory


def _everything(storage) -> str:
    """Every row of every table, as text."""
    with storage.autocommit() as connection:
        return "\n".join(
            repr(row)
            for table in metadata.sorted_tables
            for row in connection.execute(sa.select(table))
        )


def _files(database: Path) -> bytes:
    return b"".join(
        path.read_bytes()
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm"))
        if path.exists()
    )


def test_an_erased_assessment_leaves_nothing_in_any_table_or_database_file(tmp_path):
    database = tmp_path / "erasure.sqlite3"
    app = create_app(app_config(DATABASE_URL=f"sqlite:///{database}"))
    storage = state(app).storage
    storage.upgrade()
    tenant = tenant_factory(app)("erasure-tests")
    subject_marker = f"marker-subject-{uuid.uuid4().hex}"
    comment_marker = f"marker-comment-{uuid.uuid4().hex}"

    stored = tenant.client.post(
        "/v1/assess",
        json={
            **examples.SELF_CARE_TECHNIQUE,
            "subject": {"system": "https://fitness.example/ids", "value": subject_marker},
        },
    )
    assert stored.status_code == 201
    record_id = stored.get_json()["id"]
    storage.cds.record_feedback(
        tenant.principal.tenant_id,
        "https://ehr.example",
        "popliteal-knee-pain",
        [
            Feedback(
                card_id=record_id,
                outcome="overridden",
                accepted_suggestions=[],
                override_reason={"userComment": comment_marker},
                outcome_at=datetime.now(UTC),
            )
        ],
    )
    for marker in (subject_marker, comment_marker):  # planted where the test looks
        assert marker in _everything(storage)

    assert tenant.client.delete(f"/v1/assessments/{record_id}").status_code == 204

    rows = _everything(storage)
    on_disk = _files(database)
    for marker in (subject_marker, comment_marker):
        assert marker not in rows
        assert marker.encode() not in on_disk
    assert record_id not in rows.replace(f"'{record_id}', 'assessment'", "")  # only the log


def test_secure_delete_is_on_for_sqlite(tmp_path):
    app = create_app(app_config(DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}"))
    with state(app).storage.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1


def test_a_long_reader_delays_an_erasures_log_truncation_only_briefly(tmp_path, caplog):
    """The truncating checkpoint waits for readers and holds writers off while it waits: it
    gives up after a short wait (logged), rather than stalling writes for the busy timeout."""
    import sqlite3
    import time

    database = tmp_path / "reader.sqlite3"
    app = create_app(app_config(DATABASE_URL=f"sqlite:///{database}"))
    storage = state(app).storage
    storage.upgrade()
    client = tenant_factory(app)().client
    stored = client.post("/v1/assess", json=examples.MINIMAL).get_json()["links"]["self"]
    reader = sqlite3.connect(database)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM records").fetchone()  # holds a read snapshot
    try:
        started = time.monotonic()
        assert client.delete(stored).status_code == 204
        assert time.monotonic() - started < 10  # not the 30 s busy timeout
        assert "could not be truncated" in caplog.text
    finally:
        reader.rollback()
        reader.close()
    assert client.post("/v1/assess", json=examples.MINIMAL).status_code == 201  # writes go on
    storage.dispose()
