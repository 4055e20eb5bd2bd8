"""Disk size of a stored assessment, on SQLite and on PostgreSQL, indexes included.

    .venv/bin/python bench/record_size.py [--count 2000] [--postgres-url URL] [--sqlite-only]

Stores --count assessments through POST /v1/assess (the app in-process; each request stores the
assessment's row, which holds its plan, as every stored assessment does), cycling through the
reports of the clinical cases in tests/rules/cases (every kind of answer, from self-care to
emergency). Then
prints, per database, the bytes the ``records`` table grew by per assessment, split into the
table (with PostgreSQL's TOAST) and its indexes, the stored answer's median and largest size,
and the stored request's median size:
- SQLite: the pages of ``records`` and of each of its indexes (the dbstat table), after a
  checkpoint, on a new database file, before and after;
- PostgreSQL: pg_table_size and pg_indexes_size of ``records`` on a new database (created on
  the server at --postgres-url or BENCH_POSTGRES_URL, dropped at the end), before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.run import BenchDatabase  # noqa: E402
from service import create_app  # noqa: E402
from service.config import TestingConfig  # noqa: E402
from service.state import state  # noqa: E402
from service.storage import Storage  # noqa: E402
from tests.rules.clinical_cases import case_reports  # noqa: E402

POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def table_and_index_bytes(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            rows = connection.exec_driver_sql(
                "SELECT m.type, SUM(d.pgsize) FROM dbstat d JOIN sqlite_master m"
                " ON m.name = d.name WHERE m.tbl_name = 'records' GROUP BY m.type"
            ).all()
            sizes = dict(rows)
            return sizes.get("table", 0), sizes.get("index", 0)
        row = connection.exec_driver_sql(
            "SELECT pg_table_size('records'), pg_indexes_size('records')"
        ).one()
        return row[0], row[1]


def store_all(url: str, reports: list[dict], count: int) -> tuple[list[int], list[int]]:
    """Store count assessments; the sizes of the stored answers and of the stored requests."""
    app = create_app(type("SizeConfig", (TestingConfig,), {"DATABASE_URL": url}))
    storage = state(app).storage
    key, _ = storage.keys.create("record-size", label="bench")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    for index in range(count):
        response = client.post("/v1/assess", json=reports[index % len(reports)], headers=headers)
        if response.status_code != 201:
            raise SystemExit(f"POST /v1/assess answered {response.status_code}: {response.text}")
    with storage.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT length(answer), length(request_packed) FROM records WHERE kind = 'assessment'"
        ).all()
    answer_sizes = [row[0] for row in rows]
    request_sizes = [row[1] for row in rows]
    storage.dispose()
    return answer_sizes, request_sizes


def measure(url: str, reports: list[dict], count: int) -> dict[str, float]:
    storage = Storage(url)
    storage.upgrade()
    before = table_and_index_bytes(storage.engine)
    storage.dispose()
    answer_sizes, request_sizes = store_all(url, reports, count)
    storage = Storage(url)
    after = table_and_index_bytes(storage.engine)
    storage.dispose()
    table, indexes = ((a - b) / count for a, b in zip(after, before, strict=True))
    return {
        "table": table,
        "indexes": indexes,
        "total": table + indexes,
        "answer_median": statistics.median(answer_sizes),
        "answer_max": max(answer_sizes),
        "request_median": statistics.median(request_sizes),
    }


def report(label: str, sizes: dict[str, float]) -> None:
    print(
        f"{label:<11} {sizes['total']:>8,.0f} B per assessment"
        f" (table {sizes['table']:,.0f}, indexes {sizes['indexes']:,.0f});"
        f" stored answer median {sizes['answer_median']:,.0f} B, largest {sizes['answer_max']:,} B;"
        f" stored request median {sizes['request_median']:,.0f} B"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    reports = case_reports()
    print(f"{args.count} stored assessments, cycling through {len(reports)} case reports")
    with tempfile.TemporaryDirectory() as folder:
        report("SQLite", measure(f"sqlite:///{folder}/size.sqlite3", reports, args.count))
    if not args.sqlite_only:
        with BenchDatabase(args.postgres_url) as database:
            report("PostgreSQL", measure(database.url, reports, args.count))


if __name__ == "__main__":
    main()
