"""A network partition between the service and PostgreSQL: packets dropped, nothing refused.

A network namespace holds one end of a veth pair; the other end stays here. A forwarder
listens inside the namespace (on the veth's address) and passes every connection on to
PostgreSQL on loopback, so the service reaches the database through a real link. ``cut()``
takes the namespace's end of the link down: the end here loses its carrier and every packet
sent to it is dropped, silently. No connection is closed or reset, and a new one gets no
answer at all (the neighbour entries are static, so not even ARP says the peer is gone): what
a client sees when a switch, a firewall or a route between it and its database goes away.
``restore()`` brings the link back. Leaving the ``with`` removes the namespace, the link and
the forwarder; a namespace whose creator was killed (its pid is in the name) is removed by the
next partition made.

Needs root (CAP_NET_ADMIN) and ``ip`` (iproute2); ``unavailable()`` says why not, if not.

Also the load-and-fault harness's ``partition`` phase (``partition_phase``, registered in
bench/harness.py): the service under gunicorn reaches its PostgreSQL through such a link, which
is cut under steady traffic.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import itertools
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from service import examples

CLONE_NEWNET = 0x40000000
# RFC 2544's benchmarking range: never routed, so a real network cannot be shadowed.
SUBNET_PREFIX = "198.18"
NAMESPACE_PREFIX = "popliteal-partition-"


def remove_abandoned() -> None:
    """Removes the namespaces (and so their links) of partitions whose process is gone."""
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        pid = name.removeprefix(NAMESPACE_PREFIX).split("-")[0]
        if not name.startswith(NAMESPACE_PREFIX) or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        except PermissionError:
            pass  # alive, another user's


def unavailable() -> str | None:
    """Why a partition cannot be made here (None: it can)."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    name = f"popliteal-probe-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode:
        return f"a network namespace cannot be made: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _ip(*arguments: str) -> str:
    done = subprocess.run(["ip", *arguments], capture_output=True, text=True, timeout=10)
    if done.returncode:
        raise RuntimeError(f"ip {' '.join(arguments)}: {done.stderr.strip()}")
    return done.stdout


def _setns(fd: int) -> None:
    """Move the calling thread (only it) into the network namespace open at ``fd``."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


def _listen_in(namespace: str, address: str) -> socket.socket:
    """A listening socket bound in ``namespace`` (a socket stays in the namespace it was made
    in), made by a thread of its own that enters the namespace and leaves it again."""
    made: list[socket.socket | BaseException] = []

    def make() -> None:
        with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{namespace}") as there:
            try:
                _setns(there.fileno())
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    listener.bind((address, 0))
                    listener.listen(128)
                except BaseException:
                    listener.close()
                    raise
                made.append(listener)
            except BaseException as error:
                made.append(error)
            finally:
                _setns(home.fileno())

    thread = threading.Thread(target=make, name="partition-listen")
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


# The startup packets a PostgreSQL client may send first (protocol codes), before its
# StartupMessage: requests for TLS or GSS encryption, and a cancel request.
PRELUDE_CODES = frozenset((80877103, 80877104, 80877102))
# Settings a PostgreSQL server applies to its own end of a TCP connection, and the socket
# options they are (it also always turns SO_KEEPALIVE on).
SERVER_SOCKET_SETTINGS = {
    "tcp_keepalives_idle": socket.TCP_KEEPIDLE,
    "tcp_keepalives_interval": socket.TCP_KEEPINTVL,
    "tcp_keepalives_count": socket.TCP_KEEPCNT,
    "tcp_user_timeout": socket.TCP_USER_TIMEOUT,
}


def startup_settings(packet: bytes) -> dict[str, str]:
    """The ``-c name=value`` settings in a StartupMessage's ``options``."""
    fields = packet[8:].split(b"\0")
    pairs = dict(zip(fields[::2], fields[1::2], strict=False))
    words = pairs.get(b"options", b"").decode(errors="replace").split()
    settings = {}
    for word, following in zip(words, [*words[1:], ""], strict=True):
        if word == "-c":
            word = following
        elif word.startswith(("-c", "--")):
            word = word.removeprefix("--").removeprefix("-c")
        else:
            continue
        name, _, value = word.partition("=")
        settings[name.replace("-", "_")] = value
    return settings


