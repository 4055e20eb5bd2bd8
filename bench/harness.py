"""Load-and-fault harness: does the service hold under saturation, lost workers, reloads, a long
run, a database restart and slow clients, without losing a record it said it kept?

    ./scripts/harness            # the full run (about 8 minutes)
    ./scripts/harness --short    # the same checks in about a minute (CI runs this)
    ./scripts/harness --only saturation,soak

Everything runs on this machine, on loopback, and stops when the run ends:
- a PostgreSQL server of its own (initdb into a temporary folder, on a free port; as the
  ``postgres`` user when run as root), migrated, with one API key;
- the service under gunicorn with the repository's gunicorn.conf.py (its default worker count
  unless --workers), rate limits off: the harness measures the service, not a tenant's budget;
- a load generator in this process: one thread per connection, each POSTing symptom reports to
  /v1/assess (stored) with an Idempotency-Key, and retrying the same key after a cut
  connection or a 503 (honouring Retry-After), as a careful client would;
- for the slow-clients phase, nginx (``nginx``, also looked for in /usr/sbin) with the
  repository's configuration; without it the phase is skipped, and fails in CI (CI=true).

Phases (each prints its figures; the run exits 1 if any check fails):
1. saturation: 16, then 32, then 64 connections, a third of the time each: zero 5xx, latency
   percentiles and throughput per step.
2. worker loss, reload and stop: SIGKILL one worker a third of the way in, SIGHUP the master at
   two thirds: the error rate (attempts that needed a retry), and all workers replaced on
   reload. At the end, still under load, SIGTERM the master (its drain, then gunicorn's stop)
   and start a new one on the same port, as a restart does: no connection may be reset (what
   was queued is answered, 503 with Retry-After at worst), and the old master must exit with
   0 within STOP_GRACE_S.
3. soak: steady load; the resident memory (RSS) of every worker after warm-up and at the end
   must grow by less than 10 %.
4. PostgreSQL restart: the server is stopped and started again mid-run: /readyz must drop to
   503 and come back to 200, no answer may be a 500.
5. slow clients: the repository's nginx (deploy/nginx/nginx.conf, only its listen ports,
   upstream address and /tmp paths changed) in front of the service; 200 connections send a
   request's header a byte a second and never finish it, while one normal client's requests
   through nginx must keep their latency (every one answered, p99 under
   max(10 x its baseline p99, 0.5 s)). For contrast, a figure only: the same kind of clients
   sent straight at gunicorn for a few seconds hold every sync worker.
6. partition (bench/partition.py): the service reaches PostgreSQL through a veth pair into a
   network namespace, and the link is cut for the phase's time (packets dropped, nothing closed
   or refused) under steady writes and red-flag screens: /healthz must answer 200 within 1 s,
   screens with a known key 200, writes 503 with Retry-After (p99 under 8 s), no worker killed;
   once the link is back, writes are stored again within 10 s. Needs root (network
   namespaces); without, the phase is skipped, and fails in CI (CI=true).
After each phase, the database is read directly: every record the service answered 201 for
must be there ("lost" is the number that is not), and no Idempotency-Key may have made two.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service import examples  # noqa: E402 - the repository root is put on the path above
from service.storage import Storage  # noqa: E402
from service.storage.tables import records  # noqa: E402

# Thresholds the issue sets.
MAX_RSS_GROWTH = 0.10
STEPS = (16, 32, 64)
# How long the database stays down at most, waiting for /readyz to report it (it checks the
# database on each call, so it notices at its next poll, 0.1 s apart).
OUTAGE_NOTICE_LIMIT_S = 10.0

FULL = {
    "saturation": 60.0,
    "faults": 30.0,
    "soak": 300.0,
    "database": 30.0,
    "slow_clients": 60.0,
    "partition": 30.0,
}
SHORT = {
    "saturation": 9.0,
    "faults": 9.0,
    "soak": 24.0,
    "database": 12.0,
    "slow_clients": 10.0,
    "partition": 10.0,
}
# How long a client keeps retrying one request after the load stops, so that every key's fate
# is known before the database is read.
SETTLE_SECONDS = 30.0
# One attempt's socket timeout.
ATTEMPT_SECONDS = 10.0


# -- The pieces: PostgreSQL, gunicorn -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin() -> Path:
    """Where PostgreSQL's server programs (initdb, pg_ctl) are."""
    found = os.environ.get("HARNESS_POSTGRES_BIN", "")
    if not found:
        try:
            found = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            found = ""
    if not found or not (Path(found) / "initdb").exists():
        raise SystemExit(
            "harness: PostgreSQL's server programs (initdb, pg_ctl) were not found; install "
            "PostgreSQL or set HARNESS_POSTGRES_BIN to their folder"
        )
    return Path(found)


