"""Nothing lost and nothing doubled when a worker dies in the middle of a request.

The service runs under gunicorn (several sync workers) on PostgreSQL and takes a few thousand
concurrent POST /v1/assess, each with an Idempotency-Key of its own. Once a third of them are
answered, workers are killed with SIGKILL in the middle of a request: one whose record was not
committed yet, then one whose record was committed but not yet answered. Clients retry whatever
failed with the same key and the same body, as a careful client does, until they get a 201.

Afterwards every key ended with a 201; the request cut after its commit was answered on retry
as a replay of its record; every id reads back whole (GET returns what the 201 said, and its
plan); and the database holds exactly one assessment and one plan per key sent: nothing a
client was told about is missing, and nothing is stored that no client was told about.

Bounded (FAULT_TIME_LIMIT seconds, default 180) and loopback only. FAULT_REQUESTS (default
2000) and FAULT_CLIENTS (default 32) scale it; `pytest -s` prints the figures.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from rules.model import LEVELS
from service import examples
from service.storage import Storage, plan_id_for
from service.storage.records import ASSESSMENT
from service.storage.tables import records
from tests.conftest import (
    REPO_ROOT,
    free_port,
    gunicorn_command,
    gunicorn_env,
    stop,
    wait_until,
)

pytestmark = [pytest.mark.live, pytest.mark.postgres]

REQUESTS = int(os.environ.get("FAULT_REQUESTS", "2000"))
CLIENTS = int(os.environ.get("FAULT_CLIENTS", "32"))
TIME_LIMIT = float(os.environ.get("FAULT_TIME_LIMIT", "180"))
WORKERS = 4
MAX_ATTEMPTS = 10
# A worker can be caught after writing its answer's last byte but before closing the
# connection: its kill cuts nothing, and another worker is killed instead, this many at most.
MAX_KILLS = 6
# Requests that were not cut but are sent again after the run, to check replays beyond the cut.
EXTRA_REPLAYS = 100
REPORTS = [example["value"] for example in examples.REPORT_EXAMPLES.values()]
SUBJECTS = "https://example.org/test-subjects"
# What a client sees when the worker holding its connection dies.
CUT = (OSError, http.client.HTTPException)
# From linux/netlink.h, linux/sock_diag.h and linux/inet_diag.h.
NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
NLM_F_DUMP = 0x301  # NLM_F_REQUEST | NLM_F_ROOT | NLM_F_MATCH
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_ESTABLISHED = 1


@dataclass
class Outcome:
    """One request as its client saw it, over all its attempts."""

    key: str
    body: dict
    answer: dict | None = None  # the body of the 201
    replayed: bool = False
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    status: int | None = None

    @property
    def cut(self) -> bool:
        return any(not failure.isdigit() for failure in self.failures)


@dataclass
class Client:
    """What the client threads share: the server, the deadline, and the requests in flight by
    the local port of their connection, so that a worker's connection tells which request it
    is serving."""

    port: int
    api_key: str
    deadline: float
    in_flight: dict[int, str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: bytes | None = None, key: str | None = None):
        """One exchange on a connection of its own: sync workers close after every answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        local_port = None
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            connection.connect()
            local_port = connection.sock.getsockname()[1]
            if key is not None:
                self.in_flight[local_port] = key
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            self.in_flight.pop(local_port, None)
            connection.close()

    def post(self, outcome: Outcome) -> None:
        """Send one report until it is stored, with the same key and body on every attempt:
        a cut request may or may not have been stored, and only its key makes a retry safe."""
        payload = json.dumps(outcome.body).encode()
        while outcome.attempts < MAX_ATTEMPTS and time.monotonic() < self.deadline:
            outcome.attempts += 1
            try:
                status, headers, data = self.call("POST", "/v1/assess", payload, outcome.key)
            except CUT as error:
                outcome.failures.append(type(error).__name__)
            else:
                outcome.status = status
                if status == 201:
                    outcome.answer = json.loads(data)
                    outcome.replayed = headers.get("Idempotent-Replayed") == "true"
                    return
                outcome.failures.append(str(status))
                if status < 500:
                    return  # not retried: a client error here is a failure of the test
            time.sleep(0.05 * outcome.attempts)


# -- Killing a worker in the middle of a request ----------------------------------------------


@dataclass
class Kill:
    pid: int
    key: str  # the Idempotency-Key of the request it was serving
    stored: bool  # whether that request's record was committed when the worker died
    answered: int = 0  # requests answered by then


