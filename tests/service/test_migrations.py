"""Migrations on SQLite and PostgreSQL: they build exactly the tables the code declares, and go
down and up again cleanly."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from service.storage import Storage
from service.storage.tables import metadata
from tests.conftest import scratch_postgres_database

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
    with storage.reading() as connection:
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
    with storage.reading() as connection:
        found = compare_metadata(MigrationContext.configure(connection), extra)
    assert [(diff[0], diff[3].name) for diff in found] == [("add_column", "undeclared")]
    storage.dispose()