class Postgres:
    """A PostgreSQL server of the harness's own, in a temporary folder."""

    def __init__(self, folder: Path, bin_folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.bin = bin_folder
        self._as_postgres = os.geteuid() == 0  # PostgreSQL refuses to run as root
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.folder.chmod(0o755)
        self.data.mkdir()
        if self._as_postgres:
            shutil.chown(self.data, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.data / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: no checkpoint, recovery from the WAL at the next start."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")


DEPLOYED_DRAIN_SECONDS = 5  # gunicorn.conf.py's default for POPLITEAL_DRAIN_SECONDS


class Gunicorn:
    """The service, as the image starts it: gunicorn with gunicorn.conf.py."""

    def __init__(
        self,
        folder: Path,
        database_url: str,
        workers: int | None,
        port: int | None = None,
        drain_seconds: float = 0,
    ) -> None:
        self.port = port or free_port()  # a port: a restart, after a SIGTERM
        self.metrics_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"gunicorn-{self.port}{'-restarted' if port else ''}.log"
        environment = {
            key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"
        }
        environment.update(
            POPLITEAL_CONFIG="production",
            DATABASE_URL=database_url,
            RATELIMIT_ENABLED="false",
            HOST="127.0.0.1",
            PORT=str(self.port),
            POPLITEAL_METRICS_PORT=str(self.metrics_port),
            # The SIGTERM drain is measured where a phase sends SIGTERM under load; elsewhere it
            # would only add its seconds to every stop.
            POPLITEAL_DRAIN_SECONDS=str(drain_seconds),
        )
        if workers:
            environment["WEB_CONCURRENCY"] = str(workers)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
                 "service.wsgi:app"],
                cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.wait_ready()

    def wait_ready(self, seconds: float = 60) -> None:
        """Ready, with every worker booted (the same worker set for a whole second)."""
        deadline = time.monotonic() + seconds
        seen, since = None, time.monotonic()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log}")
            workers = set(self.workers())
            if workers != seen:
                seen, since = workers, time.monotonic()
            elif (
                workers
                and time.monotonic() - since >= 1
                and status_of(f"{self.base}/readyz") == 200
            ):
                self.worker_count = len(workers)
                return
            time.sleep(0.1)
        raise RuntimeError(f"the service was not ready within {seconds} s; see {self.log}")

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def wait_for_workers(self, count: int, gone: set[int], seconds: float = 30) -> list[int]:
        """The workers, once there are ``count`` of them and none of ``gone`` is among them."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pids = self.workers()
            if len(pids) == count and not gone & set(pids):
                return pids
            time.sleep(0.05)
        return self.workers()

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as response:
            return response.read().decode()

    def logged_errors(self) -> int:
        """Lines gunicorn or the service logged at ERROR or worse."""
        count = 0
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                if json.loads(line).get("level") in ("ERROR", "CRITICAL"):
                    count += 1
        return count

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def status_of(url: str, timeout: float = 2) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def private_kib(pid: int) -> int | None:
    """Private_Clean + Private_Dirty (the worker's unique set), from smaps_rollup."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines if line.startswith("Private_"))
    return sum(int(value.split()[0]) for value in fields.values())


# -- The load ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one connection's client saw."""

    attempts: int = 0
    statuses: Counter = field(default_factory=Counter)
    cuts: Counter = field(default_factory=Counter)  # connection errors, by exception type
    latencies: list[float] = field(default_factory=list)  # seconds, answered attempts
    committed: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> record id
    unresolved: int = 0  # keys given up on (no definite answer within SETTLE_SECONDS)
    sent: set[str] = field(default_factory=set)  # every Idempotency-Key tried
    crashes: list[str] = field(default_factory=list)  # a client thread that died, and why

    def merge(self, other: Tally) -> None:
        self.sent |= other.sent
        self.crashes += other.crashes
        self.attempts += other.attempts
        self.statuses.update(other.statuses)
        self.cuts.update(other.cuts)
        self.latencies.extend(other.latencies)
        self.committed.update(other.committed)
        self.unresolved += other.unresolved


def report_bodies() -> list[bytes]:
    """Every documented example report, each stored under a pseudonymous subject."""
    bodies = []
    for n, example in enumerate(examples.REPORT_EXAMPLES.values()):
        report = dict(example["value"])
        report["subject"] = {"system": "urn:popliteal:harness", "value": f"subject-{n}"}
        bodies.append(json.dumps(report).encode())
    return bodies


class Load:
    """``connections`` clients POSTing reports until stopped; each resolves its last request."""

    def __init__(self, server: Gunicorn, api_key: str, bodies: list[bytes]) -> None:
        self.server = server
        self.api_key = api_key
        self.bodies = bodies
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.tallies: list[Tally] = []
        self._counter = itertools.count()
        self.stop_deadline = float("inf")

    def add_connections(self, count: int) -> list[Tally]:
        added = []
        for _ in range(count):
            tally = Tally()
            thread = threading.Thread(target=self._client, args=(tally,), daemon=True)
            self.tallies.append(tally)
            self.threads.append(thread)
            added.append(tally)
            thread.start()
        return added

    def stop(self) -> Tally:
        self.stop_deadline = time.monotonic() + SETTLE_SECONDS
        self.stopping.set()
        for thread in self.threads:
            thread.join(max(0.0, self.stop_deadline - time.monotonic()) + ATTEMPT_SECONDS + 5)
        total = Tally()
        for tally in self.tallies:
            total.merge(tally)
        total.crashes += [
            "a client was still running after the settle time"
            for thread in self.threads
            if thread.is_alive()
        ]
        return total

    def _client(self, tally: Tally) -> None:
        try:
            self._requests(tally)
        except Exception as error:  # recorded and failed on, never silently lost
            tally.crashes.append(f"{type(error).__name__}: {error}")

    def _requests(self, tally: Tally) -> None:
        host, port = "127.0.0.1", self.server.port
        while not self.stopping.is_set():
            body = self.bodies[next(self._counter) % len(self.bodies)]
            key = str(uuid.uuid4())
            headers = {
                "Authorization": f"Bearer {self.api_key}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            }
            tally.sent.add(key)
            while True:
                if self.stopping.is_set() and time.monotonic() > self.stop_deadline:
                    tally.unresolved += 1
                    break
                tally.attempts += 1
                started = time.perf_counter()
                try:
                    connection = http.client.HTTPConnection(host, port, timeout=ATTEMPT_SECONDS)
                    connection.request("POST", "/v1/assess", body, headers)
                    response = connection.getresponse()
                    payload = response.read()
                    connection.close()
                except (OSError, http.client.HTTPException) as error:
                    tally.cuts[type(error).__name__] += 1
                    time.sleep(0.05)
                    continue
                tally.latencies.append(time.perf_counter() - started)
                tally.statuses[response.status] += 1
                if response.status == 201:
                    tally.committed[key] = json.loads(payload)["id"]
                    break
                if response.status == 503:
                    retry_after = float(response.getheader("Retry-After") or 1)
                    time.sleep(min(retry_after, 1.0))
                    continue
                if response.status >= 500:
                    time.sleep(0.05)
                    continue  # counted above; the same key is tried again
                break  # a 4xx: the harness's own mistake, counted and reported


# -- Checks and figures ------------------------------------------------------------------------


@dataclass
class Verdict:
    phase: str
    figures: dict
    failures: list[str]


def percentiles(latencies: list[float]) -> dict[str, float]:
    if len(latencies) < 2:
        return {}
    ordered = sorted(latencies)
    cuts = statistics.quantiles(ordered, n=1000, method="inclusive")
    return {
        "p50_ms": round(cuts[499] * 1000, 1),
        "p95_ms": round(cuts[949] * 1000, 1),
        "p99_ms": round(cuts[989] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def check_records(engine: sa.Engine, tally: Tally) -> dict:
    """Every record answered 201 is stored; no Idempotency-Key made two assessments; nothing
    is stored for a key that never got its 201 unless the client gave up on it."""
    stored: dict[str, list[str]] = {}
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(records.c.idempotency_key, records.c.id).where(records.c.kind == "assessment")
        )
        for key, record_id in rows:
            stored.setdefault(key, []).append(record_id)
    lost = [
        key for key, record_id in tally.committed.items() if record_id not in stored.get(key, ())
    ]
    # The unique index makes this impossible by construction; counted to show that it holds.
    duplicated = [key for key in tally.sent if len(stored.get(key, ())) > 1]
    stored_unanswered = [key for key in tally.sent - set(tally.committed) if key in stored]
    return {
        "committed": len(tally.committed),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "stored_without_a_201": len(stored_unanswered),
    }


def common_figures(tally: Tally, seconds: float) -> dict:
    server_errors = sum(n for status, n in tally.statuses.items() if status >= 500)
    return {
        "requests_answered_201": tally.statuses.get(201, 0),
        "throughput_per_s": round(tally.statuses.get(201, 0) / seconds, 1),
        "attempts": tally.attempts,
        "statuses": dict(sorted(tally.statuses.items())),
        "cut_connections": dict(tally.cuts),
        "server_errors_5xx": server_errors,
        "unresolved_keys": tally.unresolved,
        "client_crashes": tally.crashes,
        **percentiles(tally.latencies),
    }


def record_failures(figures: dict) -> list[str]:
    failures = []
    if figures["lost"]:
        failures.append(f"{figures['lost']} committed records are missing")
    if figures["duplicated"]:
        failures.append(f"{figures['duplicated']} Idempotency-Keys stored twice")
    if figures["unresolved_keys"]:
        failures.append(f"{figures['unresolved_keys']} requests never got a definite answer")
    if figures["stored_without_a_201"] > figures["unresolved_keys"]:
        failures.append(f"{figures['stored_without_a_201']} records stored but never answered")
    if figures["client_crashes"]:
        failures.append(f"load clients failed: {figures['client_crashes'][:3]}")
    unexpected = {s: n for s, n in figures["statuses"].items() if s not in (201, 503) and s < 500}
    if unexpected:
        failures.append(f"unexpected answers {unexpected}")
    return failures


def phase_failures(figures: dict, *, allowed_5xx: tuple[int, ...] = ()) -> list[str]:
    """What every phase checks: the records, the answers (no 5xx but those the phase expects)
    and, where the phase reads them, errors in the service's log."""
    failures = record_failures(figures)
    server_errors = {
        s: n for s, n in figures["statuses"].items() if s >= 500 and s not in allowed_5xx
    }
    if server_errors:
        failures.append(f"5xx answers: {server_errors}")
    if figures.get("errors_logged"):
        failures.append(f"{figures['errors_logged']} errors logged")
    return failures


# -- Phases ----------------------------------------------------------------------------------


@dataclass
class Context:
    folder: Path
    postgres: Postgres
    engine: sa.Engine
    api_key: str
    bodies: list[bytes]
    workers: int | None

    @contextlib.contextmanager
    def service(self, drain_seconds: float = 0) -> Iterator[Gunicorn]:
        server = Gunicorn(self.folder, self.postgres.url, self.workers, drain_seconds=drain_seconds)
        try:
            yield server
        finally:
            server.stop()


def saturation(context: Context, seconds: float) -> Verdict:
    with context.service() as server:
        load = Load(server, context.api_key, context.bodies)
        steps = []
        started = time.monotonic()
        for connections in STEPS:
            before = len(load.tallies)
            load.add_connections(connections - before)
            step_start = time.monotonic()
            marks = [(t, len(t.latencies), t.statuses.get(201, 0)) for t in load.tallies]
            time.sleep(seconds / len(STEPS))
            elapsed = time.monotonic() - step_start
            latencies = [x for t, n, _ in marks for x in t.latencies[n:]]
            done = sum(t.statuses.get(201, 0) - ok for t, _, ok in marks)
            steps.append(
                {
                    "connections": connections,
                    "throughput_per_s": round(done / elapsed, 1),
                    **percentiles(latencies),
                }
            )
        tally = load.stop()
        elapsed = time.monotonic() - started
        figures = {
            "workers": server.worker_count,
            "steps": steps,
            **common_figures(tally, elapsed),
            **check_records(context.engine, tally),
            "errors_logged": server.logged_errors(),
        }
    failures = phase_failures(figures)  # a 503 too: the database is up throughout
    if sum(tally.cuts.values()):
        failures.append(f"connections cut with nothing killed: {dict(tally.cuts)}")
    return Verdict("saturation", figures, failures)


def worker_loss_and_reload(context: Context, seconds: float) -> Verdict:
    failures = []
    # As deployed (gunicorn.conf.py's default drain): this phase ends with a SIGTERM under load.
    with context.service(drain_seconds=DEPLOYED_DRAIN_SECONDS) as server:
        workers = server.worker_count
        load = Load(server, context.api_key, context.bodies)
        load.add_connections(32)
        started = time.monotonic()
        time.sleep(seconds / 3)
        victim = server.workers()[0]
        os.kill(victim, signal.SIGKILL)
        replaced = server.wait_for_workers(workers, {victim})
        if victim in replaced or len(replaced) != workers:
            failures.append(f"the killed worker was not replaced: {victim} -> {replaced}")
        time.sleep(seconds / 3)
        before_reload = set(server.workers())
        server.process.send_signal(signal.SIGHUP)
        after_reload = set(server.wait_for_workers(workers, before_reload))
        if after_reload & before_reload or len(after_reload) != workers:
            failures.append(
                f"SIGHUP did not replace every worker: {before_reload} -> {after_reload}"
            )
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        master_alive = server.process.poll() is None
        before_stop = load_totals(load)
        replacement, stop = stop_and_restart(context, server)
        try:
            tally = load.stop()
        finally:
            if replacement is not None:
                replacement.stop()
        elapsed = time.monotonic() - started
        stop.update(stop_figures(before_stop, load_totals(load)))
        cuts_before_stop = sum(before_stop.cuts.values())
        figures = {
            "workers": workers,
            **common_figures(tally, elapsed),
            **check_records(context.engine, tally),
            # Up to the stop: from then on, refused connections are expected (stop figures).
            "error_rate_percent": round(100 * cuts_before_stop / max(1, before_stop.attempts), 3),
            "master_alive": master_alive,
            "stop": stop,
        }
    # 503 with Retry-After is how the stop answers what it will not serve; before it, none.
    failures += phase_failures(figures, allowed_5xx=(503,))
    if before_stop.statuses.get(503):
        failures.append(f"{before_stop.statuses[503]} answers 503 before the stop")
    if not figures["master_alive"]:
        failures.append("the gunicorn master died")
    failures += stop.pop("failures")
    if stop["reset_connections"]:
        failures.append(f"{stop['reset_connections']} connections reset by the stop")
    return Verdict("worker loss and reload", figures, failures)


# What a client sees when a connection it made is reset rather than answered or refused.
RESET_ERRORS = ("ConnectionResetError", "RemoteDisconnected", "BrokenPipeError")
# The longest a SIGTERM may take to end the service: compose's stop_grace_period for the API
# (35 s) and Kubernetes' terminationGracePeriodSeconds (40 s) kill it after that.
STOP_GRACE_S = 35.0


def load_totals(load: Load) -> Tally:
    """Attempts, connection errors and statuses so far, over every client (counting still)."""
    while True:
        try:
            total = Tally()
            for tally in list(load.tallies):
                total.attempts += tally.attempts
                total.cuts.update(tally.cuts.copy())
                total.statuses.update(tally.statuses.copy())
            return total
        except RuntimeError:  # a client added a key while it was read
            continue


def stop_and_restart(context: Context, server: Gunicorn) -> tuple[Gunicorn | None, dict]:
    """SIGTERM the master as an orchestrator stops an instance, wait for it to exit, and start
    a new one on the same port: the replacement (None if it did not start), and figures."""
    failures = []
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        exit_code = server.process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        exit_code = None
        failures.append(f"the master had not exited {STOP_GRACE_S:g} s after SIGTERM")
        server.process.kill()
        server.process.wait()
    exited = time.monotonic()
    if exit_code not in (0, None):
        failures.append(f"the master exited with {exit_code} after SIGTERM")
    log = server.log.read_text(errors="replace")
    queued = sum(int(n) for n in re.findall(r"answered (\d+) queued connections 503", log))
    replacement = None
    try:
        replacement = Gunicorn(context.folder, context.postgres.url, context.workers, server.port)
    except RuntimeError as error:
        failures.append(f"no new master on the same port after the stop: {error}")
    figures = {
        "exit_code": exit_code,
        "sigterm_to_exit_s": round(exited - signalled, 2),
        "restart_ready_s": round(time.monotonic() - exited, 2),
        "queued_answered_503_on_exit": queued,
        "failures": failures,
    }
    return replacement, figures


def stop_figures(before: Tally, after: Tally) -> dict:
    """What the clients met from the SIGTERM on: resets fail the phase; refusals (nothing
    listening between the old master and the new) and 503s (with Retry-After) do not."""
    cuts = after.cuts - before.cuts
    return {
        "reset_connections": sum(cuts[name] for name in RESET_ERRORS),
        "refused_connections": cuts["ConnectionRefusedError"],
        "other_cuts": {
            name: n
            for name, n in cuts.items()
            if name not in (*RESET_ERRORS, "ConnectionRefusedError")
        },
        "answered_503": (after.statuses - before.statuses)[503],
    }


def soak(context: Context, seconds: float) -> Verdict:
    warm_up = max(5.0, seconds / 5)
    with context.service() as server:
        load = Load(server, context.api_key, context.bodies)
        load.add_connections(8)
        started = time.monotonic()
        time.sleep(warm_up)
        after_warm_up = {pid: rss_kib(pid) for pid in server.workers()}
        private_after_warm_up = {pid: private_kib(pid) for pid in after_warm_up}
        time.sleep(max(0.0, seconds - warm_up))
        at_end = {pid: rss_kib(pid) for pid in server.workers()}
        private_at_end = {pid: private_kib(pid) for pid in at_end}
        tally = load.stop()
        elapsed = time.monotonic() - started
        growth = {
            pid: round((at_end[pid] - after_warm_up[pid]) / after_warm_up[pid], 4)
            for pid in after_warm_up
            if after_warm_up[pid] and at_end.get(pid)
        }
        figures = {
            "seconds": round(elapsed, 1),
            "warm_up_seconds": round(warm_up, 1),
            "rss_after_warm_up_kib": after_warm_up,
            "rss_at_end_kib": at_end,
            "rss_growth_percent": {pid: round(100 * g, 2) for pid, g in growth.items()},
            # Pages of the worker's own (not shared with the preloaded master): a leak shows
            # here first, against a much smaller base than RSS.
            "private_kib_after_warm_up": private_after_warm_up,
            "private_kib_at_end": private_at_end,
            "errors_logged": server.logged_errors(),
            **common_figures(tally, elapsed),
            **check_records(context.engine, tally),
        }
    failures = phase_failures(figures)
    if set(after_warm_up) != set(at_end):
        failures.append("workers changed during the soak; growth cannot be measured")
    if not growth:
        failures.append("no worker's memory could be measured")
    for pid, value in growth.items():
        if value >= MAX_RSS_GROWTH:
            failures.append(
                f"worker {pid} grew {100 * value:.1f} % (limit {100 * MAX_RSS_GROWTH:.0f} %)"
            )
    return Verdict("soak", figures, failures)


def database_restart(context: Context, seconds: float) -> Verdict:
    failures = []
    with context.service() as server:
        readiness: list[tuple[float, int | None]] = []
        watching = threading.Event()

        def watch() -> None:
            while not watching.is_set():
                readiness.append((time.monotonic(), status_of(f"{server.base}/readyz", 1)))
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        load = Load(server, context.api_key, context.bodies)
        load.add_connections(16)
        started = time.monotonic()
        time.sleep(seconds / 3)
        stopped_at = time.monotonic()
        context.postgres.stop("immediate")
        # Down for at least a second of load, and until readiness has noticed (bounded).
        noticed_by = stopped_at + OUTAGE_NOTICE_LIMIT_S
        time.sleep(1)
        while time.monotonic() < noticed_by and not any(
            t >= stopped_at and s == 503 for t, s in readiness[-50:]
        ):
            time.sleep(0.05)
        context.postgres.start()
        restarted_at = time.monotonic()
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        tally = load.stop()
        watching.set()
        watcher.join()
        elapsed = time.monotonic() - started
        during = [s for t, s in readiness if stopped_at <= t <= restarted_at]
        after = [(t, s) for t, s in readiness if t > restarted_at]
        recovered = next((t for t, s in after if s == 200), None)
        figures = {
            "readyz_during_outage": dict(Counter(during)),
            "readyz_recovered_after_s": (
                round(recovered - restarted_at, 2) if recovered is not None else None
            ),
            "readyz_last": readiness[-1][1] if readiness else None,
            **common_figures(tally, elapsed),
            **check_records(context.engine, tally),
        }
    # While the database is down a 503 is the right answer; any other 5xx is a failure.
    failures += phase_failures(figures, allowed_5xx=(503,))
    if 503 not in during:
        failures.append("readiness never reported the database outage")
    if recovered is None or figures["readyz_last"] != 200:
        failures.append("readiness did not recover")
    return Verdict("PostgreSQL restart", figures, failures)


# -- Slow clients, through the repository's nginx ----------------------------------------------

NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
SLOW_CONNECTIONS = 200
# Every slow connection sends one more byte of its unfinished header this often.
SLOW_BYTE_INTERVAL_S = 1.0
# During the slow clients, a legitimate request's p99 may be this many times its baseline p99,
# or this much, whichever is larger: machine noise passes, a stalled worker (tens of seconds)
# does not. A request not answered within LEGITIMATE_TIMEOUT_S fails the phase on its own.
SLOW_LATENCY_FACTOR = 10.0
SLOW_LATENCY_ALLOWANCE_S = 0.5
LEGITIMATE_TIMEOUT_S = 5.0
# The contrast, straight at gunicorn (a figure, not a check): so many slow connections per
# worker, for so long, each legitimate request given up after DIRECT_TIMEOUT_S.
DIRECT_PER_WORKER = 2
DIRECT_SECONDS = 3.0
DIRECT_TIMEOUT_S = 1.0


def nginx_binary() -> str | None:
    # Debian installs it in sbin, which a non-root PATH may leave out.
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which("nginx", path=search)


def nginx_version(binary: str) -> tuple[int, ...]:
    output = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10).stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", output)
    return tuple(map(int, found.groups())) if found else (0, 0, 0)


def nginx_config(text: str, folder: Path, port: int, status_port: int, upstream: int) -> str:
    """deploy/nginx/nginx.conf with only what ties it to compose changed: its /tmp paths (pid,
    temporary files) move to ``folder``, it listens on loopback ports of the harness's, and the
    upstream is the harness's gunicorn (``resolve`` goes with Docker's DNS name: an address
    has nothing to re-resolve, and nginx before 1.27.3 does not know it). Timeouts, buffering,
    limits and everything else are the file's own."""
    substitutions = (
        (r"(?<=\s)/tmp/", f"{folder}/"),
        (r"\blisten 8080\b", f"listen 127.0.0.1:{port}"),
        (r"\blisten 127\.0\.0\.1:8081\b", f"listen 127.0.0.1:{status_port}"),
        (r"\bserver api:8000\b[^;]*;", f"server 127.0.0.1:{upstream};"),
    )
    for pattern, replacement in substitutions:
        text, found = re.subn(pattern, replacement, text)
        if not found:
            raise RuntimeError(
                f"{NGINX_CONF} has nothing matching {pattern!r}: bench/harness.py adapts it "
                "to run on loopback and needs to follow the change"
            )
    return text


class Nginx:
    """The repository's nginx configuration, run by the harness in a folder of its own."""

    def __init__(self, folder: Path, binary: str, upstream_port: int) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="nginx-", dir=folder))
        self.folder.chmod(0o755)  # run as root, nginx's workers are another user
        self.port = free_port()
        self.status_port = free_port()
        self.log = self.folder / "nginx.log"
        self.version = nginx_version(binary)
        # Its own start-up messages to stderr too (-e, nginx 1.19.5 and later), not to the
        # error log path it was built with.
        early_log = ["-e", "stderr"] if self.version >= (1, 19, 5) else []
        config = self.folder / "nginx.conf"
        config.write_text(
            nginx_config(
                NGINX_CONF.read_text(), self.folder, self.port, self.status_port, upstream_port
            )
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, "-p", str(self.folder), "-c", str(config), *early_log,
                 "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: nothing of it outlives the run
            )  # fmt: skip
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, seconds: float = 15) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.log_tail()}")
            if status_of(f"http://127.0.0.1:{self.status_port}/healthz", 1) == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx was not ready within {seconds} s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """A fast shutdown (SIGTERM), then SIGKILL to whatever of its group is left."""
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