def worker_pids(master: int) -> set[int]:
    return {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def socket_inodes(pid: int) -> set[str]:
    links = (os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir())
    return {link[len("socket:[") : -1] for link in links if link.startswith("socket:[")}


def unanswered_connections(port: int) -> dict[str, int]:
    """The server's accepted connections still open both ways: socket inode, client's port.

    A sync worker shuts its side of a connection (FIN_WAIT) once it has written its answer, so
    an ESTABLISHED server socket holds a request not yet answered, or answered a moment ago.

    Asked of the kernel over NETLINK_SOCK_DIAG (what `ss` uses), which leaves out the other
    states: /proc/net/tcp lists every TIME_WAIT socket too, tens of thousands on a machine busy
    with load tests, and takes hundreds of milliseconds to read then."""
    request = struct.pack("=BBBxI", socket.AF_INET, socket.IPPROTO_TCP, 0, 1 << TCP_ESTABLISHED)
    request += bytes(48)  # struct inet_diag_sockid: no filter on addresses
    header = struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, 0, 0)
    connections = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as netlink:
        netlink.sendall(header + request)
        while True:
            data = netlink.recv(65536)
            offset = 0
            while offset < len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == NLMSG_DONE:
                    return connections
                if kind == NLMSG_ERROR:
                    raise OSError("the kernel refused the socket dump")
                # struct inet_diag_msg, after the 16-byte message header.
                local_port, remote_port = struct.unpack_from("!HH", data, offset + 20)
                (inode,) = struct.unpack_from("=I", data, offset + 84)
                if local_port == port:
                    connections[str(inode)] = remote_port
                offset += (length + 3) & ~3


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of a process; None once it is gone (reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def pause(pid: int) -> bool:
    """Stop a worker and wait until it is stopped; False if it has died meanwhile.

    A worker killed a moment ago can still be listed among the master's children, as a zombie
    or until the master reaps it, so it may vanish between the listing and the signal."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return False
    while (state := process_state(pid)) not in ("T", "t"):  # SIGSTOP acts asynchronously
        if state in (None, "Z", "X"):
            return False
        time.sleep(0.001)
    return True


def kill_a_worker_mid_request(
    master: int, client: Client, is_stored: Callable[[str], bool], stored: bool
) -> Kill | None:
    """SIGKILL a worker serving a request whose record is (or is not yet) committed; None if
    no worker is doing that at this moment.

    Each worker in turn is stopped (SIGSTOP) while it is looked at, so that its request cannot
    move on between the look and the kill: the look (the kernel's sockets, the worker's file
    descriptors, the database) takes milliseconds, as long as a request or longer on a busy
    machine. A worker not killed continues (SIGCONT) after that short pause."""
    for pid in sorted(worker_pids(master)):
        if not pause(pid):
            continue
        kill = None
        try:
            connections = unanswered_connections(client.port)
            for inode in socket_inodes(pid) & connections.keys():
                key = client.in_flight.get(connections[inode])
                if key is not None and is_stored(key) == stored:
                    os.kill(pid, signal.SIGKILL)
                    kill = Kill(pid, key, stored)
                    return kill
        finally:
            if kill is None:
                with contextlib.suppress(ProcessLookupError):  # gone: nothing to continue
                    os.kill(pid, signal.SIGCONT)
    return None


def wait_for(condition: Callable[[], bool], deadline: float, what: str) -> None:
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


# -- Checks -----------------------------------------------------------------------------------


def read_back(client: Client, outcome: Outcome) -> None:
    """The record of a 201 reads back as the 201 said, with the report sent, and its plan."""
    record_id = outcome.answer["id"]
    status, _, data = client.call("GET", f"/v1/assessments/{record_id}")
    assert status == 200, data
    record = json.loads(data)
    assert record == outcome.answer
    assert record["report"] == {k: v for k, v in outcome.body.items() if k != "subject"}
    assert record["subject"] == outcome.body["subject"]
    assert record["triage"]["level"] in LEVELS
    status, _, data = client.call("GET", record["links"]["exercise_prescription"])
    assert status == 200, data
    plan = json.loads(data)
    assert plan["assessment_id"] == record_id
    assert plan["links"]["assessment"] == record["links"]["self"]


def replay(client: Client, outcome: Outcome) -> None:
    """Once more with the same key and body: the record the key already has, not a new one."""
    payload = json.dumps(outcome.body).encode()
    status, headers, data = client.call("POST", "/v1/assess", payload, outcome.key)
    assert status == 201, data
    assert headers.get("Idempotent-Replayed") == "true"
    assert json.loads(data) == outcome.answer


def test_a_worker_killed_mid_request_loses_nothing_and_doubles_nothing(postgres_database):
    deadline = time.monotonic() + TIME_LIMIT
    storage = Storage(postgres_database)
    storage.upgrade()
    api_key, _ = storage.keys.create(f"faults-{uuid.uuid4().hex[:8]}", label="fault test")
    tenant_id = storage.keys.authenticate(api_key).tenant_id
    storage.dispose()
    # Every body differs (its subject), so that a record can only be the answer to one request.
    outcomes = [
        Outcome(
            key=str(uuid.uuid4()),
            body={**REPORTS[n % len(REPORTS)], "subject": {"system": SUBJECTS, "value": str(n)}},
        )
        for n in range(REQUESTS)
    ]
    by_key = {outcome.key: outcome for outcome in outcomes}

    engine = sa.create_engine(postgres_database)

    def is_stored(key: str) -> bool:
        query = sa.select(records.c.id).where(
            records.c.tenant_id == tenant_id, records.c.idempotency_key == key
        )
        with engine.connect() as connection:
            return connection.execute(query).first() is not None

    port = free_port()
    server = subprocess.Popen(
        gunicorn_command(port, workers=WORKERS),
        cwd=REPO_ROOT,
        env=gunicorn_env(DATABASE_URL=postgres_database, RATELIMIT_ENABLED="false"),
    )
    client = Client(port, api_key, deadline)
    pool = ThreadPoolExecutor(max_workers=CLIENTS)
    try:
        wait_until(f"http://127.0.0.1:{port}/readyz", server)
        # Ready as soon as one worker answers; the others are still booting.
        wait_for(lambda: len(worker_pids(server.pid)) == WORKERS, deadline, "every worker")

        started = time.monotonic()
        futures = [pool.submit(client.post, outcome) for outcome in outcomes]

        def answered() -> int:
            return sum(future.done() for future in futures)

        wait_for(lambda: answered() >= REQUESTS // 3, deadline, "a third of the answers")
        # Kill a worker before its request's commit, then one after it (the retry must be a
        # replay). Each kill counts once its client saw the connection cut.
        kills: list[Kill] = []
        for stored in (False, True):
            while len(kills) < MAX_KILLS and answered() < REQUESTS:
                assert time.monotonic() < deadline, "timed out killing workers"
                kill = kill_a_worker_mid_request(server.pid, client, is_stored, stored)
                if kill is None:
                    time.sleep(0.002)  # no worker at that point of a request now: look again
                    continue
                kill.answered = answered()
                kills.append(kill)
                cut_by = time.monotonic() + 1  # its client notices at once: the socket closes
                while time.monotonic() < cut_by and not by_key[kill.key].cut:
                    time.sleep(0.01)
                if by_key[kill.key].cut:
                    break
        _, unfinished = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        assert not unfinished, f"{len(unfinished)} requests still unanswered at the time limit"
        for future in futures:
            future.result()  # an error in a client thread fails the test here
        elapsed = time.monotonic() - started

        # The killed workers are gone, and gunicorn replaced them.
        killed = {kill.pid for kill in kills}
        wait_for(
            lambda: killed.isdisjoint(pids := worker_pids(server.pid)) and len(pids) == WORKERS,
            deadline,
            "gunicorn to replace the killed workers",
        )

        cut = [outcome for outcome in outcomes if outcome.cut]
        failures = Counter(failure for outcome in outcomes for failure in outcome.failures)
        print(
            f"\nfault test: {REQUESTS} requests from {CLIENTS} clients to {WORKERS} workers in "
            f"{elapsed:.1f} s ({REQUESTS / elapsed:.0f}/s); {len(kills)} SIGKILL(s) "
            "mid-request: "
            + ", ".join(
                f"pid {kill.pid} at answer {kill.answered}, "
                f"{'after' if kill.stored else 'before'} its commit, "
                f"{'cut' if by_key[kill.key].cut else 'nothing cut'}"
                + (", replayed" if by_key[kill.key].replayed else "")
                for kill in kills
            )
            + f"; {sum(failures.values())} failed attempts ({dict(failures) or 'none'}) in "
            f"{len(cut)} requests; {sum(o.attempts for o in outcomes) - REQUESTS} retries; "
            f"{sum(o.replayed for o in outcomes)} answered as replays"
        )

        # A request was cut before its commit and one after it; the latter got its record back.
        assert [kill.stored for kill in kills if by_key[kill.key].cut] == [False, True], kills
        assert all(by_key[kill.key].replayed for kill in kills if kill.stored), (
            "a request cut after its commit was not answered with its record on retry"
        )
        # Every key ended with a 201, after failures that were only cuts and 5xx retried.
        assert [outcome for outcome in outcomes if outcome.status != 201] == []
        assert not [failure for failure in failures if failure.isdigit() and int(failure) < 500]
        assert "500" not in failures, "an internal error under the kills"

        # Every 201 reads back whole, and a request repeated is answered as a replay.
        checks = [pool.submit(read_back, client, outcome) for outcome in outcomes]
        again = cut + [outcome for outcome in outcomes if not outcome.cut][:EXTRA_REPLAYS]
        checks += [pool.submit(replay, client, outcome) for outcome in again]
        for check in checks:
            check.result(timeout=max(1.0, deadline - time.monotonic()))

        # In the database: exactly one assessment per key sent, its row holding its plan, and
        # nothing else.
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    records.c.id,
                    records.c.kind,
                    records.c.idempotency_key,
                    records.c.plan_id,
                ).where(records.c.tenant_id == tenant_id)
            ).all()
        keys = Counter(row.idempotency_key for row in rows)
        assert {row.kind for row in rows} == {ASSESSMENT}
        assert len(rows) == REQUESTS
        assert keys.most_common(1)[0][1] == 1, "a key with two records"
        assert set(keys) == set(by_key)
        assert {row.id for row in rows} == {o.answer["id"] for o in outcomes}
        assert all(row.plan_id == plan_id_for(row.id) for row in rows)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        stop(server)
        engine.dispose()
