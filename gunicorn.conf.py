"""gunicorn settings: ``gunicorn --config gunicorn.conf.py service.wsgi:app``.

Used by ./scripts/run, the Dockerfile, compose and the Kubernetes manifests. Every setting can
be changed from the environment:

    HOST, PORT                   where the API listens (default 127.0.0.1:8000)
    WEB_CONCURRENCY              worker processes (default: 1 per CPU the process may use and
                                 1 more; see default_workers)
    GUNICORN_TIMEOUT             seconds a request may take before its worker is replaced (30)
    GUNICORN_GRACEFUL_TIMEOUT    seconds in-flight requests get to finish on SIGTERM (25)
    GUNICORN_MAX_REQUESTS        recycle a worker after this many requests (0: never)
    GUNICORN_ACCESS_LOG          gunicorn's own access line as well as the service's (false)
    POPLITEAL_LOG_LEVEL          INFO
    POPLITEAL_METRICS_HOST       where Prometheus metrics are served (default: HOST)
    POPLITEAL_METRICS_PORT       9464; 0 turns the metrics endpoint off
    PROMETHEUS_MULTIPROC_DIR     where workers leave their samples (default: a new folder
                                 under the temporary directory, removed at exit, or at the
                                 next start if its master was killed); emptied at start
    POPLITEAL_DRAIN_SECONDS      on SIGTERM, how long to keep serving with /readyz at 503
                                 before gunicorn's graceful stop (5; 0: stop at once)

Stopping (SIGTERM, as docker, compose and Kubernetes send it; SIGINT and SIGQUIT still stop at
once, and a second SIGTERM ends the drain early):
1. drain: for POPLITEAL_DRAIN_SECONDS every request is still served, but /readyz answers 503
   (with Retry-After) so that a load balancer or orchestrator stops sending here;
2. gunicorn's graceful stop: the listening socket is closed, each worker finishes the request
   it holds (within GUNICORN_GRACEFUL_TIMEOUT);
3. before it exits, each worker answers the connections still queued on the socket (accepted
   by the kernel, never by a worker) with 503 and Retry-After: closing the socket would
   otherwise reset them.
Workers also stop when their master dies (killed, crashed): see _exit_with_the_master.
"""

from __future__ import annotations

import ctypes
import math
import mmap
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_metrics_folders(own: str) -> None:
    """Default metrics folders (named after their master's pid) whose master is gone: one that
    was killed or crashed never ran on_exit, and its folder would stay in the temporary
    directory (in a pod, a memory-backed emptyDir that outlives container restarts) for good.
    The same pid as this process's is stale too: a container's master is always pid 1."""
    parent = os.path.dirname(own)
    for entry in os.scandir(parent):
        found = re.fullmatch(r"popliteal-metrics-(\d+)-\w+", entry.name)
        if not found or entry.path == own:
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_uid != os.geteuid():
                continue
        except OSError:
            continue
        pid = int(found[1])
        if pid == os.getpid() or not _alive(pid):
            shutil.rmtree(entry.path, ignore_errors=True)


# Must be set before prometheus_client is first imported (by the service, below): it decides
# there whether samples go to per-process files. Kept across SIGHUP reloads, which re-read
# this file in the same master process.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix=f"popliteal-metrics-{os.getpid()}-"
    )
    # Removed at exit by this master only (a re-executed master inherits the variables).
    os.environ["POPLITEAL_METRICS_DIR_OWNER"] = str(os.getpid())
    _remove_stale_metrics_folders(os.environ["PROMETHEUS_MULTIPROC_DIR"])

from service.config import env_flag  # noqa: E402 - after the metrics folder, like the next
from service.logs import GunicornLogger, logging_config  # noqa: E402 - needs the line above

host = os.environ.get("HOST", "127.0.0.1")
bind = [f"{host}:{os.environ.get('PORT', '8000')}"]