class SlowClients:
    """``count`` connections that each send the start of a request, then one more byte of an
    unfinished header every SLOW_BYTE_INTERVAL_S, and never finish it. A connection the server
    closes (nginx: client_header_timeout) is opened again at once. One thread drives them all;
    leaving the ``with`` closes every socket."""

    START = (
        b"POST /v1/assess HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: "
    )

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.sockets: list[socket.socket | None] = [None] * count
        self.opened = 0
        self.closed_by_server = 0
        self.bytes_sent = 0
        self.errors: Counter = Counter()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowClients:
        try:
            for index in range(self.count):
                self._open(index)
        except BaseException:
            self._close_all()
            raise
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopping.set()
        self._thread.join(10)
        self._close_all()

    @property
    def held(self) -> int:
        return sum(s is not None for s in self.sockets)

    def _open(self, index: int) -> None:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        try:
            connection.sendall(self.START)
        except OSError:
            connection.close()
            raise
        connection.setblocking(False)
        self.sockets[index] = connection
        self.opened += 1

    def _close(self, index: int) -> None:
        connection, self.sockets[index] = self.sockets[index], None
        if connection is not None:
            connection.close()

    def _close_all(self) -> None:
        for index in range(self.count):
            self._close(index)

    def _run(self) -> None:
        # Staggered: each connection has its own moment in the second.
        started = time.monotonic()
        due = [started + SLOW_BYTE_INTERVAL_S * i / self.count for i in range(self.count)]
        while not self._stopping.wait(0.05):
            now = time.monotonic()
            for index in range(self.count):
                if now < due[index]:
                    continue
                due[index] = now + SLOW_BYTE_INTERVAL_S
                try:
                    self._step(index)
                except OSError as error:
                    self.errors[type(error).__name__] += 1
                    self._close(index)

    def _step(self, index: int) -> None:
        connection = self.sockets[index]
        if connection is not None:
            try:
                connection.recv(4096)  # an answer or the end: either way the server let go
            except BlockingIOError:  # nothing yet: it still waits for the rest of the header
                connection.send(b"a")
                self.bytes_sent += 1
                return
            except ConnectionResetError:
                pass
            self.closed_by_server += 1
            self._close(index)
        self._open(index)


