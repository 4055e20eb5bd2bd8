"""HTTP benchmark: Popliteal next to a bare Flask app, side by side in one run.

    .venv/bin/python bench/run.py [--seconds 3] [--rounds 10] [--connections 16]

Starts, on free loopback ports, the real service and a bare Flask app (bench/bare_app.py, which
parses the same JSON body and returns a small dict), each under gunicorn with two sync workers.
Then loads the targets in alternating rounds with wrk (Debian package `wrk`), so that noise on
a shared machine hits all of them alike, and prints requests/s, p50 and p99 per target (median
over rounds) and the ratio to bare Flask (the median of the per-round ratios, with their
range). Every response must be a 2xx or the run fails.
Everything listens on 127.0.0.1 and stops when the run ends.
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

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[%s]]
local failures = 0
function response(status, headers, body)
  if status < 200 or status > 299 then failures = failures + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("FAILURES %%d\\n", failures))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(app: str, port: int, cwd: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
        "--log-level", "warning", app,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def to_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, script: Path, seconds: float, connections: int) -> dict[str, float]:
    command = [
        "wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "5s",
        "-s", str(script), url,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    failures = int(re.search(r"FAILURES (\d+)", output).group(1))
    errors = re.search(r"Socket errors: (.*)", output)
    if failures or errors:
        raise SystemExit(
            f"{url}: {failures} non-2xx responses; {errors.group(0) if errors else ''}"
        )
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": to_ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)),
        "p99": to_ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3, help="length of one wrk round")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per target")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    body = json.dumps(SELF_CARE_TECHNIQUE)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA % body)
        bare_port, service_port = free_port(), free_port()
        servers = [
            start("bare_app:app", bare_port, ROOT / "bench"),
            start("service.wsgi:app", service_port, ROOT),
        ]
        try:
            wait_ready(f"http://127.0.0.1:{bare_port}/healthz", servers[0])
            wait_ready(f"http://127.0.0.1:{service_port}/healthz", servers[1])
            targets = {
                "bare Flask": f"http://127.0.0.1:{bare_port}/v1/assess",
                "POST /v1/assess": f"http://127.0.0.1:{service_port}/v1/assess",
                "POST /v1/escalation-check": f"http://127.0.0.1:{service_port}/v1/escalation-check",
            }
            for url in targets.values():  # warm up every worker
                run_wrk(url, script, 1, args.connections)
            results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, url in targets.items():
                    results[name].append(run_wrk(url, script, args.seconds, args.connections))
        finally:
            for server in servers:
                stop(server)

    summary = {
        name: {key: statistics.median(r[key] for r in rounds) for key in ("rps", "p50", "p99")}
        for name, rounds in results.items()
    }
    # Each round's ratio compares targets measured seconds apart, so the noise of a shared
    # machine cancels out better than in a ratio of medians taken over the whole run.
    ratios = {
        name: [r["rps"] / b["rps"] for r, b in zip(rounds, results["bare Flask"], strict=True)]
        for name, rounds in results.items()
    }
    print(
        f"{args.rounds} alternating rounds x {args.seconds:g} s, {args.connections} connections, "
        "gunicorn 2 sync workers each; medians over rounds"
    )
    print(f"{'target':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'÷ bare':>8} {'range':>12}")
    for name, row in summary.items():
        low, high = min(ratios[name]), max(ratios[name])
        print(
            f"{name:<28} {row['rps']:>9.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} "
            f"{statistics.median(ratios[name]):>8.2f} {low:>5.2f}-{high:<5.2f}"
        )
    assess = summary["POST /v1/assess"]
    assess_ratio = statistics.median(ratios["POST /v1/assess"])
    verdicts = {
        f"assess ÷ bare ≥ {TARGET_RATIO}": assess_ratio >= TARGET_RATIO,
        f"assess p99 ≤ {TARGET_P99_MS:g} ms": assess["p99"] <= TARGET_P99_MS,
        "escalation-check faster than assess": statistics.median(
            c["rps"] / a["rps"]
            for c, a in zip(
                results["POST /v1/escalation-check"], results["POST /v1/assess"], strict=True
            )
        )
        > 1,
    }
    for text, met in verdicts.items():
        print(f"{'met' if met else 'NOT met':>8}  {text}")


if __name__ == "__main__":
    main()