def default_workers(cpus: int) -> int:
    """Sync workers when WEB_CONCURRENCY is not set: one per CPU, and one more.

    Chosen by measurement (bench/run.py, 2 CPUs shared with the load generator, 2 against 3
    workers for the service and for bare Flask alike, alternating pairs): the stored paths
    served more with 3 (medians of 3 pairs of 6 x 6 s rounds, 2 -> 3 workers: PostgreSQL
    0.25 -> 0.28 of bare Flask, better in every pair; SQLite 0.25 -> 0.26), and the unstored
    ones as much, within the runs' noise (assess 0.79 -> 0.82 in that set, 0.81 -> 0.79 in 3
    pairs of 8 x 6 s rounds; escalation 0.95 both); p99 unchanged (6-8 ms unstored). A stored
    request waits for its durable commit, and a response for the client to read it: the extra
    worker uses the CPU meanwhile. (Measured before the fast path, when a request was all CPU,
    workers beyond the CPUs only cost more CPU each: 1.5 ms a request with 2, 1.6 with 3, 2.1
    with 5.) Never fewer than two, so that a request stuck on the database or a slow client
    never leaves an instance with no worker to answer (its health checks included).
    """
    return cpus + 1  # a process has at least one CPU: two workers at least


workers = int(os.environ.get("WEB_CONCURRENCY") or default_workers(_cpus_available()))
worker_class = "sync"

# A request that runs longer than this has gone wrong (the slowest real one takes a few
# milliseconds; a database statement is cancelled at POPLITEAL_DB_STATEMENT_TIMEOUT_MS): the
# worker is replaced and the client gets a 502 from the proxy rather than waiting forever.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM workers stop accepting and finish what they hold, for this long at most. Keep it
# below the orchestrator's grace period (Kubernetes: terminationGracePeriodSeconds).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
keepalive = 5
# Before that, on SIGTERM, this long of serving as usual with /readyz at 503 (the module's
# docstring). The orchestrator's grace period must cover both: compose's stop_grace_period,
# Kubernetes' terminationGracePeriodSeconds (after its preStop sleep).
_drain_seconds = float(os.environ.get("POPLITEAL_DRAIN_SECONDS", "5"))
# What a client is told to wait, by /readyz while draining and by the answers to connections
# still queued at the end: a retry through a load balancer lands on another instance.
_RETRY_AFTER = "1"

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


# -- Stopping: the drain (master), and what workers do on the way out ---------------------------

