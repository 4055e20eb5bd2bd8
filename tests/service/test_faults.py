"""Nothing lost when a worker dies: the service under gunicorn (several workers, PostgreSQL)
takes a few thousand concurrent POST /v1/assess, one worker is killed with SIGKILL in the
middle, and clients retry what failed with the same Idempotency-Key, as a careful client does.

Afterwards every key ended with a 201 whose record reads back whole, no key got two different
records, and the database holds exactly one assessment and one plan per key: nothing a client
was told about is missing, and nothing is stored that a client was not told about once.

Bounded and loopback only. FAULT_REQUESTS (default 2000) and FAULT_CLIENTS (default 32) scale
it; `pytest -s` shows the figures.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from service import examples
from service.storage import Storage
from service.storage.tables import records
from tests.conftest import REPO_ROOT, free_port, gunicorn_command, stop, wait_until

pytestmark = [pytest.mark.live, pytest.mark.postgres]

REQUESTS = int(os.environ.get("FAULT_REQUESTS", "2000"))
CLIENTS = int(os.environ.get("FAULT_CLIENTS", "32"))
WORKERS = 4
MAX_ATTEMPTS = 20
MAX_KILLS = 5
REPORTS = [example["value"] for example in examples.REPORT_EXAMPLES.values()]
SYSTEM = "https://fault-test.example/subjects"


@dataclass
class Outcome:
    key: str
    body: dict
    ids: set[str] = field(default_factory=set)
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    replays: int = 0
    status: int | None = None


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections to the server's port, from /proc/net/tcp."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
            inodes.add(fields[9])
    return inodes


def kill_a_busy_worker(workers: list[int], port: int, victim) -> None:
    """Run in a process of its own, away from the clients' threads and their GIL, so that a
    worker seen serving a request is killed microseconds later, while still serving it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid = busy_worker(workers, port)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            victim.value = pid
            return


def busy_worker(workers: list[int], port: int) -> int | None:
    """A worker holding an accepted client connection, that is, serving a request now."""
    established = _established_inodes(port)
    for pid in workers:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        if any(link[8:-1] in established for link in links if link.startswith("socket:[")):
            return pid
    return None


def post(port: int, key: str, outcome: Outcome, connections: threading.local) -> None:
    """Send one report until it is stored, reusing its key and body on every retry."""
    payload = json.dumps(outcome.body).encode()
    while outcome.attempts < MAX_ATTEMPTS:
        outcome.attempts += 1
        connection = getattr(connections, "http", None)
        if connection is None:
            connection = connections.http = http.client.HTTPConnection(
                "127.0.0.1", port, timeout=30
            )
        try:
            connection.request(
                "POST",
                "/v1/assess",
                body=payload,
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": outcome.key,
                },
            )
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            # The worker holding this connection died: a new connection, the same request.
            outcome.failures.append(type(error).__name__)
            connection.close()
            connections.http = None
            time.sleep(0.05)
            continue
        outcome.status = response.status
        if response.status == 201:
            outcome.ids.add(json.loads(data)["id"])
            outcome.replays += response.getheader("Idempotent-Replayed") == "true"
            return
        outcome.failures.append(str(response.status))
        if response.status < 500:
            return  # a client error is not retried: the test fails on it below
        time.sleep(0.05)


