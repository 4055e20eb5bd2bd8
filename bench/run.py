"""HTTP benchmark: Popliteal as deployed, next to a bare Flask app, side by side in one run.

    .venv/bin/python bench/run.py [--duration 40] [--rounds 10] [--connections 16] [--quick]
                                  [--only assess,assess-redis,escalation,stored-pg,...]
                                  [--postgres-url postgresql+psycopg://postgres@127.0.0.1/test]
                                  [--redis-url redis://127.0.0.1:6379/0] [--no-fast-path]

Measures the configuration users deploy. Every service server runs as ./scripts/run and the
image start it: `gunicorn -c gunicorn.conf.py service.wsgi:app` with POPLITEAL_CONFIG=production,
HOST/PORT, WEB_CONCURRENCY=3 (sync workers, the default on 2 CPUs; --workers), and
- rate limits on, with two per-key limits as the default has (RATELIMIT_APPLICATION
  "100000000 per minute;10000000 per second": the same code path and the same number of counter
  updates per request, but never a 429), in memory or on Redis;
- the JSON log on: one popliteal.access line per request, gunicorn's stdout written to a file
  in the run's temporary folder (checked afterwards: a line for every request answered);
- Prometheus metrics on: POPLITEAL_METRICS_PORT (a free port), PROMETHEUS_MULTIPROC_DIR in the
  temporary folder (checked afterwards: every request answered was counted);
- API keys checked on every request (cached for 10 s, as in production).
Only POPLITEAL_DRAIN_SECONDS=0 differs, so that a server stops at once when the run ends;
--no-fast-path also sets POPLITEAL_FAST_PATH=false, to measure the service without its fast path.

Servers (each on free loopback ports; one per configuration) and targets (--only picks some,
by the names in brackets; bare Flask is always measured, every ratio is to it):
- bare Flask (bench/bare_app.py under plain gunicorn, same worker count: parses the same JSON
  body, returns a small dict) - [bare] POST /v1/assess;
- the service on a throw-away SQLite file, limits in memory - [assess] POST /v1/assess with
  "store": false, [escalation] POST /v1/escalation-check, [interview] POST /v1/interview/next
  (the same report), [stored-sqlite] POST /v1/assess stored (each request writes the
  assessment's row, which holds its plan);
- the same on its own SQLite file with limits on Redis (--redis-url or BENCH_REDIS_URL; under a
  key prefix of the run's own, bench/prefixed_app.py) - [assess-redis] POST /v1/assess
  "store": false;
- the service on a throw-away PostgreSQL database (created on the server at --postgres-url or
  BENCH_POSTGRES_URL, migrated, dropped at the end), limits in memory - [stored-pg] POST
  /v1/assess stored, [stored-keyed] the same with an Idempotency-Key of its own per request,
  [get] GET /v1/assessments/{id} of one stored assessment;
- the floor of a stored request (bench/floor_app.py under plain gunicorn, same worker count:
  bare Flask plus one durable autocommit INSERT of the body on the driver) on the run's
  PostgreSQL database and on a SQLite file of its own - [floor-pg], [floor-sqlite] POST
  /v1/assess. Each stored target measured beside its floor is also given over it.

Then loads the targets in alternating rounds with wrk (Debian package `wrk`, 2 threads), so
that noise on a shared machine hits all of them alike: --duration seconds of load per target,
split into --rounds rounds of whole seconds (--quick: 3 rounds of 2 s). Around every round it
reads the CPU time (utime + stime, /proc/<pid>/stat) of the server's workers (the gunicorn
master's children) and, for PostgreSQL targets, of the PostgreSQL backends connected to the
benchmark's database (background processes such as the WAL writer are not counted).

Prints per target, as medians over rounds: requests/s, p50 and p99, the ratio to bare Flask
(the median of the per-round ratios, with their range), CPU microseconds per request of the
workers and of PostgreSQL, and the CPU ratio to bare Flask (bare's CPU per request over the
target's, workers + PostgreSQL; steadier than throughput on a shared machine). Then whether
the targets hold (a target not met is reported, not an error), and the checks. The run fails
(exit 1) if any response is not a 2xx, a stored target wrote fewer records than it answered, a
server logged or counted fewer requests than it answered, or the Redis limits did not count in
Redis. Everything listens on 127.0.0.1; every server stops, the temporary folder goes, the
database is dropped and the run's Redis keys are removed when the run ends, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench import cpu  # noqa: E402
from service.examples import SELF_CARE_TECHNIQUE  # noqa: E402
from service.storage import ASSESSMENT, Storage  # noqa: E402
from service.storage.inline_plans import HOLDS_ITS_PLAN  # noqa: E402
from service.storage.tables import records as records_table  # noqa: E402

BARE = "bare Flask"
ASSESS = "assess store:false, limits memory"
ASSESS_REDIS = "assess store:false, limits Redis"
ESCALATION = "escalation-check, limits memory"
INTERVIEW = "interview/next, limits memory"
STORED_PG = "assess stored, PostgreSQL"
STORED_SQLITE = "assess stored, SQLite"
STORED_KEYED = "assess stored, Idempotency-Key, PG"
GET = "GET assessment, PostgreSQL"
FLOOR_PG = "floor: bare + INSERT, PostgreSQL"
FLOOR_SQLITE = "floor: bare + INSERT, SQLite"
# Each stored target beside the floor of its database (bench/floor_app.py).
FLOORS = {STORED_PG: FLOOR_PG, STORED_SQLITE: FLOOR_SQLITE}
# The apps that are not the service: no log, metrics or limits of the service's to check.
BASELINE_APPS = {"bare_app:app", "floor_app:app"}
# Per target: (least throughput as a share of bare Flask's, largest p99 in ms at
# P99_CONNECTIONS connections, or None). Targets for later work: a run reports, never fails on
# them.
TARGETS = {
    ASSESS: (0.80, 10.0),
    ASSESS_REDIS: (0.72, 10.0),
    ESCALATION: (0.90, None),
    STORED_PG: (0.35, None),
    STORED_SQLITE: (0.35, None),
    STORED_KEYED: (0.35, None),
    GET: (0.60, None),
}
P99_CONNECTIONS = 16
# gunicorn sync workers per server (WEB_CONCURRENCY; --workers): the service's default on the 2
# CPUs this benchmark is run on (gunicorn.conf.py's default_workers), for bare Flask as well.
WORKERS = 3
# The service's fast path for the valid success case of the hot POSTs (POPLITEAL_FAST_PATH; on
# as deployed, --no-fast-path to measure without it).
FAST_PATH = True
# Two limits, as the default "600 per minute;30 per second": two counters per request.
RATE_LIMIT = "100000000 per minute;10000000 per second"
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# Inherited settings that would make the servers differ from the deployed defaults.
SCRUBBED_PREFIXES = ("POPLITEAL_", "RATELIMIT_", "GUNICORN_", "PROMETHEUS_", "BENCH_")
SCRUBBED = {"WEB_CONCURRENCY", "DATABASE_URL", "HOST", "PORT", "FLASK_APP"}


@dataclass(frozen=True)
class Target:
    name: str  # for --only
    label: str
    server: str  # which server answers it (SERVERS)
    method: str
    path: str  # "{assessment_id}": the stored assessment made before the rounds
    body: dict | None
    postgres: bool = False  # its requests reach PostgreSQL: its backends' CPU is read
    keyed: bool = False  # each request carries an Idempotency-Key of its own


STATELESS = {**SELF_CARE_TECHNIQUE, "store": False}
ALL_TARGETS = (
    Target("bare", BARE, "bare", "POST", "/v1/assess", SELF_CARE_TECHNIQUE),
    Target("assess", ASSESS, "memory", "POST", "/v1/assess", STATELESS),
    Target("assess-redis", ASSESS_REDIS, "redis", "POST", "/v1/assess", STATELESS),
    Target("escalation", ESCALATION, "memory", "POST", "/v1/escalation-check", SELF_CARE_TECHNIQUE),
    Target("interview", INTERVIEW, "memory", "POST", "/v1/interview/next", SELF_CARE_TECHNIQUE),
    Target("stored-pg", STORED_PG, "postgres", "POST", "/v1/assess", SELF_CARE_TECHNIQUE,
           postgres=True),
    Target("stored-sqlite", STORED_SQLITE, "memory", "POST", "/v1/assess", SELF_CARE_TECHNIQUE),
    Target("stored-keyed", STORED_KEYED, "postgres", "POST", "/v1/assess", SELF_CARE_TECHNIQUE,
           postgres=True, keyed=True),
    Target("get", GET, "postgres", "GET", "/v1/assessments/{assessment_id}", None, postgres=True),
    Target("floor-pg", FLOOR_PG, "floor-pg", "POST", "/v1/assess", SELF_CARE_TECHNIQUE,
           postgres=True),
    Target("floor-sqlite", FLOOR_SQLITE, "floor-sqlite", "POST", "/v1/assess",
           SELF_CARE_TECHNIQUE),
)  # fmt: skip
# Targets that write records, with the server whose database holds them.
STORED = {STORED_PG: "postgres", STORED_SQLITE: "memory", STORED_KEYED: "postgres"}

# wrk runs response() in each thread's own Lua state; done() runs in the main one, so it adds
# up the threads' counters through thread:get.
COUNTING_LUA = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  non_2xx = 0
end
function response(status, headers, body)
  if status < 200 or status > 299 then non_2xx = non_2xx + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("non_2xx") end
  io.write(string.format("NON_2XX %d\\n", total))
end
"""