class Forwarder:
    """Accepts on ``listener`` and copies bytes both ways to ``upstream``, two threads per
    connection. It never closes a connection by itself while the link is cut: its side of the
    link just stops hearing anything.

    Its socket on the link stands for the server's: it takes the TCP settings a PostgreSQL
    server would take from the connection's startup options (keepalives, tcp_user_timeout),
    and when the link fails it, the connection to the server is closed, as the server would
    end that session. (PostgreSQL's own socket faces this forwarder, on loopback.)"""

    def __init__(self, listener: socket.socket, upstream: tuple[str, int]) -> None:
        self.listener = listener
        self.upstream = upstream
        self.port = listener.getsockname()[1]
        self.accepted = 0
        self.server_settings: dict[str, str] = {}  # the last connection's, as applied
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="partition-accept", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # as PostgreSQL does
            with self._lock:
                if self._stopping.is_set():
                    client.close()
                    server.close()
                    return
                self.accepted += 1
                self._sockets.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(
                    target=self._pump, args=(source, target, source is client), daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        startup = b"" if from_client else None  # bytes until the StartupMessage is seen
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if startup is not None:
                    startup = self._watch_startup(source, startup + data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source, target)

    def _watch_startup(self, client: socket.socket, pending: bytes) -> bytes | None:
        """Reads the client's first packets; at its StartupMessage, gives the client's socket
        the settings the server would apply to its own. None once done."""
        while len(pending) >= 8:
            length = int.from_bytes(pending[:4], "big")
            if len(pending) < length:
                return pending
            packet, pending = pending[:length], pending[length:]
            if int.from_bytes(packet[4:8], "big") in PRELUDE_CODES:
                continue
            settings = {
                name: value
                for name, value in startup_settings(packet).items()
                if name in SERVER_SOCKET_SETTINGS and value.isdigit()
            }
            for name, value in settings.items():
                with contextlib.suppress(OSError):
                    client.setsockopt(socket.IPPROTO_TCP, SERVER_SOCKET_SETTINGS[name], int(value))
            self.server_settings = settings
            return None
        return pending

    def _drop(self, *sockets: socket.socket) -> None:
        with self._lock:
            for sock in sockets:
                self._sockets.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the other pump
                sock.close()

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._thread.join(5)
        with self._lock:
            sockets = list(self._sockets)
        self._drop(*sockets)


class Partition:
    """PostgreSQL at ``upstream`` (on loopback), reachable at ``host``:``port`` through a link
    that ``cut()`` drops every packet on and ``restore()`` brings back. A context manager:
    leaving it removes the namespace, the link and the forwarder, whatever happened."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        token = secrets.token_hex(3)
        # The creator's pid in the name: what a killed run left behind is found and removed.
        self.namespace = f"{NAMESPACE_PREFIX}{os.getpid()}-{token}"
        self.outside = f"ppl{token}o"  # interface names: 15 characters at most
        self.inside = f"ppl{token}i"
        block = secrets.randbelow(256 * 64) * 4  # a /30 of its own in 198.18.0.0/16
        base = f"{SUBNET_PREFIX}.{block // 256}"
        self.outside_address = f"{base}.{block % 256 + 1}"
        self.host = f"{base}.{block % 256 + 2}"
        self.upstream = upstream
        self.forwarder: Forwarder | None = None
        self.is_cut = False

    @property
    def port(self) -> int:
        assert self.forwarder is not None
        return self.forwarder.port

    def __enter__(self) -> Partition:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _create(self) -> None:
        remove_abandoned()
        _ip("netns", "add", self.namespace)
        _ip(
            "link", "add", self.outside, "type", "veth",
            "peer", "name", self.inside, "netns", self.namespace,
        )  # fmt: skip
        _ip("addr", "add", f"{self.outside_address}/30", "dev", self.outside)
        _ip("-n", self.namespace, "addr", "add", f"{self.host}/30", "dev", self.inside)
        _ip("link", "set", self.outside, "up")
        _ip("-n", self.namespace, "link", "set", "lo", "up")
        _ip("-n", self.namespace, "link", "set", self.inside, "up")
        self._static_neighbours()
        self.forwarder = Forwarder(_listen_in(self.namespace, self.host), self.upstream)

    def _static_neighbours(self) -> None:
        """Permanent neighbour entries both ways: no ARP, so a cut link is silence, never a
        quick 'host unreachable'. Taking a link down forgets them: made again on restore."""
        outside_mac = _ip("-br", "link", "show", self.outside).split()[2]
        inside_mac = _ip("-n", self.namespace, "-br", "link", "show", self.inside).split()[2]
        _ip("neigh", "replace", self.host, "lladdr", inside_mac, "dev", self.outside,
            "nud", "permanent")  # fmt: skip
        _ip("-n", self.namespace, "neigh", "replace", self.outside_address, "lladdr",
            outside_mac, "dev", self.inside, "nud", "permanent")  # fmt: skip

    def cut(self) -> None:
        """Every packet between here and the database is dropped from now on."""
        _ip("-n", self.namespace, "link", "set", self.inside, "down")
        self.is_cut = True

    def restore(self) -> None:
        _ip("-n", self.namespace, "link", "set", self.inside, "up")
        self._static_neighbours()
        self.is_cut = False

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.stop()
            self.forwarder = None
        # Deleting the namespace deletes the end inside it, and with it the pair.
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", self.outside], capture_output=True, timeout=10)


# -- The harness phase (bench/harness.py --only partition) ----------------------------------

# What the phase asserts. While the link is cut: /healthz answers 200 within HEALTHZ_LIMIT_S
# (it never touches the database, and the service's deadlines leave workers free to answer
# it); the red-flag screen answers 200 for the key every worker verified before the cut;
# writes answer 503 with Retry-After, their p99 under WRITE_P99_LIMIT_S; no answer at all takes
# longer than ANSWER_LIMIT_S (half of gunicorn's 30 s worker timeout: no worker is killed). Once
# the link is back, a write is stored again within RECOVERY_LIMIT_S.
HEALTHZ_LIMIT_S = 1.0
WRITE_P99_LIMIT_S = 8.0
ANSWER_LIMIT_S = 15.0
RECOVERY_LIMIT_S = 10.0
# A client waits longer than gunicorn's worker timeout, so that a request the service cannot
# finish shows as what it is (a killed worker, a cut connection), not as the client giving up.
CLIENT_TIMEOUT_S = 40.0
PROBE_TIMEOUT_S = 5.0
# Steady load before the cut, and after the restore at least this long (and until recovery).
BEFORE_CUT_S = 1.5
AFTER_RESTORE_S = 2.0
# Probes: /healthz every HEALTHZ_EVERY_S, /readyz every READYZ_EVERY_S (each waits for the last).
HEALTHZ_EVERY_S = 0.2
READYZ_EVERY_S = 1.0


@dataclass
class Attempt:
    kind: str  # "write", "screen", "healthz", "readyz"
    started: float  # time.monotonic()
    seconds: float
    status: int | None = None
    error: str | None = None  # no answer: the exception's type
    retry_after: str | None = None


class Traffic:
    """Steady, moderate traffic against the service, every attempt timed: ``writers`` clients
    storing assessments (each retries the same Idempotency-Key after a 503 or a cut connection,
    honouring Retry-After up to a second, until it gets its 201), one client of the red-flag
    screen, and probes of /healthz and /readyz. Fewer clients than workers: the point is that
    the database's partition does not take the service's free workers with it."""

    def __init__(self, base_port: int, api_key: str, writers: int, bodies: list[bytes]) -> None:
        self.port = base_port
        self.api_key = api_key
        self.bodies = bodies
        self.screen = json.dumps(examples.POSSIBLE_DVT).encode()
        self.attempts: list[Attempt] = []
        self.sent: set[str] = set()
        self.committed: dict[str, str] = {}
        self.unresolved = 0
        self.crashes: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.stopped = False
        self._settle_deadline = float("inf")
        self._counter = itertools.count()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._writer,), daemon=True)
            for _ in range(writers)
        ]
        self._threads += [
            threading.Thread(target=self._guard, args=(target,), daemon=True)
            for target in (self._screener, self._healthz, self._readyz)
        ]

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, settle_seconds: float = 30.0) -> None:
        """Stops sending new work; each writer resolves its last key within settle_seconds."""
        self._settle_deadline = time.monotonic() + settle_seconds
        self._stopping.set()
        self.stopped = True
        for thread in self._threads:
            thread.join(settle_seconds + CLIENT_TIMEOUT_S + 5)
        self.crashes += ["a client still ran after the settle time" for t in self._threads
                         if t.is_alive()]  # fmt: skip

    def _guard(self, target) -> None:
        try:
            target()
        except Exception as error:  # recorded and failed on, never silently lost
            self.crashes.append(f"{type(error).__name__}: {error}")

    def _request(
        self, kind: str, method: str, path: str, body: bytes | None, headers: dict, timeout: float
    ) -> tuple[Attempt, bytes]:
        started = time.monotonic()
        attempt = Attempt(kind, started, 0.0)
        payload = b""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            payload = response.read()
            attempt.status = response.status
            attempt.retry_after = response.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as error:
            attempt.error = type(error).__name__
        finally:
            connection.close()
            attempt.seconds = time.monotonic() - started
        with self._lock:
            self.attempts.append(attempt)
        return attempt, payload

    def _writer(self) -> None:
        while not self._stopping.is_set():
            key = str(uuid.uuid4())
            body = self.bodies[next(self._counter) % len(self.bodies)]
            headers = {
                "Authorization": f"Bearer {self.api_key}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            }
            with self._lock:
                self.sent.add(key)
            while True:
                if self._stopping.is_set() and time.monotonic() > self._settle_deadline:
                    self.unresolved += 1
                    break
                attempt, payload = self._request(
                    "write", "POST", "/v1/assess", body, headers, CLIENT_TIMEOUT_S
                )
                if attempt.status == 201:
                    with self._lock:
                        self.committed[key] = json.loads(payload)["id"]
                    break
                if attempt.status == 503:
                    time.sleep(min(float(attempt.retry_after or 1), 1.0))
                elif attempt.status is None or attempt.status >= 500:
                    time.sleep(0.05)
                else:
                    break  # a 4xx: the harness's own mistake, counted and reported

    def _screener(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}
        while not self._stopping.is_set():
            self._request(
                "screen", "POST", "/v1/escalation-check", self.screen, headers, CLIENT_TIMEOUT_S
            )
            time.sleep(0.05)

    def _probe(self, kind: str, path: str, every: float) -> None:
        while not self._stopping.is_set():
            attempt, _ = self._request(kind, "GET", path, None, {}, PROBE_TIMEOUT_S)
            time.sleep(max(0.0, every - attempt.seconds))

    def _healthz(self) -> None:
        self._probe("healthz", "/healthz", HEALTHZ_EVERY_S)

    def _readyz(self) -> None:
        self._probe("readyz", "/readyz", READYZ_EVERY_S)


def verify_every_worker(port: int, api_key: str, workers: int) -> None:
    """Every worker verifies the key (and so caches it): a burst of red-flag screens, twice as
    many at once as there are workers, so that every worker takes some."""
    body = json.dumps(examples.POSSIBLE_DVT).encode()
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def screens() -> None:
        for _ in range(10):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("POST", "/v1/escalation-check", body, headers)
                connection.getresponse().read()
            finally:
                connection.close()

    threads = [threading.Thread(target=screens) for _ in range(2 * workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def silent(host: str, port: int) -> bool:
    """Whether a new connection gets no answer at all (neither accepted nor refused)."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        try:
            probe.connect((host, port))
        except TimeoutError:
            return True
        except OSError:
            return False
    return False


def summary(attempts: list[Attempt]) -> dict:
    answered = [a.seconds for a in attempts if a.status is not None]
    figures: dict = {
        "attempts": len(attempts),
        "statuses": dict(sorted(Counter(a.status for a in attempts if a.status).items())),
    }
    errors = Counter(a.error for a in attempts if a.error)
    if errors:
        figures["no_answer"] = dict(errors)
    if answered:
        ordered = sorted(answered)
        figures["p50_ms"] = round(1000 * ordered[len(ordered) // 2], 1)
        figures["p99_ms"] = round(1000 * _quantile(ordered, 0.99), 1)
        figures["max_ms"] = round(1000 * ordered[-1], 1)
    return figures


def unreachable_causes(log: str) -> dict[str, int]:
    """The service's "database unreachable" warnings, by the error behind them."""
    causes: Counter = Counter()
    for line in log.splitlines():
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(line).get("message", "")
            if message.startswith("database unreachable"):
                causes[message.rpartition(": ")[2]] += 1
    return dict(causes)


def _quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank quantile (the 99th of 50 values is the largest)."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def partition_phase(context, seconds: float):
    """The harness phase: the link to PostgreSQL cut for ``seconds`` under steady traffic."""
    from bench import harness

    reason = unavailable()
    if reason is not None:
        reason = f"no network partition can be made here: {reason}"
        if os.environ.get("CI") == "true":
            return harness.Verdict("partition", {}, [reason])
        return harness.Verdict("partition", {"skipped": reason}, [])

    started = time.monotonic()
    # At least four workers (gunicorn's default is 2 per CPU + 1): the traffic below keeps up
    # to three busy at once while the database does not answer, and /healthz needs one more.
    workers = context.workers or max(4, 2 * len(os.sched_getaffinity(0)) + 1)
    failures: list[str] = []
    with Partition(("127.0.0.1", context.postgres.port)) as link:
        url = f"postgresql+psycopg://postgres@{link.host}:{link.port}/postgres"
        server = harness.Gunicorn(context.folder, url, workers)
        service_start = time.monotonic() - started
        traffic = None
        try:
            verify_every_worker(server.port, context.api_key, server.worker_count)
            pids_before = set(server.workers())
            writers = max(1, server.worker_count - 3)
            traffic = Traffic(server.port, context.api_key, writers, context.bodies).start()
            time.sleep(BEFORE_CUT_S)
            link.cut()
            cut_at = time.monotonic()
            cut_is_silent = silent(link.host, link.port)
            time.sleep(max(0.0, seconds - (time.monotonic() - cut_at)))
            link.restore()
            restored_at = time.monotonic()
            # Until a write made after the restore is stored (bounded), and a little longer.
            recovered_at = None
            while time.monotonic() < restored_at + RECOVERY_LIMIT_S + 5:
                recovered_at = next(
                    (a.started + a.seconds for a in list(traffic.attempts)
                     if a.kind == "write" and a.status == 201 and a.started >= restored_at),
                    None,
                )  # fmt: skip
                if recovered_at is not None:
                    break
                time.sleep(0.05)
            time.sleep(max(0.0, restored_at + AFTER_RESTORE_S - time.monotonic()))
            traffic.stop()
            stopped_at = time.monotonic()
            pids_after = set(server.workers())
            errors_logged = server.logged_errors()
            log = server.log.read_text(errors="replace")
            worker_timeouts = log.count("WORKER TIMEOUT")
        finally:
            if traffic is not None and not traffic.stopped:
                traffic.stop(settle_seconds=0)
            server.stop()
        forwarded = link.forwarder.accepted if link.forwarder else None
        # What the service's connections ask of the server's end (the forwarder's, here).
        server_side = link.forwarder.server_settings if link.forwarder else None

    def before(kind: str) -> list[Attempt]:
        """Answered before the cut."""
        return [a for a in traffic.attempts if a.kind == kind and a.started + a.seconds < cut_at]

    def during(kind: str) -> list[Attempt]:
        """Sent while the link was cut, or in flight when it went."""
        return [
            a
            for a in traffic.attempts
            if a.kind == kind and a.started < restored_at and a.started + a.seconds >= cut_at
        ]

    def after(kind: str) -> list[Attempt]:
        return [a for a in traffic.attempts if a.kind == kind and a.started >= restored_at]

    tally = harness.Tally(
        sent=traffic.sent, committed=traffic.committed, unresolved=traffic.unresolved
    )
    records = harness.check_records(context.engine, tally)
    writes_cut = during("write")
    figures = {
        "workers": server.worker_count,
        "writers": writers,
        "cut_seconds": round(restored_at - cut_at, 1),
        "cut_is_silent": cut_is_silent,
        "connections_forwarded": forwarded,
        "server_side_settings": server_side,
        "before_cut": {kind: summary(before(kind)) for kind in ("write", "screen", "healthz")},
        "during_cut": {
            kind: summary(during(kind)) for kind in ("write", "screen", "healthz", "readyz")
        },
        "writes_in_flight_at_cut": summary([a for a in writes_cut if a.started < cut_at]),
        "after_restore": {
            kind: summary(after(kind)) for kind in ("write", "screen", "healthz", "readyz")
        },
        "write_recovered_after_s": (
            round(recovered_at - restored_at, 2) if recovered_at is not None else None
        ),
        "workers_replaced": len(pids_before - pids_after),
        "worker_timeouts": worker_timeouts,
        "database_unreachable_logged": unreachable_causes(log),
        "errors_logged": errors_logged,
        "unresolved_keys": traffic.unresolved,
        "client_crashes": traffic.crashes,
        **records,
        "service_start_s": round(service_start, 1),
        "traffic_stop_s": round(stopped_at - restored_at, 1),
        "seconds": round(time.monotonic() - started, 1),
    }

    if not cut_is_silent:
        failures.append("the cut link answered a new connection: it is not a silent partition")
    healthz = during("healthz") + after("healthz")
    slow = [a for a in healthz if a.status != 200 or a.seconds > HEALTHZ_LIMIT_S]
    if slow or not during("healthz"):
        failures.append(
            f"/healthz: {len(slow)} of {len(healthz)} probes not 200 within "
            f"{HEALTHZ_LIMIT_S} s during or after the cut"
        )
    screens = during("screen")
    refused = Counter(a.status for a in traffic.attempts if a.kind == "screen" and a.status != 200)
    if refused or not screens:
        failures.append(f"red-flag screens answered other than 200: {dict(refused)}")
    late = [a for a in traffic.attempts if a.seconds > ANSWER_LIMIT_S]
    if late:
        longest = max(a.seconds for a in late)
        failures.append(
            f"{len(late)} requests took over {ANSWER_LIMIT_S} s "
            f"({dict(Counter(a.kind for a in late))}, the longest {longest:.1f} s)"
        )
    unanswered = Counter(a.error for a in traffic.attempts if a.kind != "readyz" and a.error)
    if unanswered:
        failures.append(f"requests with no answer (cut, reset, timed out): {dict(unanswered)}")
    wrong = Counter(
        a.status
        for a in traffic.attempts
        if a.kind == "write" and a.status is not None and a.status not in (201, 503)
    )
    if wrong:
        failures.append(f"writes answered other than 201 or 503: {dict(wrong)}")
    refusals = [a for a in writes_cut if a.status == 503]
    if not refusals:
        failures.append("no write was refused with a 503 during the cut")
    if any(not a.retry_after for a in refusals):
        failures.append("a 503 came without Retry-After")
    answered = sorted(a.seconds for a in writes_cut if a.status is not None)
    if answered and _quantile(answered, 0.99) > WRITE_P99_LIMIT_S:
        failures.append(
            f"writes during the cut: p99 {_quantile(answered, 0.99):.1f} s "
            f"(limit {WRITE_P99_LIMIT_S} s)"
        )
    if recovered_at is None or recovered_at - restored_at > RECOVERY_LIMIT_S:
        failures.append(f"no write was stored within {RECOVERY_LIMIT_S} s of the link's return")
    ready_after = after("readyz")
    if not ready_after or ready_after[-1].status != 200:
        failures.append("/readyz did not come back to 200 after the restore")
    if worker_timeouts or figures["workers_replaced"]:
        failures.append(
            f"workers killed: {worker_timeouts} worker timeouts, "
            f"{figures['workers_replaced']} workers replaced"
        )
    failures += harness.record_failures({**figures, "statuses": {}})
    if errors_logged:
        failures.append(f"{errors_logged} errors logged")
    return harness.Verdict("partition", figures, failures)