def test_a_worker_killed_mid_run_loses_nothing_and_duplicates_nothing(postgres_database):
    storage = Storage(postgres_database)
    storage.upgrade()
    key, _ = storage.keys.create(f"faults-{uuid.uuid4().hex[:8]}", label="fault test")
    tenant_id = storage.keys.authenticate(key).tenant_id
    storage.dispose()

    port = free_port()
    server = subprocess.Popen(
        gunicorn_command(port, workers=WORKERS),
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "POPLITEAL_CONFIG": "production",
            "DATABASE_URL": postgres_database,
            "RATELIMIT_ENABLED": "false",
        },
    )
    outcomes = [
        Outcome(
            key=str(uuid.uuid4()),
            body={**REPORTS[n % len(REPORTS)], "subject": {"system": SYSTEM, "value": f"s-{n}"}},
        )
        for n in range(REQUESTS)
    ]
    connections = threading.local()
    try:
        wait_until(f"http://127.0.0.1:{port}/readyz", server)
        before = set(worker_pids(server.pid))
        assert len(before) == WORKERS
        # Forked (the child only reads /proc and sends a signal: no lock of the parent's).
        context = multiprocessing.get_context("fork")
        victims: list[int] = []
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            futures = [pool.submit(post, port, key, outcome, connections) for outcome in outcomes]
            # Once a third of the requests are done, kill a worker caught serving a request.
            # The catch is a race (the request may finish first), so kill again, a new worker
            # each time, until a client has seen its request cut, at most MAX_KILLS times.
            while sum(future.done() for future in futures) < REQUESTS // 3:
                time.sleep(0.01)
            in_flight = sum(not future.done() for future in futures)
            while len(victims) < MAX_KILLS and not any(o.failures for o in outcomes):
                if all(future.done() for future in futures):
                    break
                found = context.Value("i", 0)
                killer = context.Process(
                    target=kill_a_busy_worker, args=(worker_pids(server.pid), port, found)
                )
                killer.start()
                killer.join(timeout=60)
                assert found.value, "no worker was seen serving a request"
                victims.append(found.value)
                time.sleep(0.5)  # the cut request's client notices, or the race was lost
            for future in futures:
                future.result(timeout=180)
        elapsed = time.monotonic() - started
        # gunicorn replaced the dead workers.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(set(worker_pids(server.pid))) < WORKERS:
            time.sleep(0.1)
        after = set(worker_pids(server.pid))

        failures = [failure for outcome in outcomes for failure in outcome.failures]
        replays = sum(outcome.replays for outcome in outcomes)
        print(
            f"\nfault test: {REQUESTS} requests from {CLIENTS} clients in {elapsed:.1f} s; "
            f"{len(victims)} worker(s) killed with SIGKILL, the first with {in_flight} "
            "requests unfinished; "
            f"{len(failures)} failed attempts ({', '.join(sorted(set(failures))) or 'none'}), "
            f"all retried with their key; {replays} answered as replays"
        )

        assert not after & set(victims)
        assert len(after) == WORKERS
        # A kill did cut a request in flight: the retry path below was exercised.
        assert failures, "no request was cut by the kills"
        # Every key ended with a 201, and with one id however many times it was sent.
        unfinished = [outcome for outcome in outcomes if outcome.status != 201]
        assert unfinished == [], unfinished[:3]
        assert [outcome for outcome in outcomes if len(outcome.ids) != 1] == []
        assert not any(failure.startswith("4") for failure in failures)
        assert "500" not in failures

        # Every 201 reads back whole: the report that was sent, a triage, and its plan.
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {key}"}
        for outcome in outcomes:
            (record_id,) = outcome.ids
            client.request("GET", f"/v1/assessments/{record_id}", headers=headers)
            response = client.getresponse()
            record = json.loads(response.read())
            assert response.status == 200, record
            sent = {k: v for k, v in outcome.body.items() if k != "subject"}
            assert record["report"] == sent
            assert record["subject"] == outcome.body["subject"]
            assert record["triage"]["level"] in (
                "emergency",
                "urgent",
                "see_professional",
                "self_care",
            )
            client.request("GET", record["links"]["exercise_prescription"], headers=headers)
            plan = client.getresponse()
            assert plan.status == 200
            assert json.loads(plan.read())["assessment_id"] == record_id
        client.close()

        # In the database: exactly one assessment and one plan per key, and nothing else.
        engine = sa.create_engine(postgres_database)
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(records.c.kind, records.c.idempotency_key, records.c.id).where(
                    records.c.tenant_id == tenant_id
                )
            ).all()
        engine.dispose()
        assessments = [row for row in rows if row.kind == "assessment"]
        plans = [row for row in rows if row.kind == "exercise_prescription"]
        sent_keys = {outcome.key for outcome in outcomes}
        assert len(assessments) == len(plans) == REQUESTS
        assert {row.idempotency_key for row in assessments} == sent_keys
        assert {row.id for row in assessments} == {next(iter(o.ids)) for o in outcomes}
    finally:
        stop(server)
