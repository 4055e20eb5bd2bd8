"""Backup and restore (``flask backup create`` / ``backup restore``) on SQLite and PostgreSQL.

A backup taken while clients store records restores, into a fresh database, every record whose
201 arrived before the backup started, in a database that passes its checks and that the
service serves at once. The commands refuse what would lose or corrupt data: an existing
destination, a missing or foreign source, a database in use or holding data (without
--replace), a backup of the other kind of database; a restore never leaves an old write-ahead
log beside the new file. pg_dump and pg_restore get the password from the environment only.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from service import create_app, examples
from service.backup import (
    BackupError,
    create_backup,
    find_postgres_program,
    libpq_environment,
    store_kind,
)
from service.backup import postgres as backup_module
from service.state import state
from service.storage import Storage
from service.storage.inline_plans import holds_its_plan
from service.storage.tables import metadata, records
from tests.conftest import REPO_ROOT, app_config, scratch_postgres_database, tenant_factory

BACKENDS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]
# Stored assessments acknowledged before the backup starts (so that it copies some data).
WARM_UP_WRITES = 60


@pytest.fixture(params=BACKENDS)
def new_database(request, tmp_path):
    """A factory of new, empty databases of the parametrised kind; their URLs."""
    server = request.getfixturevalue("postgres_database") if request.param != "sqlite" else None
    with contextlib.ExitStack() as stack:

        def make(name: str) -> str:
            if server is None:
                return f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
            return stack.enter_context(scratch_postgres_database(server, f"popliteal_{name}"))

        yield make


@pytest.fixture
def sqlite_app(tmp_path):
    """The app on a migrated SQLite file of its own, with a tenant that stored two reports."""
    app = create_app(app_config(DATABASE_URL=f"sqlite:///{tmp_path / 'live.sqlite3'}"))
    storage = state(app).storage
    storage.upgrade()
    tenant = tenant_factory(app)("backup-tests")
    for _ in range(2):
        assert (
            tenant.client.post("/v1/assess", json=examples.SELF_CARE_TECHNIQUE).status_code == 201
        )
    yield app
    storage.dispose()


class Writer:
    """Threads storing assessments through the app (POST /v1/assess, 201) until stopped, each
    with a client of its own; every acknowledged id with the time its answer arrived."""

    def __init__(self, app, key: str, threads: int = 2) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.acknowledged: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self._threads = []
        for _ in range(threads):
            client = app.test_client()
            client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
            self._threads.append(threading.Thread(target=self._write, args=(client,)))

    def _write(self, client) -> None:
        while not self._stop.is_set():
            try:
                response = client.post(
                    "/v1/assess", json={**examples.SELF_CARE_TECHNIQUE, "store": True}
                )
            except Exception as error:  # recorded, and the test fails on it
                self.failures.append(repr(error))
                continue
            answered = time.monotonic()
            with self._lock:
                if response.status_code == 201:
                    self.acknowledged.append((answered, response.get_json()["id"]))
                else:
                    self.failures.append(f"{response.status_code} {response.get_data(True)}")

    def __enter__(self) -> Writer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count:
            assert not self.failures, self.failures[:3]
            assert time.monotonic() < deadline, f"only {self.count} of {count} writes in time"
            time.sleep(0.01)

    def answered_before(self, moment: float) -> set[str]:
        with self._lock:
            return {record_id for answered, record_id in self.acknowledged if answered < moment}

    def answered_between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for answered, _ in self.acknowledged if start <= answered <= end)


def flask_command(*arguments: str, database: str) -> subprocess.CompletedProcess:
    """The command as an operator runs it: its own process, DATABASE_URL from the environment."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "service.wsgi", *arguments],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": database, "POPLITEAL_CONFIG": "production"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def record_ids(url: str) -> set[str]:
    """The ids of the records stored: each row's, and each plan an assessment's row holds."""
    storage = Storage(url)
    try:
        with storage.autocommit() as connection:
            rows = connection.execute(sa.select(records.c.id, records.c.kind, records.c.plan_id))
            return {
                record_id
                for row in rows
                for record_id in (row.id, row.plan_id if holds_its_plan(row) else None)
                if record_id is not None
            }
    finally:
        storage.dispose()


