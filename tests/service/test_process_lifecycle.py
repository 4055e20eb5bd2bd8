"""gunicorn's processes from start to exit, under gunicorn.conf.py:

- workers do not outlive their master: killed, it leaves nobody serving unsupervised on the
  port, and a new master gets the port at once;
- a killed master's metrics folder (PROMETHEUS_MULTIPROC_DIR) does not outlive the next start;
- SIGTERM drains: /readyz turns 503 while requests are still served, and no connection queued
  on the listening socket is reset, neither during the drain nor when the socket closes.

The requests queued in these tests are made to wait deterministically: each worker is held by
a request whose body is still on its way, and the kernel's own count of connections waiting
on the listening socket (/proc/net/tcp) says when all of them are queued.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service import examples
from service.storage import Storage
from tests.conftest import (
    REPO_ROOT,
    free_port,
    gunicorn_command,
    gunicorn_env,
    gunicorn_server,
    stop,
    wait_until,
)

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

WORKERS = 2
QUEUED = 50
GRACEFUL = 10  # GUNICORN_GRACEFUL_TIMEOUT in these tests
# Generous: the machine may be slow and busy; nothing here is a latency measurement.
PATIENCE = 30.0


# -- Processes and sockets, from /proc --------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent pid; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text.rpartition(")")[2].split()[:2]
    return state, int(ppid)


def running(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")  # a zombie serves nothing


def children(pid: int) -> set[int]:
    stats = {int(e.name): _stat(int(e.name)) for e in Path("/proc").iterdir() if e.name.isdigit()}
    return {child for child, stat in stats.items() if stat and stat[1] == pid and running(child)}


def accept_queue(port: int) -> int | None:
    """Connections the kernel accepted on 127.0.0.1:port that no process has taken yet."""
    local = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "0A":  # LISTEN
            return int(fields[4].split(":")[1], 16)
    return None


def wait_for(condition: Callable[[], object], what: str, seconds: float = PATIENCE) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def migrated_sqlite(folder: Path) -> str:
    url = f"sqlite:///{folder / 'popliteal.sqlite3'}"
    storage = Storage(url)
    storage.upgrade()
    storage.dispose()
    return url


def log_messages(output: Path) -> list[str]:
    messages = []
    for line in output.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError, AttributeError):
            messages.append(json.loads(line).get("message", ""))
    return messages


@contextlib.contextmanager
def gunicorn_on(port: int, output: Path, **settings: str) -> Iterator[subprocess.Popen]:
    """gunicorn as conftest.gunicorn_server starts it, on a port of the test's choosing."""
    with output.open("ab") as log:
        process = subprocess.Popen(
            gunicorn_command(port, WORKERS),
            cwd=REPO_ROOT,
            env=gunicorn_env(**settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        stop(process)


# -- Clients -------------------------------------------------------------------------------------


class HeldRequest:
    """A request whose body is still on its way: the worker that took it waits on it."""

    def __init__(self, port: int, key: str) -> None:
        self.body = json.dumps(examples.POSSIBLE_DVT).encode()
        head = (
            f"POST /v1/escalation-check HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        self.connection = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
        self.connection.sendall(head + self.body[:10])

    def finish(self) -> None:
        self.connection.sendall(self.body[10:])


def send_get(port: int, path: str) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    connection.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    return connection


def answer(connection: socket.socket) -> tuple[int | str, dict[str, str]]:
    """The status and headers of the answer; "reset" (or "no answer") when there was none."""
    received = b""
    try:
        with connection:
            while chunk := connection.recv(65536):
                received += chunk
    except ConnectionResetError:
        return "reset", {}
    except TimeoutError:
        return "timeout", {}
    if not received:
        return "no answer", {}
    head = received.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), {name.lower(): value for name, value in headers.items()}


def outcome(answers: list[tuple[int | str, dict[str, str]]]) -> Counter:
    """Statuses counted; a 503 without Retry-After counts apart, as a failure to answer right."""
    return Counter(
        "503 without Retry-After" if status == 503 and "retry-after" not in headers else status
        for status, headers in answers
    )


# -- A. Workers exit with their master -----------------------------------------------------------


def test_workers_exit_when_their_master_is_killed_and_a_restart_gets_the_port(tmp_path):
    """SIGKILL the master: the idle worker leaves at once, the busy one once its request is
    answered; a new gunicorn on the same port then starts and is ready."""
    database = migrated_sqlite(tmp_path)
    storage = Storage(database)
    key, _ = storage.keys.create("lifecycle", label="tests")
    storage.dispose()
    port = free_port()
    output = tmp_path / "gunicorn.log"
    # An idle sync worker looks at its parent only every GUNICORN_TIMEOUT / 2 seconds, and a
    # busy one not at all: the long timeout shows that the workers do not wait for that look.
    settings = {"DATABASE_URL": database, "GUNICORN_TIMEOUT": "600"}
    workers: set[int] = set()
    try:
        with gunicorn_on(port, output, **settings) as first:
            wait_until(f"http://127.0.0.1:{port}/readyz", first, timeout=60)
            wait_for(lambda: len(children(first.pid)) == WORKERS, "every worker")
            workers = children(first.pid)
            held = HeldRequest(port, key)
            wait_for(lambda: accept_queue(port) == 0, "a worker to take the held request")

            first.kill()
            first.wait(timeout=PATIENCE)
            # The idle worker exits; the busy one still has a request to answer.
            wait_for(lambda: sum(map(running, workers)) == 1, "the idle worker to exit")
            held.finish()
            status, _headers = answer(held.connection)
            assert status == 200, "the request in hand when the master died was not answered"
            wait_for(lambda: not any(map(running, workers)), "the busy worker to exit", 10)

        with gunicorn_on(port, output, **settings) as second:
            wait_until(f"http://127.0.0.1:{port}/readyz", second, timeout=60)
        assert not [line for line in log_messages(output) if "Connection in use" in line]
    finally:
        for pid in workers:  # left over only if the test failed
            if running(pid):
                os.kill(pid, signal.SIGKILL)


# -- B. A killed master's metrics folder ---------------------------------------------------------


def _metrics_folders(output: Path) -> list[Path]:
    prefix = "metrics samples in "
    return [
        Path(message.removeprefix(prefix))
        for message in log_messages(output)
        if message.startswith(prefix)
    ]


def _kill_master(process: subprocess.Popen) -> None:
    workers = children(process.pid)
    process.kill()
    process.wait(timeout=PATIENCE)
    wait_for(lambda: not any(map(running, workers)), "the killed master's workers to exit")


def test_a_killed_masters_own_metrics_folder_is_removed_at_the_next_start(tmp_path):
    """With no PROMETHEUS_MULTIPROC_DIR given, each master makes a folder and removes it at
    exit; one that was killed never did. The next master removes it."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    settings = {"DATABASE_URL": migrated_sqlite(tmp_path), "TMPDIR": str(temporary)}
    port = free_port()
    output = tmp_path / "gunicorn.log"
    with gunicorn_on(port, output, **settings) as first:
        wait_until(f"http://127.0.0.1:{port}/readyz", first, timeout=60)
        [killed_folder] = _metrics_folders(output)
        assert killed_folder.parent == temporary
        assert any(name.endswith(".db") for name in os.listdir(killed_folder))
        _kill_master(first)
    assert killed_folder.is_dir(), "a killed master removed its folder: nothing to test"

    with gunicorn_on(port, output, **settings) as second:
        wait_until(f"http://127.0.0.1:{port}/readyz", second, timeout=60)
        [_, folder] = _metrics_folders(output)
        assert folder.is_dir()
        assert not killed_folder.exists()
    assert list(temporary.iterdir()) == []  # and the second removed its own at exit


def test_samples_a_killed_master_left_in_a_given_metrics_folder_are_cleared_at_start(tmp_path):
    """A PROMETHEUS_MULTIPROC_DIR given by the operator is kept, but emptied of the samples
    files (*.db) a killed master's workers left in it before new ones are written."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    settings = {
        "DATABASE_URL": migrated_sqlite(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    port = free_port()
    output = tmp_path / "gunicorn.log"
    with gunicorn_on(port, output, **settings) as first:
        wait_until(f"http://127.0.0.1:{port}/readyz", first, timeout=60)
        _kill_master(first)
    stale = {name for name in os.listdir(folder) if name.endswith(".db")}
    assert stale

    with gunicorn_on(port, output, **settings) as second:
        wait_until(f"http://127.0.0.1:{port}/readyz", second, timeout=60)
        assert not stale & set(os.listdir(folder))
    assert folder.is_dir()


# -- C. SIGTERM drains ---------------------------------------------------------------------------


def _exit_seconds(process: subprocess.Popen, since: float, limit: float) -> float:
    assert process.wait(timeout=limit + PATIENCE) == 0
    return time.monotonic() - since


@contextlib.contextmanager
def queued_behind_held_workers(port: int, key: str) -> Iterator[tuple[list, list]]:
    """Every worker held by a request still arriving, then QUEUED requests waiting on the
    listening socket, accepted by the kernel and by no worker."""
    held = []
    for _ in range(WORKERS):
        held.append(HeldRequest(port, key))
        wait_for(lambda: accept_queue(port) == 0, "a worker to take the held request")
    queued = [send_get(port, "/healthz") for _ in range(QUEUED)]
    try:
        wait_for(lambda: accept_queue(port) == QUEUED, f"{QUEUED} queued connections")
        yield held, queued
    finally:
        for connection in [request.connection for request in held] + queued:
            connection.close()


def test_sigterm_answers_the_connections_queued_during_the_drain(tmp_path):
    """SIGTERM with every worker busy and QUEUED connections waiting: the workers finish,
    then go on taking connections during the drain; none is reset, every one is answered."""
    drain = 5
    output = tmp_path / "gunicorn.log"
    with gunicorn_server(
        f"sqlite:///{tmp_path / 'popliteal.sqlite3'}",
        tenant="lifecycle",
        workers=WORKERS,
        output=output,
        RATELIMIT_ENABLED="false",
        GUNICORN_GRACEFUL_TIMEOUT=str(GRACEFUL),
        POPLITEAL_DRAIN_SECONDS=str(drain),
    ) as server:
        with queued_behind_held_workers(server.port, server.keys[0]) as (held, queued):
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            for request in held:
                request.finish()
            held_answers = outcome([answer(request.connection) for request in held])
            queued_answers = outcome([answer(connection) for connection in queued])
        seconds = _exit_seconds(server.process, signalled, drain + GRACEFUL)
    print(
        f"\nSIGTERM with {QUEUED} queued: {dict(queued_answers)}; held: {dict(held_answers)}; "
        f"exit after {seconds:.1f} s (drain {drain} s)"
    )
    assert held_answers == {200: WORKERS}
    assert "reset" not in queued_answers
    assert set(queued_answers) <= {200, 503}, queued_answers
    assert seconds < drain + GRACEFUL + PATIENCE


def test_sigterm_answers_503_to_connections_still_queued_when_the_socket_closes(tmp_path):
    """The same, but the workers stay busy past the drain: when gunicorn then closes the
    listening socket, what is still queued is answered 503 with Retry-After, not reset."""
    drain = 2
    output = tmp_path / "gunicorn.log"
    with gunicorn_server(
        f"sqlite:///{tmp_path / 'popliteal.sqlite3'}",
        tenant="lifecycle",
        workers=WORKERS,
        output=output,
        RATELIMIT_ENABLED="false",
        GUNICORN_GRACEFUL_TIMEOUT=str(GRACEFUL),
        POPLITEAL_DRAIN_SECONDS=str(drain),
    ) as server:
        with queued_behind_held_workers(server.port, server.keys[0]) as (held, queued):
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            wait_for(
                lambda: any(m.startswith("drained: stopping") for m in log_messages(output)),
                "the end of the drain",
            )
            time.sleep(1)  # the workers get their SIGTERM from the master now
            for request in held:
                request.finish()
            held_answers = outcome([answer(request.connection) for request in held])
            queued_answers = outcome([answer(connection) for connection in queued])
        seconds = _exit_seconds(server.process, signalled, drain + GRACEFUL)
    print(
        f"\nSIGTERM, workers busy past the drain, {QUEUED} queued: {dict(queued_answers)}; "
        f"held: {dict(held_answers)}; exit after {seconds:.1f} s (drain {drain} s)"
    )
    assert held_answers == {200: WORKERS}, "the requests in hand were not finished"
    assert "reset" not in queued_answers
    assert set(queued_answers) <= {200, 503}, queued_answers
    assert queued_answers[503] > 0, "nothing was left queued when the socket closed"
    assert seconds < drain + GRACEFUL + PATIENCE


def _get(url: str, headers: dict[str, str] | None = None, body: bytes | None = None):
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=PATIENCE) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_while_draining_readyz_is_503_and_requests_are_still_served(tmp_path):
    drain = 6
    with gunicorn_server(
        f"sqlite:///{tmp_path / 'popliteal.sqlite3'}",
        tenant="lifecycle",
        workers=WORKERS,
        output=subprocess.DEVNULL,
        GUNICORN_GRACEFUL_TIMEOUT=str(GRACEFUL),
        POPLITEAL_DRAIN_SECONDS=str(drain),
    ) as server:
        assert _get(f"{server.url}/readyz")[0] == 200
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        wait_for(lambda: _get(f"{server.url}/readyz")[0] == 503, "/readyz to answer 503", drain)
        status, headers, body = _get(f"{server.url}/readyz")
        assert status == 503
        assert int(headers["Retry-After"]) > 0
        assert json.loads(body)["status"] == "not_ready"
        assert _get(f"{server.url}/healthz")[0] == 200
        status, _, body = _get(
            f"{server.url}/v1/escalation-check",
            {"Authorization": f"Bearer {server.keys[0]}", "Content-Type": "application/json"},
            json.dumps(examples.POSSIBLE_DVT).encode(),
        )
        assert (status, json.loads(body)["level"]) == (200, "urgent")
        seconds = _exit_seconds(server.process, signalled, drain + GRACEFUL)
    assert seconds < drain + GRACEFUL + PATIENCE


def _default_drain_seconds(tmp_path: Path) -> float:
    code = "import runpy; print(runpy.run_path('gunicorn.conf.py')['_drain_seconds'])"
    environment = {k: v for k, v in os.environ.items() if k != "POPLITEAL_DRAIN_SECONDS"}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**environment, "TMPDIR": str(tmp_path)},  # where it makes its metrics folder
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout)


