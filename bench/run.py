"""HTTP benchmark: Popliteal next to a bare Flask app, side by side in one run.

    .venv/bin/python bench/run.py [--duration 30] [--rounds 10] [--connections 16]

Starts, on free loopback ports, the real service and a bare Flask app (bench/bare_app.py, which
parses the same JSON body and returns a small dict), each under gunicorn with two sync workers.
Then loads the targets in alternating rounds with wrk (Debian package `wrk`, 2 threads), so
that noise on a shared machine hits all of them alike: --duration seconds of load per target,
split into --rounds rounds of whole seconds. Prints requests/s, p50 and p99 per target (median
over rounds), the ratio to bare Flask (the median of the per-round ratios, with their range)
and whether the targets hold. Every response must be a 2xx or the run fails (exit 1).
Everything listens on 127.0.0.1 and every server stops when the run ends, also on Ctrl-C.
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

from service.examples import SELF_CARE_TECHNIQUE  # noqa: E402

TARGET_RATIO = 0.70
TARGET_P99_MS = 15.0
BARE, ASSESS, ESCALATION = "bare Flask", "POST /v1/assess", "POST /v1/escalation-check"

# wrk runs response() in each thread's own Lua state; done() runs in the main one, so it adds
# up the threads' counters through thread:get.
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
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


def start(app: str, port: int, cwd: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
        "--worker-class", "sync", "--log-level", "warning", "--no-control-socket", app,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POPLITEAL_CONFIG": "production"}
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
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": to_ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)),
        "p99": to_ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)),
    }


def measure(args: argparse.Namespace, seconds: int) -> dict[str, list[dict[str, float]]]:
    with tempfile.TemporaryDirectory(prefix="popliteal-bench-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA % json.dumps(SELF_CARE_TECHNIQUE))
        bare_port, service_port = free_port(), free_port()
        servers = []
        try:
            servers.append(start("bare_app:app", bare_port, ROOT / "bench"))
            servers.append(start("service.wsgi:app", service_port, ROOT))
            wait_ready(f"http://127.0.0.1:{bare_port}/healthz", servers[0])
            wait_ready(f"http://127.0.0.1:{service_port}/healthz", servers[1])
            targets = {
                BARE: f"http://127.0.0.1:{bare_port}/v1/assess",
                ASSESS: f"http://127.0.0.1:{service_port}/v1/assess",
                ESCALATION: f"http://127.0.0.1:{service_port}/v1/escalation-check",
            }
            for url in targets.values():  # warm up every worker
                run_wrk(url, script, 1, args.connections)
            results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            for number in range(1, args.rounds + 1):
                print(f"round {number}/{args.rounds}", file=sys.stderr, flush=True)
                for name, url in targets.items():
                    results[name].append(run_wrk(url, script, seconds, args.connections))
            return results
        finally:
            for server in servers:
                stop(server)


def report(results: dict[str, list[dict[str, float]]], args, seconds: int) -> None:
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
        "connections, 2 wrk threads, gunicorn 2 sync workers each; medians over rounds"
    )
    print(f"{'target':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'÷ bare':>8} {'range':>12}")
    for name, row in summary.items():
        spread = ratios(name)
        print(
            f"{name:<28} {row['rps']:>9.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} "
            f"{statistics.median(spread):>8.2f} {min(spread):>5.2f}-{max(spread):<5.2f}"
        )
    verdicts = {}
    for name in (ASSESS, ESCALATION):
        short = name.removeprefix("POST /v1/")
        verdicts[f"{short} ÷ bare ≥ {TARGET_RATIO}"] = (
            statistics.median(ratios(name)) >= TARGET_RATIO
        )
        verdicts[f"{short} p99 ≤ {TARGET_P99_MS:g} ms"] = summary[name]["p99"] <= TARGET_P99_MS
    verdicts["escalation-check faster than assess"] = (
        statistics.median(ratios(ESCALATION, ASSESS)) > 1
    )
    for text, met in verdicts.items():
        print(f"{'met' if met else 'NOT met':>8}  {text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=int, default=30, help="seconds of load per target, over all rounds"
    )
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per target")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
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
        results = measure(args, seconds)
    except (BenchError, subprocess.SubprocessError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    report(results, args, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
