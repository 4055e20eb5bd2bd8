"""gunicorn settings: ``gunicorn --config gunicorn.conf.py service.wsgi:app``.

Used by ./scripts/run, the Dockerfile, compose and the Kubernetes manifests. Every setting can
be changed from the environment:

    HOST, PORT                   where the API listens (default 127.0.0.1:8000)
    WEB_CONCURRENCY              worker processes (default: 2 per CPU the process may use, + 1)
    GUNICORN_TIMEOUT             seconds a request may take before its worker is replaced (30)
    GUNICORN_GRACEFUL_TIMEOUT    seconds in-flight requests get to finish on SIGTERM (25)
    GUNICORN_MAX_REQUESTS        recycle a worker after this many requests (0: never)
    GUNICORN_ACCESS_LOG          gunicorn's own access line as well as the service's (false)
    POPLITEAL_LOG_LEVEL          INFO
    POPLITEAL_METRICS_HOST       where Prometheus metrics are served (default: HOST)
    POPLITEAL_METRICS_PORT       9464; 0 turns the metrics endpoint off
    PROMETHEUS_MULTIPROC_DIR     where workers leave their samples (default: a new folder
                                 under the temporary directory; emptied at start)
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile


def _cpus_available() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup (container) CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    try:
        with open("/sys/fs/cgroup/cpu.max") as limit:
            quota, period = limit.read().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


# Must be set before prometheus_client is first imported (by the service, below): it decides
# there whether samples go to per-process files. Kept across SIGHUP reloads, which re-read
# this file in the same master process.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="popliteal-metrics-")
    # Removed at exit by this master only (a re-executed master inherits the variables).
    os.environ["POPLITEAL_METRICS_DIR_OWNER"] = str(os.getpid())

from service.config import env_flag  # noqa: E402 - after the metrics folder, like the next
from service.logs import GunicornLogger, logging_config  # noqa: E402 - needs the line above

host = os.environ.get("HOST", "127.0.0.1")
bind = [f"{host}:{os.environ.get('PORT', '8000')}"]

# Sync workers: requests are short and CPU-bound (rule evaluation, JSON), with one database
# round trip; one extra worker per CPU covers the time spent waiting on that round trip.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * _cpus_available() + 1)
worker_class = "sync"

# A request that runs longer than this has gone wrong (the slowest real one takes a few
# milliseconds; a database statement is cancelled at POPLITEAL_DB_STATEMENT_TIMEOUT_MS): the
# worker is replaced and the client gets a 502 from the proxy rather than waiting forever.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM workers stop accepting and finish what they hold, for this long at most. Keep it
# below the orchestrator's grace period (Kubernetes: terminationGracePeriodSeconds).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
keepalive = 5

# Rules, schemas and the OpenAPI document are built once in the master and shared by the
# workers' memory pages, which also makes a worker's restart quick. A SIGHUP then restarts the
# workers on the same code; a code upgrade is a new master (a rolling restart).
preload_app = env_flag("GUNICORN_PRELOAD", True)
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10

# The heartbeat file lives in memory: the root file system may be read-only, and a disk-backed
# temporary folder can stall the heartbeat and get healthy workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# Nothing manages the server through a socket; the file system may be read-only.
control_socket_disable = True

# Every line is JSON on stdout, gunicorn's own included.
logger_class = GunicornLogger
_access_log = env_flag("GUNICORN_ACCESS_LOG", False)
logconfig_dict = logging_config(
    os.environ.get("POPLITEAL_LOG_LEVEL", "INFO").upper(), access_log=_access_log
)
accesslog = "-" if _access_log else None

metrics_host = os.environ.get("POPLITEAL_METRICS_HOST", host)
metrics_port = int(os.environ.get("POPLITEAL_METRICS_PORT", "9464"))


def on_starting(server) -> None:
    # Samples left by an earlier run's workers would be summed into this run's.
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))
    server.log.info(f"metrics samples in {folder}")


def when_ready(server) -> None:
    """Serve the sum of every worker's metrics from the master, on the internal port."""
    server.popliteal_metrics = None
    if not metrics_port:
        return
    from prometheus_client import start_http_server

    from service.metrics import multiprocess_registry

    try:
        httpd, _thread = start_http_server(metrics_port, metrics_host, multiprocess_registry())
    except OSError as error:
        # The API stays up without its metrics rather than not at all.
        server.log.error(f"metrics not served on {metrics_host}:{metrics_port}: {error}")
        return
    server.popliteal_metrics = httpd
    server.log.info(f"metrics on http://{metrics_host}:{metrics_port}/metrics")


def post_fork(server, worker) -> None:
    # The metrics listener belongs to the master; a worker must not hold its socket open.
    httpd = getattr(server, "popliteal_metrics", None)
    if httpd is not None:
        httpd.socket.close()
    # Connections must never be shared across processes: the preloaded app's pool is
    # forgotten (not closed: the master's sockets are not the worker's to close).
    app = getattr(server.app, "callable", None)
    if app is not None:
        app.extensions["popliteal"]["storage"].engine.dispose(close=False)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    httpd = getattr(server, "popliteal_metrics", None)
    if httpd is not None:
        httpd.shutdown()
    if os.environ.get("POPLITEAL_METRICS_DIR_OWNER") == str(os.getpid()):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