def legitimate_requests(
    port: int,
    api_key: str,
    count: int,
    *,
    pace: float = 0.0,
    until: float = float("inf"),
    timeout: float = LEGITIMATE_TIMEOUT_S,
) -> Tally:
    """One normal client, one request at a time, each on a new connection: the red-flag screen
    (200) and a stored assessment with an Idempotency-Key (201) in turn, ``pace`` seconds apart
    (start to start), until ``count`` are sent or the clock passes ``until``. Nothing is retried:
    a request that gets no answer within ``timeout`` is counted in ``cuts``."""
    screens = [
        json.dumps(example["value"]).encode() for example in examples.REPORT_EXAMPLES.values()
    ]
    reports = report_bodies()
    tally = Tally()
    started = time.monotonic()
    for n in range(count):
        time.sleep(max(0.0, started + n * pace - time.monotonic()))
        if time.monotonic() > until:
            break
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        key = None
        if n % 2:
            key = headers["Idempotency-Key"] = str(uuid.uuid4())
            tally.sent.add(key)
            path, body = "/v1/assess", reports[n // 2 % len(reports)]
        else:
            path, body = "/v1/escalation-check", screens[n // 2 % len(screens)]
        tally.attempts += 1
        begun = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as error:
            tally.cuts[type(error).__name__] += 1
            continue
        finally:
            connection.close()
        tally.latencies.append(time.perf_counter() - begun)
        tally.statuses[response.status] += 1
        if key and response.status == 201:
            tally.committed[key] = json.loads(payload)["id"]
    return tally


def legitimate_figures(tally: Tally) -> dict:
    return {
        "requests": tally.attempts,
        "statuses": dict(sorted(tally.statuses.items())),
        "unanswered": dict(tally.cuts),
        **percentiles(tally.latencies),
    }


def direct_contrast(server: Gunicorn, api_key: str) -> dict:
    """The same kind of slow clients sent straight at gunicorn, briefly: DIRECT_PER_WORKER per
    worker, while the normal client gives each request DIRECT_TIMEOUT_S. Figures only; what is
    checked is that the service answers again once they are gone."""
    connections = DIRECT_PER_WORKER * server.worker_count
    begun = time.monotonic()
    with SlowClients(server.port, connections) as slow:
        time.sleep(0.2)  # accepted: every sync worker now waits on one
        tally = legitimate_requests(
            server.port,
            api_key,
            1000,
            until=begun + DIRECT_SECONDS - DIRECT_TIMEOUT_S,
            timeout=DIRECT_TIMEOUT_S,
        )
        closed_by_gunicorn = slow.closed_by_server
    released = time.monotonic()
    recovered = None
    while recovered is None and time.monotonic() < released + 30:
        if status_of(f"{server.base}/readyz", 2) == 200:
            recovered = time.monotonic() - released
        else:
            time.sleep(0.1)
    figures = {
        "slow_connections": connections,
        "seconds": round(released - begun, 1),
        "request_timeout_s": DIRECT_TIMEOUT_S,
        "requests": tally.attempts,
        "answered": len(tally.latencies),
        "not_answered_in_time": sum(tally.cuts.values()),
        "closed_by_gunicorn": closed_by_gunicorn,
        "readyz_after_release_s": round(recovered, 2) if recovered is not None else None,
    }
    failures = []
    if recovered is None:
        failures.append("the service did not answer again once the direct slow clients left")
    return {"figures": figures, "failures": failures}


def slow_clients(context: Context, seconds: float) -> Verdict:
    binary = nginx_binary()
    if binary is None:
        reason = "nginx is not installed (Debian: apt-get install nginx)"
        if os.environ.get("CI") == "true":
            return Verdict("slow clients", {}, [reason])
        return Verdict("slow clients", {"skipped": reason}, [])
    started = time.monotonic()
    # As many legitimate requests before (one after the other) as during (one every 0.2 s).
    count = max(40, int(seconds * 5))
    with context.service() as server:
        nginx = Nginx(context.folder, binary, server.port)
        try:
            # A warm-up, not counted: every worker has answered a few requests.
            legitimate_requests(nginx.port, context.api_key, 4 * server.worker_count)
            baseline = legitimate_requests(nginx.port, context.api_key, count)
            with SlowClients(nginx.port, SLOW_CONNECTIONS) as slow:
                # Every connection has sent its partial header; the trickle has begun.
                time.sleep(0.5 * SLOW_BYTE_INTERVAL_S)
                held = slow.held
                during = legitimate_requests(
                    nginx.port,
                    context.api_key,
                    count,
                    pace=seconds / count,
                    until=time.monotonic() + seconds + LEGITIMATE_TIMEOUT_S,
                )
                attack = {
                    "connections": SLOW_CONNECTIONS,
                    "held_when_measuring_began": held,
                    "held_at_end": slow.held,
                    "opened": slow.opened,
                    "closed_by_nginx": slow.closed_by_server,
                    "header_bytes_trickled": slow.bytes_sent,
                    "errors": dict(slow.errors),
                }
            nginx_alive = nginx.process.poll() is None
            version = nginx.version
            nginx_log = nginx.log_tail()
        finally:
            nginx.stop()
        errors_logged = server.logged_errors()
        through_nginx_seconds = time.monotonic() - started
        direct = direct_contrast(server, context.api_key)
        workers = server.worker_count

    both = Tally()
    both.merge(baseline)
    both.merge(during)
    records = check_records(context.engine, both)
    base, now = percentiles(baseline.latencies), percentiles(during.latencies)
    bound_ms = max(SLOW_LATENCY_FACTOR * base.get("p99_ms", 0.0), SLOW_LATENCY_ALLOWANCE_S * 1000)
    figures = {
        "workers": workers,
        "nginx_version": ".".join(map(str, version)),
        "slow_clients": attack,
        "baseline_through_nginx": legitimate_figures(baseline),
        "during_through_nginx": legitimate_figures(during),
        "p99_bound_ms": round(bound_ms, 1),
        "nginx_alive_after": nginx_alive,
        "errors_logged": errors_logged,
        **{key: records[key] for key in ("committed", "lost", "duplicated")},
        "direct_to_gunicorn": direct["figures"],
        "seconds_through_nginx": round(through_nginx_seconds, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    failures = []
    for name, tally in (("baseline", baseline), ("with the slow clients", during)):
        if tally.attempts < count:
            failures.append(f"{name}: only {tally.attempts} of {count} requests were sent")
        if tally.cuts:
            failures.append(f"{name}: requests not answered: {dict(tally.cuts)}")
        wrong = {s: n for s, n in tally.statuses.items() if s not in (200, 201)}
        if wrong:
            failures.append(f"{name}: answers other than 200 and 201: {wrong}")
    if held < SLOW_CONNECTIONS:
        failures.append(f"only {held} of {SLOW_CONNECTIONS} slow connections were held")
    if now and now["p99_ms"] > bound_ms:
        failures.append(
            f"p99 through nginx went from {base.get('p99_ms')} ms to {now['p99_ms']} ms "
            f"with the slow clients (bound {bound_ms:.0f} ms)"
        )
    elif not now:
        failures.append("with the slow clients, too few requests were answered to measure")
    if records["lost"] or records["duplicated"]:
        failures.append(f"records: {records['lost']} lost, {records['duplicated']} duplicated")
    if errors_logged:
        failures.append(f"{errors_logged} errors logged")
    if not nginx_alive:
        failures.append(f"nginx died: {nginx_log}")
    failures += direct["failures"]
    return Verdict("slow clients", figures, failures)


def partition(context: Context, seconds: float) -> Verdict:
    from bench.partition import partition_phase  # it uses this module's pieces: imported late

    return partition_phase(context, seconds)


PHASES: dict[str, Callable[[Context, float], Verdict]] = {
    "saturation": saturation,
    "faults": worker_loss_and_reload,
    "soak": soak,
    "database": database_restart,
    "slow_clients": slow_clients,
    "partition": partition,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="the short run CI does")
    parser.add_argument("--only", help="comma-separated phases: " + ", ".join(PHASES))
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: its config's)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    arguments = parser.parse_args(argv)
    durations = SHORT if arguments.short else FULL
    chosen = arguments.only.split(",") if arguments.only else list(PHASES)
    unknown = set(chosen) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    bin_folder = postgres_bin()  # before anything is made: says what is missing
    folder = Path(tempfile.mkdtemp(prefix="popliteal-harness-"))
    postgres = Postgres(folder, bin_folder)
    verdicts: list[Verdict] = []
    try:
        print(f"harness: PostgreSQL of its own on 127.0.0.1:{postgres.port}", flush=True)
        postgres.init()
        storage = Storage(postgres.url)
        storage.upgrade()
        api_key, _ = storage.keys.create("harness", label="load-and-fault harness")
        storage.dispose()
        # Pre-ping: the database restart phase leaves the harness's own connections dead.
        engine = sa.create_engine(postgres.url, pool_pre_ping=True)
        context = Context(folder, postgres, engine, api_key, report_bodies(), arguments.workers)
        for name in chosen:
            print(f"\n== {name} ({durations[name]:.0f} s)", flush=True)
            verdict = PHASES[name](context, durations[name])
            verdicts.append(verdict)
            print(json.dumps(verdict.figures, indent=2, default=str))
            skipped = verdict.figures.get("skipped")
            if verdict.failures:
                print("FAIL: " + "; ".join(verdict.failures))
            else:
                print(f"SKIPPED: {skipped}" if skipped else "PASS")
        engine.dispose()
    finally:
        with contextlib.suppress(Exception):
            postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)
    if arguments.json:
        arguments.json.write_text(
            json.dumps([v.__dict__ for v in verdicts], indent=2, default=str) + "\n"
        )
    failed = [v.phase for v in verdicts if v.failures]
    print("\nharness:", "all phases passed" if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