def schema_differences(url: str) -> list:
    storage = Storage(url)
    try:
        with storage.autocommit() as connection:
            return compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        storage.dispose()


def sqlite_file(url: str) -> Path:
    return Path(sa.make_url(url).database)


def integrity(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return [row[0] for row in connection.execute("PRAGMA integrity_check")]


def reported_records(output: str) -> int:
    return int(re.search(r"(\d+) records", output).group(1))


# -- Under load ------------------------------------------------------------------------------


def test_a_backup_taken_during_writes_restores_every_acknowledged_record(new_database, tmp_path):
    source = new_database("backup_source")
    app = create_app(app_config(DATABASE_URL=source))
    storage = state(app).storage
    storage.upgrade()
    tenant = tenant_factory(app)("backup-tests")
    backup = tmp_path / "popliteal.backup"

    with Writer(app, tenant.key) as writer:
        writer.wait_for(WARM_UP_WRITES)
        started = time.monotonic()
        created = flask_command("backup", "create", str(backup), database=source)
        finished = time.monotonic()
        # The writers went on during the backup and go on after it.
        writer.wait_for(writer.count + 10)
    assert created.returncode == 0, created.stderr
    assert writer.failures == []
    before = writer.answered_before(started)
    assert len(before) >= WARM_UP_WRITES
    assert writer.answered_between(started, finished) > 0
    assert "checked" in created.stdout
    assert backup.stat().st_mode & 0o077 == 0  # health data: the owner's only
    stored = record_ids(source)

    target = new_database("backup_restored")
    restored_app = create_app(app_config(DATABASE_URL=target))
    restored = restored_app.test_cli_runner().invoke(args=["backup", "restore", str(backup)])
    assert restored.exit_code == 0, restored.output
    assert "Migrations are current" in restored.output

    found = record_ids(target)
    assert before <= found, f"{len(before - found)} acknowledged records missing"
    assert found <= stored  # nothing the source never held
    assert len(found) == reported_records(created.stdout) == reported_records(restored.output)
    assert schema_differences(target) == []
    if target.startswith("sqlite"):
        assert integrity(sqlite_file(target)) == ["ok"]
    # The service runs on the restored database as it is: same keys, same records.
    restored_storage = state(restored_app).storage
    assert restored_storage.readiness() == {"database": "ok", "migrations": "current"}
    client = restored_app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tenant.key}"
    for record_id in sorted(before)[:5]:
        assert client.get(f"/v1/assessments/{record_id}").status_code == 200
    restored_storage.dispose()
    storage.dispose()


# -- Refusals (SQLite) -----------------------------------------------------------------------


def test_a_backup_never_overwrites_a_file_nor_makes_folders(sqlite_app, tmp_path):
    runner = sqlite_app.test_cli_runner()
    existing = tmp_path / "existing.backup"
    existing.write_bytes(b"an earlier backup")

    refused = runner.invoke(args=["backup", "create", str(existing)])
    assert refused.exit_code == 1
    assert "exists already" in refused.output
    assert existing.read_bytes() == b"an earlier backup"

    missing_folder = runner.invoke(args=["backup", "create", str(tmp_path / "no" / "x.backup")])
    assert missing_folder.exit_code == 1
    assert "does not exist" in missing_folder.output
    assert not (tmp_path / "no").exists()
    # Nothing half-written is left behind.
    assert sorted(path.name for path in tmp_path.iterdir() if ".partial-" in path.name) == []