# Where the master is in stopping, in one byte of memory it shares with its workers (made in
# on_starting, so before any fork, and kept on the arbiter: a SIGHUP re-reads this file).
_SERVING, _DRAINING, _STOPPING = 0, 1, 2
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _install_drain(server) -> None:
    """SIGTERM starts the drain; at its end (or at a second SIGTERM) gunicorn's own SIGTERM
    handling takes over: close the socket, let the workers finish, exit."""
    phase = server.popliteal_phase
    master = os.getpid()
    gunicorn_sigterm = signal.getsignal(signal.SIGTERM)

    def drain() -> None:
        server.log.info(
            f"SIGTERM: draining for {_drain_seconds:g} s (requests served, /readyz 503)"
        )
        time.sleep(_drain_seconds)
        if phase[0] == _DRAINING:
            server.log.info("drained: stopping (queued connections will be answered 503)")
            os.kill(master, signal.SIGTERM)

    def on_sigterm(signum, frame) -> None:
        if os.getpid() != master:  # a worker between fork and its own signal set-up
            gunicorn_sigterm(signum, frame)
            return
        if phase[0] == _SERVING and _drain_seconds > 0:
            phase[0] = _DRAINING
            threading.Thread(target=drain, name="popliteal-drain", daemon=True).start()
            return
        phase[0] = _STOPPING
        gunicorn_sigterm(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def _not_ready_while_draining(app, phase):
    """The app, but /readyz answers 503 once the master has begun to stop."""
    body = b'{"status":"not_ready","checks":{"shutdown":"draining"}}'
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Retry-After", _RETRY_AFTER),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    ]

    def readiness(environ, start_response):
        if phase[0] != _SERVING and environ.get("PATH_INFO") == "/readyz":
            start_response("503 Service Unavailable", headers)
            return [body]
        return app(environ, start_response)

    return readiness


def _shutting_down(environ, start_response):
    """The answer to a connection still queued when its worker leaves: nothing was done."""
    body = (
        b'{"type":"about:blank","title":"Service Unavailable","status":503,'
        b'"detail":"This instance is shutting down and did not process the request; retry '
        b'after the Retry-After header\'s seconds.","request_id":""}'
    )
    start_response(
        "503 Service Unavailable",
        [
            ("Content-Type", "application/problem+json"),
            ("Content-Length", str(len(body))),
            ("Retry-After", _RETRY_AFTER),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [body]


def _exit_with_the_master(worker) -> None:
    """A worker whose master is gone (SIGKILL, a crash) gets SIGTERM from the kernel: it
    finishes its request, answers what is queued (worker_exit) and exits, releasing the port.
    Otherwise it would go on serving unsupervised while no new master can bind the port.

    SIGTERM, not SIGKILL, so that the request in hand is finished. Nothing else would stop a
    request that hangs without its master (gunicorn's timeout is the master's), so from
    SIGTERM on a worker has GUNICORN_GRACEFUL_TIMEOUT seconds at most: then SIGALRM ends it,
    as the master's SIGKILL would have. PR_SET_PDEATHSIG follows the thread that forked the
    worker: gunicorn forks from the master's main thread, which lives as long as the master."""
    gunicorn_sigterm = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame) -> None:
        if getattr(worker, "popliteal_stop_by", None) is None:
            worker.popliteal_stop_by = time.monotonic() + graceful_timeout
            signal.alarm(max(1, graceful_timeout))
        gunicorn_sigterm(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn has it: requests go on undisturbed
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            worker.log.warning(f"no parent-death signal: {os.strerror(ctypes.get_errno())}")
    # The master may have died before the line above (or between fork and here).
    if os.getppid() != worker.ppid:
        os.kill(os.getpid(), signal.SIGTERM)


def _answer_the_queue(server, worker) -> None:
    """Connections the kernel accepted on the listening socket but no worker took are reset
    when the socket closes with the last worker. Take each and answer 503 (Retry-After) until
    none is left, then close this worker's copy of the socket."""
    from gunicorn.workers.sync import SyncWorker

    if not isinstance(worker, SyncWorker):
        return
    stop_by = getattr(worker, "popliteal_stop_by", None) or time.monotonic() + graceful_timeout
    worker.wsgi = _shutting_down
    answered = 0
    for listener in worker.sockets:
        try:
            listener.setblocking(False)
            while (left := stop_by - 1 - time.monotonic()) > 0:
                try:
                    client, address = listener.accept()
                except OSError:  # BlockingIOError: none queued
                    break
                client.settimeout(min(2.0, left))  # a client that never sends: not for long
                worker.handle(listener, client, address)
                answered += 1
        finally:
            listener.close()
    if answered:
        server.log.info(f"answered {answered} queued connections 503 on the way out")


def on_starting(server) -> None:
    server.popliteal_phase = mmap.mmap(-1, 1)  # shared with the workers, zero: _SERVING
    # Samples left by an earlier run's workers would be summed into this run's.
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))
    server.log.info(f"metrics samples in {folder}")


def when_ready(server) -> None:
    """Drain on SIGTERM; serve the sum of every worker's metrics from the master, on the
    internal port."""
    _install_drain(server)
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
    worker.popliteal_phase = server.popliteal_phase


def post_worker_init(worker) -> None:
    # After gunicorn's own signal handlers (init_process), which these wrap.
    worker.wsgi = _not_ready_while_draining(worker.wsgi, worker.popliteal_phase)
    _exit_with_the_master(worker)


def worker_exit(server, worker) -> None:
    # The socket closes with this worker when the master is stopping or gone; not when the
    # worker alone is replaced (SIGHUP, max_requests): the others take the queue then.
    phase = getattr(worker, "popliteal_phase", None)  # None: it failed before post_fork's end
    if (phase is not None and phase[0] == _STOPPING) or os.getppid() != worker.ppid:
        _answer_the_queue(server, worker)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    httpd = getattr(server, "popliteal_metrics", None)
    if httpd is not None:
        httpd.shutdown()
    if os.environ.get("POPLITEAL_METRICS_DIR_OWNER") == str(os.getpid()):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