class BenchError(Exception):
    """The run cannot give trustworthy numbers."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Each request's own Idempotency-Key: the run's token, the wrk thread's and a counter.
KEYED_LUA = """
local sent = 0
local thread = string.gsub(tostring({}), "[^%w]", "")
request = function()
  sent = sent + 1
  wrk.headers["Idempotency-Key"] = string.format("%s-%s-%d", RUN_TOKEN, thread, sent)
  return wrk.format()
end
"""


def wrk_script(method: str, key: str, body: dict | None, keyed: bool = False) -> str:
    lines = [f'wrk.method = "{method}"', f'wrk.headers["Authorization"] = "Bearer {key}"']
    if body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = [==[{json.dumps(body)}]==]")
    if keyed:
        lines.append(f'RUN_TOKEN = "{secrets.token_hex(8)}"' + KEYED_LUA)
    return "\n".join(lines) + COUNTING_LUA


class Server:
    """gunicorn on a free loopback port, its output in a file; stopped with its workers."""

    def __init__(self, name: str, folder: Path, app: str, **settings: str) -> None:
        self.name, self.app, self.settings = name, app, settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"{name}.log"
        self.service = app not in BASELINE_APPS
        self.metrics_url = None
        self.process: subprocess.Popen | None = None
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(SCRUBBED_PREFIXES) and key not in SCRUBBED
        }
        environment["PYTHONPATH"] = str(ROOT)
        if self.service:
            metrics_port = free_port()
            self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
            samples = folder / f"metrics-{name}"
            samples.mkdir()
            config = str(ROOT / "gunicorn.conf.py")
            self.command = [sys.executable, "-m", "gunicorn", "-c", config, app]
            self.cwd = ROOT
            environment.update(
                POPLITEAL_CONFIG="production",
                HOST="127.0.0.1",
                PORT=str(self.port),
                WEB_CONCURRENCY=str(WORKERS),
                POPLITEAL_METRICS_PORT=str(metrics_port),
                PROMETHEUS_MULTIPROC_DIR=str(samples),
                POPLITEAL_DRAIN_SECONDS="0",
                POPLITEAL_FAST_PATH="true" if FAST_PATH else "false",
                RATELIMIT_ENABLED="true",
                RATELIMIT_APPLICATION=RATE_LIMIT,
                **settings,
            )
        else:
            self.command = [
                sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(WORKERS), "--worker-class", "sync", "--log-level", "warning",
                "--no-control-socket", app,
            ]  # fmt: skip
            self.cwd = ROOT / "bench"
            environment.update(settings)
        self.environment = environment

    def start(self) -> None:
        with self.log.open("wb") as output:
            # A session of its own, so that whatever is left of the tree can be killed at once.
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.environment, stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> None:
        url = f"{self.url}/readyz" if self.service else f"{self.url}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} server exited with {self.process.returncode}: {self.log_tail()}"
                )
            ready = False
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as answer:
                ready = answer.status == 200
            if ready and len(self.workers()) == WORKERS:
                return
            time.sleep(0.1)
        raise BenchError(f"{self.name} server: {url} not ready within {timeout:g} s")

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def workers(self) -> list[int]:
        return cpu.children(self.process.pid)

    def counted(self) -> int:
        """2xx answers to /v1 requests in the metrics the master serves (all workers')."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            text = response.read().decode()
        return int(
            sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "popliteal_http_requests_total"
                and sample.labels.get("route", "").startswith("/v1/")
                and sample.labels.get("status", "").startswith("2")
            )
        )

    def logged(self) -> tuple[int, list[str]]:
        """Per-request lines (popliteal.access, 2xx, /v1 routes) in the log, and the messages
        of its warning and error lines."""
        requests, problems = 0, []
        with self.log.open(errors="replace") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:
                    problems.append(line.strip()[:200])
                    continue
                if not isinstance(entry, dict):
                    continue
                if entry.get("logger") == "popliteal.access":
                    route, status = str(entry.get("route")), entry.get("status")
                    requests += route.startswith("/v1/") and 200 <= int(status or 0) < 300
                elif entry.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                    problems.append(f"{entry.get('level')} {entry.get('message')}"[:200])
        return requests, problems

    def stop(self) -> None:
        """SIGTERM to the master (gunicorn's graceful stop: no drain here), then SIGKILL to
        whatever of its process group is left."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def to_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    command = [
        "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s",
        "-s", str(script), url,
    ]  # fmt: skip
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    counted = re.search(r"^NON_2XX (\d+)$", output, re.MULTILINE)
    if counted is None:
        raise BenchError(f"{url}: wrk did not report its response count\n{output}")
    problems = [f"{counted.group(1)} non-2xx responses"] if int(counted.group(1)) else []
    problems += re.findall(r"(Non-2xx or 3xx responses: \d+|Socket errors: .*)", output)
    if problems:
        raise BenchError(f"{url}: {'; '.join(problems)}")
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": to_ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)),
        "p99": to_ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)),
    }


def prepared(url: str) -> str:
    """Migrate the database at url and make an API key for the benchmark."""
    storage = Storage(url)
    storage.upgrade()
    key, _ = storage.keys.create("bench", label="benchmark")
    storage.dispose()
    return key


def records(url: str) -> tuple[int, int]:
    """How many assessments the database at url holds, and how many of their rows hold their
    plan."""
    engine = sa.create_engine(url)
    held = sa.case((HOLDS_ITS_PLAN, 1), else_=0)
    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(held), 0))
    try:
        with engine.connect() as connection:
            row = connection.execute(query.where(records_table.c.kind == ASSESSMENT)).one()
            return row[0], row[1]
    finally:
        engine.dispose()


class BenchDatabase:
    """A PostgreSQL database of the run's own, dropped when the run ends."""

    def __init__(self, server_url: str) -> None:
        self.admin = sa.create_engine(
            server_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        self.name = f"popliteal_bench_{os.urandom(4).hex()}"
        url = sa.make_url(server_url).set(database=self.name)
        self.url = url.render_as_string(hide_password=False)

    def __enter__(self) -> BenchDatabase:
        try:
            with self.admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        except sa.exc.OperationalError as error:
            raise BenchError(f"PostgreSQL is not reachable: {error.orig}") from None
        return self

    def backends(self) -> list[int]:
        """The processes serving this database's connections, where the server runs on this
        machine: their command line is "postgres: ... <user> <database> <client> <state>"."""
        return cpu.with_command_line("postgres:", f" {self.name} ")

    def __exit__(self, *exc_info) -> None:
        with self.admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


class BenchRedis:
    """The rate-limit counters of the run's Redis server, under a key prefix of its own,
    removed when the run ends."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.prefix = f"popliteal-bench-{os.urandom(4).hex()}"
        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        # Flask-Limiter's keys: LIMITS:LIMITER/<prefix>/<key>/<amount>/<multiples>/<unit>.
        self.pattern = f"*/{self.prefix}/*"

    def __enter__(self) -> BenchRedis:
        import redis

        try:
            self.client.ping()
        except redis.RedisError as error:
            raise BenchError(f"Redis at {self.url} is not reachable: {error}") from None
        return self

    def keys(self) -> list[bytes]:
        return list(self.client.scan_iter(match=self.pattern, count=1000))

    def __exit__(self, *exc_info) -> None:
        keys = self.keys()
        for start in range(0, len(keys), 500):
            self.client.delete(*keys[start : start + 500])
        self.client.close()


@dataclass
class Run:
    # Per target, one dict per round: requests, rps, p50, p99, cpu, pg (µs per request).
    results: dict[str, list[dict]]
    answered: dict[str, int] = field(default_factory=dict)  # per server, warm-up included
    counted: dict[str, int] = field(default_factory=dict)  # per server, by its metrics
    logged: dict[str, tuple[int, list[str]]] = field(default_factory=dict)  # per server
    # Per stored target: its database's assessments, and those whose row holds their plan.
    records: dict[str, tuple[int, int]] = field(default_factory=dict)
    floor_rows: dict[str, int] = field(default_factory=dict)  # per floor target
    redis_keys: int | None = None
    workers_gone: int = 0  # workers that exited during a round
    backends_gone: int = 0  # PostgreSQL backends that exited during a round


def measure(
    args: argparse.Namespace,
    seconds: int,
    selected: list[Target],
    database: BenchDatabase | None,
    redis_store: BenchRedis | None,
) -> Run:
    needed = {target.server for target in selected}
    with tempfile.TemporaryDirectory(prefix="popliteal-bench-") as tmp:
        folder = Path(tmp)
        servers: dict[str, Server] = {"bare": Server("bare", folder, "bare_app:app")}
        # The same header as the service gets, ignored by bare Flask and the floors.
        keys = dict.fromkeys(("bare", "floor-pg", "floor-sqlite"), "plt_" + "0" * 54)
        urls = {}
        if "memory" in needed:
            urls["memory"] = f"sqlite:///{folder / 'memory.sqlite3'}"
            servers["memory"] = Server(
                "memory", folder, "service.wsgi:app", DATABASE_URL=urls["memory"]
            )
        if "redis" in needed:
            urls["redis"] = f"sqlite:///{folder / 'redis.sqlite3'}"
            servers["redis"] = Server(
                "redis", folder, "bench.prefixed_app:app",
                DATABASE_URL=urls["redis"],
                RATELIMIT_STORAGE_URI=redis_store.url,
                BENCH_RATELIMIT_KEY_PREFIX=redis_store.prefix,
            )  # fmt: skip
        if "postgres" in needed:
            urls["postgres"] = database.url
            servers["postgres"] = Server(
                "postgres", folder, "service.wsgi:app", DATABASE_URL=database.url
            )
        floors = floor_databases(needed, folder, database)
        for name, url in floors.items():
            servers[name] = Server(name, folder, "floor_app:app", FLOOR_DATABASE=url)
        for name, url in urls.items():
            keys[name] = prepared(url)
        run = Run({target.label: [] for target in selected})
        answered = dict.fromkeys(servers, 0)
        try:
            for server in servers.values():
                server.start()
            for server in servers.values():
                server.wait_ready()
            assessment_id = ""
            if any(target.name == "get" for target in selected):
                assessment_id = stored_assessment(servers["postgres"].url, keys["postgres"])
                answered["postgres"] += 1
            scripts, urls_of = {}, {}
            for target in selected:
                scripts[target.label] = folder / f"{target.name}.lua"
                scripts[target.label].write_text(
                    wrk_script(target.method, keys[target.server], target.body, target.keyed)
                )
                path = target.path.format(assessment_id=assessment_id)
                urls_of[target.label] = servers[target.server].url + path
            for target in selected:  # warm up every worker
                warm = run_wrk(urls_of[target.label], scripts[target.label], 1, args.connections)
                answered[target.server] += warm["requests"]
            for number in range(1, args.rounds + 1):
                print(f"round {number}/{args.rounds}", file=sys.stderr, flush=True)
                for target in selected:
                    server = servers[target.server]
                    workers = cpu.snapshot(server.workers())
                    backends = cpu.snapshot(database.backends()) if target.postgres else {}
                    result = run_wrk(
                        urls_of[target.label], scripts[target.label], seconds, args.connections
                    )
                    worker_seconds, gone = cpu.spent(workers, cpu.snapshot(server.workers()))
                    run.workers_gone += gone
                    result["cpu"] = worker_seconds / result["requests"] * 1e6
                    result["pg"] = None
                    if backends:
                        pg_seconds, gone = cpu.spent(backends, cpu.snapshot(database.backends()))
                        run.backends_gone += gone
                        result["pg"] = pg_seconds / result["requests"] * 1e6
                    answered[target.server] += result["requests"]
                    run.results[target.label].append(result)
                    if target.server == "redis":  # its counters expire with their window
                        run.redis_keys = max(run.redis_keys or 0, len(redis_store.keys()))
            # Requests still queued when wrk closed its connections are answered after it.
            time.sleep(1)
            for name, server in servers.items():
                if server.service:
                    run.counted[name] = server.counted()
        finally:
            for server in servers.values():
                server.stop()
        # After the servers stopped: their logs are complete.
        run.answered = {name: answered[name] for name in run.counted}
        run.logged = {name: servers[name].logged() for name in run.counted}
        for label, server in STORED.items():
            if label in run.results:
                run.records[label] = records(urls[server])
        for target in selected:
            if target.server in floors:
                run.floor_rows[target.label] = floor_rows(floors[target.server])
        return run


def floor_databases(needed: set[str], folder: Path, database: BenchDatabase | None) -> dict:
    """The floor servers' databases (FLOOR_DATABASE), each with its empty table made."""
    floors = {}
    if "floor-sqlite" in needed:
        floors["floor-sqlite"] = f"sqlite:///{folder / 'floor.sqlite3'}"
    if "floor-pg" in needed:
        floors["floor-pg"] = (
            sa.make_url(database.url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
    for url in floors.values():
        engine = _floor_engine(url)
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            kind = "blob" if engine.dialect.name == "sqlite" else "bytea"
            connection.exec_driver_sql(
                f"CREATE TABLE floor_writes (id text PRIMARY KEY, body {kind})"
            )
        engine.dispose()
    return floors


def _floor_engine(url: str) -> sa.Engine:
    """An engine on a floor's database (its URL is the driver's: psycopg's plain form)."""
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def floor_rows(url: str) -> int:
    engine = _floor_engine(url)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT count(*) FROM floor_writes").scalar_one()
    finally:
        engine.dispose()


def stored_assessment(base: str, key: str) -> str:
    """Store one assessment (for the GET target) and return its id."""
    request = urllib.request.Request(
        f"{base}/v1/assess",
        data=json.dumps(SELF_CARE_TECHNIQUE).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 201:
            raise BenchError(f"storing an assessment for the GET target: {response.status}")
        return json.load(response)["id"]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):>6.2f} {min(values):>5.2f}-{max(values):<5.2f}"


def report(run: Run, args: argparse.Namespace, seconds: int) -> bool:
    """Print the table, the targets and the checks; False if a check failed."""
    results = run.results
    summary = {
        label: {key: statistics.median(r[key] for r in rounds) for key in ("rps", "p50", "p99")}
        for label, rounds in results.items()
    }

    # Each round's ratio compares targets measured seconds apart, so the noise of a shared
    # machine cancels out better than in a ratio of medians taken over the whole run.
    def ratios(label: str, base: str = BARE) -> list[float]:
        return [r["rps"] / b["rps"] for r, b in zip(results[label], results[base], strict=True)]

    def total_cpu(result: dict) -> float:
        return result["cpu"] + (result["pg"] or 0.0)

    def cpu_ratios(label: str) -> list[float]:
        return [
            total_cpu(b) / total_cpu(r) for r, b in zip(results[label], results[BARE], strict=True)
        ]

    print(
        f"{args.rounds} alternating rounds x {seconds} s per target, {args.connections} "
        f"connections, 2 wrk threads; gunicorn {WORKERS} sync workers per server (the service: "
        "gunicorn.conf.py, production config, rate limits on, JSON request log to a file, "
        f"metrics on, fast path {'on' if FAST_PATH else 'off'})"
    )
    print(
        "medians over rounds; '÷ bare': median of the per-round ratios of requests/s, with their"
        " range; CPU: µs per request (utime+stime from /proc) of the workers and of the"
        " PostgreSQL backends of the run's database; 'CPU ÷': bare's CPU per request over the"
        " target's (workers + PostgreSQL), per round"
    )
    print(
        f"{'target':<34} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'÷ bare':>6} {'range':<11} "
        f"{'worker µs':>9} {'PG µs':>6} {'CPU ÷':>6} {'range':<11}"
    )
    for label, row in summary.items():
        rounds = results[label]
        pg = [r["pg"] for r in rounds if r["pg"] is not None]
        pg_text = f"{statistics.median(pg):.0f}" if pg else "-"
        print(
            f"{label:<34} {row['rps']:>7.0f} {row['p50']:>7.2f} {row['p99']:>7.2f} "
            f"{spread(ratios(label))} "
            f"{statistics.median(r['cpu'] for r in rounds):>9.0f} "
            f"{pg_text:>6} {spread(cpu_ratios(label))}"
        )
    verdicts: list[tuple[str, bool | None]] = []
    for label, (ratio, p99) in TARGETS.items():
        if label not in results:
            continue
        verdicts.append(
            (f"{label}: ÷ bare ≥ {ratio:.2f}", statistics.median(ratios(label)) >= ratio)
        )
        if p99 is not None:
            text = f"{label}: p99 ≤ {p99:g} ms at {P99_CONNECTIONS} connections"
            judged = args.connections == P99_CONNECTIONS
            verdicts.append((text, summary[label]["p99"] <= p99 if judged else None))
    if ESCALATION in results and ASSESS in results:
        verdicts.append(
            (
                "escalation-check faster than assess",
                statistics.median(ratios(ESCALATION, ASSESS)) > 1,
            )
        )
    if INTERVIEW in results and ESCALATION in results:
        # The interview screens the report as the escalation check does, then chooses a
        # question: it should cost at most about twice as much.
        verdicts.append(
            (
                "interview/next at least half the throughput of escalation-check",
                statistics.median(ratios(INTERVIEW, ESCALATION)) >= 0.5,
            )
        )
    for text, met in verdicts:
        print(f"{'n/a' if met is None else 'met' if met else 'NOT met':>8}  {text}")
    for stored, floor in FLOORS.items():
        if stored in results and floor in results:
            over_floor = ratios(stored, floor)
            print(
                f"{'':>8}  {stored} ÷ its floor: {statistics.median(over_floor):.2f} "
                f"({min(over_floor):.2f}-{max(over_floor):.2f})"
            )

    ok = True
    print("checks:")
    # wrk counts the requests it completed in the rounds (not the warm-up); each stored
    # assessment is a row that holds its plan (an exercise prescription). The
    # warm-up's records, and requests cut off when a round ends (stored, not counted), can
    # only add rows: each kind may exceed the count, never fall short of it.
    for label, stored in run.records.items():
        # Targets that store in one database are checked together against it.
        answered = sum(
            r["requests"]
            for other in run.records
            if STORED[other] == STORED[label]
            for r in results[other]
        )
        assessments, plans = stored
        fine = min(assessments, plans) >= answered
        ok &= fine
        print(
            f"  {'ok' if fine else 'FAILED':>6}  {label}: {answered} requests answered 2xx in "
            f"the rounds (with the other targets storing there); in the database (warm-up "
            f"included): {assessments} assessments, "
            f"{plans} holding their plan"
        )
    # Requests answered by a server (warm-ups included) that its log and its metrics missed
    # mean the benchmark did not measure the configuration it claims to.
    for name, answered in run.answered.items():
        lines, problems = run.logged[name]
        fine = lines >= answered and run.counted[name] >= answered
        ok &= fine
        print(
            f"  {'ok' if fine else 'FAILED':>6}  {name} server: {answered} 2xx answered by wrk; "
            f"{lines} request lines in its log, {run.counted[name]} in its metrics; "
            f"{len(problems)} warning/error lines"
            + (f" (first: {problems[0]})" if problems else "")
        )
    for label, rows in run.floor_rows.items():
        answered = sum(r["requests"] for r in results[label])
        fine = rows >= answered
        ok &= fine
        print(
            f"  {'ok' if fine else 'FAILED':>6}  {label}: {answered} requests answered 2xx in "
            f"the rounds; {rows} rows written (warm-up included)"
        )
    if run.redis_keys is not None:
        fine = run.redis_keys > 0
        ok &= fine
        print(
            f"  {'ok' if fine else 'FAILED':>6}  Redis limits: up to {run.redis_keys} counters "
            "under the run's prefix right after a round (all removed at the end)"
        )
    if run.workers_gone or run.backends_gone:
        print(
            f"  note: {run.workers_gone} workers and {run.backends_gone} PostgreSQL backends "
            "exited during rounds; their CPU time in those rounds is missing"
        )
    return ok


def main() -> int:
    global WORKERS, FAST_PATH  # one setting for every server the run starts
    started = time.monotonic()
    names = [target.name for target in ALL_TARGETS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=int, default=40, help="seconds of load per target, over all rounds"
    )
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per target")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 3 rounds of 2 s (overrides both)"
    )
    parser.add_argument(
        "--only",
        help=f"targets to measure, comma-separated, of: {', '.join(names)} (bare is always)",
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_URL,
        help="a PostgreSQL server (any database on it) where the run may create its own",
    )
    parser.add_argument(
        "--redis-url", default=REDIS_URL, help="the Redis server for the Redis rate limits"
    )
    parser.add_argument("--workers", type=int, default=WORKERS, help="gunicorn workers per server")
    parser.add_argument(
        "--no-fast-path",
        action="store_true",
        help="serve the service without its fast path (POPLITEAL_FAST_PATH=false)",
    )
    args = parser.parse_args()
    WORKERS = args.workers
    FAST_PATH = not args.no_fast_path
    if args.quick:
        args.duration, args.rounds = 6, 3
    if args.rounds < 1 or args.duration < args.rounds or args.connections < 2:
        parser.error("need --rounds ≥ 1, --duration ≥ --rounds, --connections ≥ 2 (wrk threads)")
    wanted = set(names) if args.only is None else {"bare", *args.only.replace(" ", "").split(",")}
    if unknown := wanted - set(names):
        parser.error(f"unknown targets {', '.join(sorted(unknown))}; known: {', '.join(names)}")
    selected = [target for target in ALL_TARGETS if target.name in wanted]
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    seconds = args.duration // args.rounds

    # Ctrl-C, a plain `kill` or a closed terminal all end the run through the finally clauses
    # that stop the servers, drop the database and remove the Redis keys.
    def interrupted(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)
    try:
        with contextlib.ExitStack() as stack:
            database = redis_store = None
            if any(target.postgres for target in selected):
                database = stack.enter_context(BenchDatabase(args.postgres_url))
            if any(target.server == "redis" for target in selected):
                redis_store = stack.enter_context(BenchRedis(args.redis_url))
            run = measure(args, seconds, selected, database, redis_store)
    except (BenchError, subprocess.SubprocessError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped, database dropped, Redis keys removed", file=sys.stderr)
        return 130
    ok = report(run, args, seconds)
    print(f"run took {time.monotonic() - started:.0f} s")
    if not ok:
        print("benchmark failed: a check above failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
