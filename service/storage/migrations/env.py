"""Alembic environment: migrations run on the engine the service built (``popliteal db
upgrade``) or, from the alembic command line, on DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context

from service.storage.database import create_storage_engine
from service.storage.tables import metadata

config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = create_storage_engine(os.environ["DATABASE_URL"])
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            # SQLite cannot ALTER most things in place: batch mode rebuilds the table.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run them online.")
run_migrations_online()
