"""HTTP benchmark: Popliteal next to a bare Flask app, side by side in one run.

    .venv/bin/python bench/run.py [--duration 40] [--rounds 10] [--connections 16]
                                  [--postgres-url postgresql+psycopg://postgres@127.0.0.1/test]

Starts, on free loopback ports, each under gunicorn with two sync workers:
- a bare Flask app (bench/bare_app.py: parses the same JSON body, returns a small dict);
- the service on a throw-away SQLite file, for the stateless targets: POST /v1/assess with
  "store": false, and POST /v1/escalation-check;
- the service on a throw-away PostgreSQL database (created on the server at --postgres-url or
  BENCH_POSTGRES_URL, migrated, dropped at the end), for POST /v1/assess stored: each request
  writes the assessment and its plan.
Both services check an API key on every request (production config: cached for 10 s); rate
limits are off, since the benchmark measures the service, not the limiter's budget.

Then loads the targets in alternating rounds with wrk (Debian package `wrk`, 2 threads), so
that noise on a shared machine hits all of them alike: --duration seconds of load per target,
split into --rounds rounds of whole seconds. Prints requests/s, p50 and p99 per target (median
over rounds), the ratio to bare Flask (the median of the per-round ratios, with their range),
whether the targets hold, and how many records the stored target wrote. Every response must
be a 2xx or the run fails (exit 1). Everything listens on 127.0.0.1 and every server stops, and
the database is dropped, when the run ends, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
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
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from service.examples import SELF_CARE_TECHNIQUE  # noqa: E402
from service.storage import Storage  # noqa: E402
from service.storage.records import ASSESSMENT, EXERCISE_PRESCRIPTION  # noqa: E402

BARE = "bare Flask"
ASSESS = "POST /v1/assess (store: false)"
STORED = "POST /v1/assess (stored, PG)"
ESCALATION = "POST /v1/escalation-check"
# Per target: (least throughput as a share of bare Flask's, largest p99 in ms).
TARGETS = {ASSESS: (0.70, 15.0), ESCALATION: (0.70, 15.0), STORED: (0.50, 25.0)}
# gunicorn sync workers per server (--workers).
WORKERS = 2
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

# wrk runs response() in each thread's own Lua state; done() runs in the main one, so it adds
# up the threads' counters through thread:get.
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
wrk.body = [==[%s]==]
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
  io.write(string.format("NON_2XX %%d\\n", total))
end
"""