def test_a_restore_refuses_a_missing_foreign_or_live_source(sqlite_app, tmp_path):
    runner = sqlite_app.test_cli_runner()
    target = sqlite_file(state(sqlite_app).storage.url)
    before = record_ids(f"sqlite:///{target}")

    missing = runner.invoke(args=["backup", "restore", str(tmp_path / "missing.backup")])
    assert missing.exit_code == 1
    assert "No backup file" in missing.output

    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("not a database")
    foreign = runner.invoke(args=["backup", "restore", str(not_a_backup), "--replace"])
    assert foreign.exit_code == 1
    assert "not a backup" in foreign.output

    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(b"SQLite format 3\x00" + bytes(4000))
    unsound = runner.invoke(args=["backup", "restore", str(damaged), "--replace"])
    assert unsound.exit_code == 1
    assert "not a sound SQLite database" in unsound.output

    # A live database (a write-ahead log beside it) is not a backup: a copy of it would miss
    # what the log holds.
    live = tmp_path / "other.sqlite3"
    with contextlib.closing(sqlite3.connect(live)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
        refused = runner.invoke(args=["backup", "restore", str(live), "--replace"])
    assert refused.exit_code == 1
    assert "write-ahead log" in refused.output

    itself = runner.invoke(args=["backup", "restore", str(target), "--replace"])
    assert itself.exit_code == 1
    assert record_ids(f"sqlite:///{target}") == before


def test_a_restore_refuses_a_database_holding_data_or_in_use(sqlite_app, tmp_path):
    runner = sqlite_app.test_cli_runner()
    storage = state(sqlite_app).storage
    backup = tmp_path / "popliteal.backup"
    assert runner.invoke(args=["backup", "create", str(backup)]).exit_code == 0
    tenant = tenant_factory(sqlite_app)("later")
    later = tenant.client.post("/v1/assess", json=examples.SELF_CARE_TECHNIQUE).get_json()["id"]

    holds_data = runner.invoke(args=["backup", "restore", str(backup)])
    assert holds_data.exit_code == 1
    assert "--replace" in holds_data.output
    assert later in record_ids(storage.url)

    # Another process's connection (here another connection of this one: SQLite locks per
    # file either way) keeps the database in use.
    with contextlib.closing(sqlite3.connect(sqlite_file(storage.url))) as connection:
        connection.execute("SELECT count(*) FROM records").fetchone()
        in_use = runner.invoke(args=["backup", "restore", str(backup), "--replace"])
    assert in_use.exit_code == 1
    assert "in use" in in_use.output
    assert later in record_ids(storage.url)

    replaced = runner.invoke(args=["backup", "restore", str(backup), "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert later not in record_ids(storage.url)


def test_a_restore_leaves_no_old_write_ahead_log_beside_the_new_file(sqlite_app, tmp_path):
    """A file restored beside an old database's write-ahead log gets that log replayed into it
    on the next open, and is corrupt (the issue's third failure). Here the damaged database
    was moved aside and its log, full of pages, stayed behind as a crash leaves it."""
    runner = sqlite_app.test_cli_runner()
    storage = state(sqlite_app).storage
    backup = tmp_path / "popliteal.backup"
    assert runner.invoke(args=["backup", "create", str(backup)]).exit_code == 0
    in_backup = record_ids(storage.url)
    storage.dispose()

    database = sqlite_file(storage.url)
    wal = Path(f"{database}-wal")
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_autocheckpoint=0")
        connection.execute("CREATE TABLE filler (x BLOB)")
        for _ in range(200):
            connection.execute("INSERT INTO filler VALUES (randomblob(4000))")
        connection.commit()
        stale = wal.read_bytes()
    assert len(stale) > 100_000
    database.rename(tmp_path / "damaged.sqlite3")
    wal.write_bytes(stale)

    restored = runner.invoke(args=["backup", "restore", str(backup)])
    assert restored.exit_code == 0, restored.output
    assert integrity(database) == ["ok"]
    assert record_ids(storage.url) == in_backup
    with contextlib.closing(sqlite3.connect(database)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "filler" not in tables
    assert not wal.exists()  # the service's connections closed: nothing left to replay


def test_a_restore_says_when_the_migrations_are_behind(tmp_path):
    old = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    storage = Storage(old)
    storage.upgrade("0004")
    storage.dispose()
    backup = tmp_path / "old.backup"
    runner = create_app(app_config(DATABASE_URL=old)).test_cli_runner()
    assert runner.invoke(args=["backup", "create", str(backup)]).exit_code == 0

    app = create_app(app_config(DATABASE_URL=f"sqlite:///{tmp_path / 'new.sqlite3'}"))
    restored = app.test_cli_runner().invoke(args=["backup", "restore", str(backup)])
    assert restored.exit_code == 0, restored.output
    assert "migrations 0004" in restored.output
    assert "Migrations are behind" in restored.output
    assert "db upgrade" in restored.output


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_postgres_restore_refuses_a_database_in_use_or_holding_data(
    postgres_database, tmp_path, monkeypatch
):
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(scratch_postgres_database(postgres_database, "popliteal_b"))
        target = stack.enter_context(scratch_postgres_database(postgres_database, "popliteal_r"))
        # A password the server (trust authentication) does not need, to follow it.
        source = sa.make_url(source).set(password="not-on-any-command-line")
        source = source.render_as_string(hide_password=False)
        app = create_app(app_config(DATABASE_URL=source))
        state(app).storage.upgrade()
        tenant = tenant_factory(app)("backup-tests")
        assert (
            tenant.client.post("/v1/assess", json=examples.SELF_CARE_TECHNIQUE).status_code == 201
        )
        state(app).storage.dispose()

        calls = []
        run = subprocess.run

        def spy(arguments, **options):
            calls.append((arguments, options.get("env") or {}))
            return run(arguments, **options)

        monkeypatch.setattr(backup_module.subprocess, "run", spy)
        backup = tmp_path / "popliteal.backup"
        created = app.test_cli_runner().invoke(args=["backup", "create", str(backup)])
        assert created.exit_code == 0, created.output
        [dump] = [(arguments, env) for arguments, env in calls if "--format=custom" in arguments]
        assert dump[1]["PGPASSWORD"] == "not-on-any-command-line"
        assert all("not-on-any-command-line" not in " ".join(map(str, a)) for a, _ in calls)

        restored_app = create_app(app_config(DATABASE_URL=target))
        runner = restored_app.test_cli_runner()
        sqlite_backup = tmp_path / "sqlite.backup"
        sqlite_backup.write_bytes(b"SQLite format 3\x00" + bytes(100))
        wrong_kind = runner.invoke(args=["backup", "restore", str(sqlite_backup)])
        assert wrong_kind.exit_code == 1
        assert "of its own kind" in wrong_kind.output

        assert runner.invoke(args=["backup", "restore", str(backup)]).exit_code == 0
        holds_data = runner.invoke(args=["backup", "restore", str(backup)])
        assert holds_data.exit_code == 1
        assert "--replace" in holds_data.output

        engine = sa.create_engine(target, poolclass=sa.NullPool)
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            in_use = runner.invoke(args=["backup", "restore", str(backup), "--replace"])
        engine.dispose()
        assert in_use.exit_code == 1
        assert "stop the service" in in_use.output

        replaced = runner.invoke(args=["backup", "restore", str(backup), "--replace"])
        assert replaced.exit_code == 0, replaced.output
        assert record_ids(target) == record_ids(source)
        assert schema_differences(target) == []
        state(restored_app).storage.dispose()


# -- Settings --------------------------------------------------------------------------------


def test_the_connection_goes_to_pg_dump_through_the_environment(monkeypatch):
    monkeypatch.setenv("PGHOST", "elsewhere.example")  # the URL decides, not the shell
    environment = libpq_environment(
        "postgresql+psycopg://popliteal:s%40cret@db.example:6432/records?sslmode=verify-full"
    )
    assert {name: environment.get(name) for name in ("PGHOST", "PGPORT", "PGUSER")} == {
        "PGHOST": "db.example",
        "PGPORT": "6432",
        "PGUSER": "popliteal",
    }
    assert (environment["PGPASSWORD"], environment["PGDATABASE"]) == ("s@cret", "records")
    assert environment["PGSSLMODE"] == "verify-full"
    socket = libpq_environment("postgresql+psycopg://popliteal@/records?host=/run/postgresql")
    assert socket["PGHOST"] == "/run/postgresql"
    with pytest.raises(BackupError, match="unknown_setting"):
        libpq_environment("postgresql+psycopg://popliteal@db.example/records?unknown_setting=1")


def test_missing_programs_databases_and_other_stores_are_named(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(backup_module, "POSTGRES_PROGRAM_FOLDERS", str(tmp_path / "*" / "bin"))
    with pytest.raises(BackupError, match="pg_dump was not found"):
        find_postgres_program("pg_dump")
    with pytest.raises(BackupError, match="'mysql'"):
        store_kind("mysql://user@db.example/popliteal")
    with pytest.raises(BackupError, match="No SQLite database"):
        create_backup(f"sqlite:///{tmp_path / 'missing.sqlite3'}", tmp_path / "x.backup")
    with pytest.raises(BackupError, match="must name an SQLite file"):
        create_backup("sqlite://", tmp_path / "x.backup")
    assert list(tmp_path.iterdir()) == []
