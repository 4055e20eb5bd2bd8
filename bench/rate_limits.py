"""What the per-key rate limits cost a request: limits off, in memory, on Redis, in one process.

    .venv/bin/python bench/rate_limits.py [--rounds 40] [--batch 50] [--redis-url redis://...]

Three apps of the production configuration on one SQLite file (the JSON request log off), each
serving POST /v1/assess with "store": false through Flask's test client, with the benchmark's
two limits raised out of reach ("100000000 per minute;10000000 per second"). They take turns
in short batches, so that a noisy machine slows all three alike; per round, the CPU time per
request (this process's, time.process_time) of "memory" and "Redis" minus that of "off" is
paired, and the median of those differences printed with its quartiles. Also counted: the
commands sent to Redis per request (redis-py's send_packed_command, one per round trip), and
the Redis server's own microseconds per EVALSHA (INFO commandstats; every client's).
The counters go under a key prefix of the run's own and expire within the minute.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from service import create_app, examples  # noqa: E402
from service.config import ProductionConfig  # noqa: E402
from service.state import state  # noqa: E402

LIMITS = "100000000 per minute;10000000 per second"


def _app(database_url: str, enabled: bool, storage_uri: str):
    settings = {
        "DATABASE_URL": database_url,
        "RATELIMIT_ENABLED": enabled,
        "RATELIMIT_APPLICATION": LIMITS,
        "RATELIMIT_STORAGE_URI": storage_uri,
        "RATELIMIT_KEY_PREFIX": f"popliteal-bench-{secrets.token_hex(4)}",
    }
    return create_app(type("BenchConfig", (ProductionConfig,), settings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=50, help="requests per app per round")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    logging.getLogger("popliteal.access").disabled = True

    sent = [0]
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent[0] += 1
        return original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = counting
    with tempfile.TemporaryDirectory(prefix="popliteal-bench-") as folder:
        database_url = f"sqlite:///{folder}/limits.sqlite3"
        apps = {
            "off": _app(database_url, False, "memory://"),
            "memory": _app(database_url, True, "memory://"),
            "Redis": _app(database_url, True, args.redis_url),
        }
        storage = state(apps["off"]).storage
        storage.upgrade()
        key, _ = storage.keys.create("bench-rate-limits")
        clients = {}
        for name, app in apps.items():
            clients[name] = app.test_client()
            clients[name].environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        body = {**examples.SELF_CARE_TECHNIQUE, "store": False}

        def batch(name: str) -> float:
            client = clients[name]
            started = time.process_time()
            for _ in range(args.batch):
                answer = client.post("/v1/assess", json=body)
                assert answer.status_code == 200, answer.status_code
            return (time.process_time() - started) / args.batch * 1e6

        for name in clients:  # warm up: key cache, script loaded
            batch(name)
        admin = redis.Redis.from_url(args.redis_url)
        script_before = admin.info("commandstats").get("cmdstat_evalsha", {})
        cpu = {name: [] for name in clients}
        redis_sent = 0
        for _ in range(args.rounds):
            for name in clients:
                before = sent[0]
                cpu[name].append(batch(name))
                if name == "Redis":
                    redis_sent += sent[0] - before
        script_after = admin.info("commandstats").get("cmdstat_evalsha", {})
        admin.close()
        for app in apps.values():
            state(app).storage.dispose()

    off = cpu["off"]
    print(
        f"{args.rounds} rounds x {args.batch} requests per app; CPU µs per request of this "
        f"process; limits off: median {statistics.median(off):.0f} "
        f"({min(off):.0f}-{max(off):.0f})"
    )
    for name in ("memory", "Redis"):
        differences = [value - base for value, base in zip(cpu[name], off, strict=True)]
        low, median, high = statistics.quantiles(differences, n=4)
        share = median / statistics.median(off) * 100
        print(f"  {name:6} +{median:5.0f} µs (quartiles {low:.0f} to {high:.0f}), +{share:.1f} %")
    print(f"  Redis round trips per request: {redis_sent / (args.rounds * args.batch):.2f}")
    calls = script_after.get("calls", 0) - script_before.get("calls", 0)
    if calls:
        usec = script_after.get("usec", 0) - script_before.get("usec", 0)
        print(f"  Redis server: {usec / calls:.1f} µs per EVALSHA (every client's)")


if __name__ == "__main__":
    main()