class BenchError(Exception):
    """The run cannot give trustworthy numbers."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(app: str, port: int, cwd: Path, **environment: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS),
        "--worker-class", "sync", "--log-level", "warning", "--no-control-socket", app,
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "POPLITEAL_CONFIG": "production",
        "RATELIMIT_ENABLED": "false",
        **environment,
    }
    # A session of its own, so that the whole gunicorn tree can be stopped at once.
    return subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"{url} did not answer 200 within {timeout:g} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


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

    def records(self) -> dict[str, int]:
        """How many records of each kind the database holds."""
        engine = sa.create_engine(self.url)
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT kind, count(*) FROM records GROUP BY kind"))
            counts = dict(rows.all())
        engine.dispose()
        return counts

    def __exit__(self, *exc_info) -> None:
        with self.admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def measure(args: argparse.Namespace, seconds: int, database: BenchDatabase):
    with tempfile.TemporaryDirectory(prefix="popliteal-bench-") as tmp:
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        stateless_key, stored_key = prepared(sqlite_url), prepared(database.url)
        scripts = {}
        for name, key, body in (
            (BARE, "", SELF_CARE_TECHNIQUE),
            (ASSESS, stateless_key, {**SELF_CARE_TECHNIQUE, "store": False}),
            (ESCALATION, stateless_key, SELF_CARE_TECHNIQUE),
            (STORED, stored_key, SELF_CARE_TECHNIQUE),
        ):
            scripts[name] = Path(tmp) / f"{len(scripts)}.lua"
            scripts[name].write_text(LUA % (key, json.dumps(body)))
        ports = {name: free_port() for name in ("bare", "stateless", "stored")}
        servers = []
        try:
            servers.append(start("bare_app:app", ports["bare"], ROOT / "bench"))
            servers.append(
                start("service.wsgi:app", ports["stateless"], ROOT, DATABASE_URL=sqlite_url)
            )
            servers.append(
                start("service.wsgi:app", ports["stored"], ROOT, DATABASE_URL=database.url)
            )
            for server, port in zip(servers, ports.values(), strict=True):
                wait_ready(f"http://127.0.0.1:{port}/healthz", server)
            targets = {
                BARE: f"http://127.0.0.1:{ports['bare']}/v1/assess",
                ASSESS: f"http://127.0.0.1:{ports['stateless']}/v1/assess",
                ESCALATION: f"http://127.0.0.1:{ports['stateless']}/v1/escalation-check",
                STORED: f"http://127.0.0.1:{ports['stored']}/v1/assess",
            }
            for name, url in targets.items():  # warm up every worker
                run_wrk(url, scripts[name], 1, args.connections)
            results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            for number in range(1, args.rounds + 1):
                print(f"round {number}/{args.rounds}", file=sys.stderr, flush=True)
                for name, url in targets.items():
                    results[name].append(run_wrk(url, scripts[name], seconds, args.connections))
            return results
        finally:
            for server in servers:
                stop(server)


def report(
    results: dict[str, list[dict[str, float]]], args, seconds: int, stored: dict[str, int]
) -> bool:
    summary = {
        name: {key: statistics.median(r[key] for r in rounds) for key in ("rps", "p50", "p99")}
        for name, rounds in results.items()
    }

    # Each round's ratio compares targets measured seconds apart, so the noise of a shared
    # machine cancels out better than in a ratio of medians taken over the whole run.
    def ratios(name: str, base: str = BARE) -> list[float]:
        return [r["rps"] / b["rps"] for r, b in zip(results[name], results[base], strict=True)]

    print(
        f"{args.rounds} alternating rounds x {seconds} s per target, {args.connections} "
        f"connections, 2 wrk threads, gunicorn {WORKERS} sync workers each; medians over rounds"
    )
    print(f"{'target':<30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'÷ bare':>8} {'range':>12}")
    for name, row in summary.items():
        spread = ratios(name)
        print(
            f"{name:<30} {row['rps']:>9.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} "
            f"{statistics.median(spread):>8.2f} {min(spread):>5.2f}-{max(spread):<5.2f}"
        )
    verdicts = {}
    for name, (ratio, p99) in TARGETS.items():
        short = name.removeprefix("POST /v1/")
        verdicts[f"{short} ÷ bare ≥ {ratio}"] = statistics.median(ratios(name)) >= ratio
        verdicts[f"{short} p99 ≤ {p99:g} ms"] = summary[name]["p99"] <= p99
    verdicts["escalation-check faster than assess"] = (
        statistics.median(ratios(ESCALATION, ASSESS)) > 1
    )
    for text, met in verdicts.items():
        print(f"{'met' if met else 'NOT met':>8}  {text}")
    # wrk counts the requests it completed in the rounds (not the warm-up); each stored
    # assessment is two rows, the assessment and its plan (an exercise prescription). The
    # warm-up's records, and requests cut off when a round ends (stored, not counted), can
    # only add rows: each kind may exceed the count, never fall short of it.
    answered = sum(r["requests"] for r in results[STORED])
    assessments, plans = stored.get(ASSESSMENT, 0), stored.get(EXERCISE_PRESCRIPTION, 0)
    print(
        f"stored target: {answered} requests answered 2xx in the rounds; in the database "
        f"(warm-up included): {assessments} assessments, {plans} exercise prescriptions, "
        f"{sum(stored.values())} records"
    )
    return min(assessments, plans) >= answered


def main() -> int:
    global WORKERS  # one setting for every server the run starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=int, default=40, help="seconds of load per target, over all rounds"
    )
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per target")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_URL,
        help="a PostgreSQL server (any database on it) where the run may create its own",
    )
    parser.add_argument("--workers", type=int, default=WORKERS, help="gunicorn workers per server")
    args = parser.parse_args()
    WORKERS = args.workers
    if args.rounds < 1 or args.duration < args.rounds or args.connections < 2:
        parser.error("need --rounds ≥ 1, --duration ≥ --rounds, --connections ≥ 2 (wrk threads)")
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    seconds = args.duration // args.rounds

    # Ctrl-C, a plain `kill` or a closed terminal all end the run through the finally that
    # stops the servers.
    def interrupted(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)
    try:
        with BenchDatabase(args.postgres_url) as database:
            results = measure(args, seconds, database)
            stored = database.records()
    except (BenchError, subprocess.SubprocessError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped, database dropped", file=sys.stderr)
        return 130
    if not report(results, args, seconds, stored):
        print("benchmark failed: fewer records stored than 2xx answered", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