def test_the_orchestrators_wait_longer_than_the_drain_and_the_graceful_stop(tmp_path):
    """compose and Kubernetes SIGKILL after their grace period: it must cover the drain and
    gunicorn's graceful timeout (and, on Kubernetes, the preStop sleep before SIGTERM)."""
    import yaml

    default_drain = _default_drain_seconds(tmp_path)
    assert default_drain > 0

    api = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["api"]
    environment = api["environment"]
    drain = float(environment.get("POPLITEAL_DRAIN_SECONDS", default_drain))
    graceful = float(environment["GUNICORN_GRACEFUL_TIMEOUT"])
    assert drain > 0
    assert float(api["stop_grace_period"].removesuffix("s")) > drain + graceful

    manifests = REPO_ROOT / "deploy" / "kubernetes"
    config = yaml.safe_load((manifests / "configmap.yaml").read_text())["data"]
    pod = yaml.safe_load((manifests / "deployment.yaml").read_text())["spec"]["template"]["spec"]
    [container] = pod["containers"]
    prestop = float(container["lifecycle"]["preStop"]["exec"]["command"][1])
    drain = float(config.get("POPLITEAL_DRAIN_SECONDS", default_drain))
    graceful = float(config["GUNICORN_GRACEFUL_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > prestop + drain + graceful
