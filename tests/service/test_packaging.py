"""Packaging: the Dockerfile lints clean and keeps its promises, compose runs the service with a
health check behind nginx, the scripts are executable and shellcheck-clean, and the locks (the
environment's and the image's hashed one) are in force."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SCRIPTS = [
    "scripts/bootstrap",
    "scripts/harness",
    "scripts/lock",
    "scripts/run",
    "scripts/test",
    ".ci/run",
]
SOURCE = ("rules", "schemas", "service")


def _tool(name: str) -> str:
    """A linter from the project's own environment, the one scripts/test runs."""
    path = VENV_BIN / name
    assert path.exists(), f"{name} is not installed next to {sys.executable}: run scripts/bootstrap"
    return str(path)


def _run(*command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, input=stdin, capture_output=True, text=True, check=False, timeout=120
    )


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, separator, version = line.partition("==")
            assert separator, f"{line!r} is not pinned with =="
            assert version, f"{line!r} has no version"
            pins[canonicalize_name(name)] = version
    return pins


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines = [
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    pairs = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def _stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, each list starting with its FROM."""
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        assert stages, f"{instruction} comes before the first FROM"
        stages[-1].append(instruction)
    return stages


def _index(instructions, predicate) -> int:
    return next(i for i, instruction in enumerate(instructions) if predicate(*instruction))


def _env(instructions) -> dict[str, str]:
    settings = {}
    for keyword, arguments in instructions:
        if keyword == "ENV":
            for setting in arguments.split():
                name, separator, value = setting.partition("=")
                assert separator, f"ENV {setting}: use the NAME=value form"
                settings[name] = value
    return settings


def _is_source_copy(keyword: str, arguments: str) -> bool:
    sources = [a for a in arguments.split()[:-1] if not a.startswith("--")]
    return keyword in ("COPY", "ADD") and any(s.rstrip("/") in SOURCE for s in sources)


# --- Dockerfile ----------------------------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = _run(_tool("hadolint"), "--no-color", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ignore" not in (ROOT / "Dockerfile").read_text().lower(), "no inline rule ignores"


def test_hadolint_does_find_faults():
    """The clean result above means something: the same binary rejects a careless Dockerfile."""
    careless = "FROM python:latest\nADD . /app\nRUN pip install flask\n"
    result = _run(_tool("hadolint"), "--no-color", "-", stdin=careless)
    assert result.returncode != 0
    assert {"DL3007", "DL3020", "DL3013"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_every_stage_is_the_same_pinned_python_3_11_slim():
    images = [stage[0][1].split()[0] for stage in _stages()]
    assert len(images) == 2, "a build stage and a runtime stage"
    for image in images:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image)
    assert len(set(images)) == 1, "the environment is built on the base it runs on"
    assert re.fullmatch(r"\S+ AS build", _stages()[0][0][1], re.IGNORECASE)


def test_dependencies_are_installed_from_the_hashed_lock_before_the_source_is_copied():
    build = _stages()[0]
    install = _index(build, lambda k, a: k == "RUN" and "requirements.lock" in a)
    command = build[install][1]
    assert re.search(r"\bpip\b.*\binstall\b", command)
    for option in ("--require-hashes", "--no-deps", "--no-cache-dir"):
        assert option in command.split(), f"the lock is installed without {option}"
    # Only the lock before the install: the layer is rebuilt only when the pins change.
    copied_before = {
        source.rstrip("/")
        for k, a in build[:install]
        if k in ("COPY", "ADD")
        for source in a.split()[:-1]
        if not source.startswith("--")
    }
    assert copied_before == {"requirements.lock"}
    instructions = _instructions()
    install_everywhere = instructions.index(build[install])
    first_source = _index(instructions, _is_source_copy)
    assert install_everywhere < first_source, "the dependency layer must not depend on the source"
    # Nothing is installed except from the hashed lock: not the project itself (an unhashed
    # setuptools build), not a package named on the command line.
    for keyword, arguments in instructions:
        if keyword == "RUN" and re.search(r"\bpip\b.*\binstall\b", arguments):
            assert "--require-hashes" in arguments.split(), arguments
        assert "constraints.txt" not in arguments
        assert "pyproject.toml" not in arguments


def test_the_runtime_stage_has_the_environment_and_the_source_but_no_build_tools():
    runtime = _stages()[-1]
    copies = [a for k, a in runtime if k in ("COPY", "ADD")]
    assert any(re.fullmatch(r"--from=build /opt/venv /opt/venv/?", a) for a in copies)
    for keyword, arguments in runtime:
        assert keyword != "ADD", "COPY, not ADD"
        if keyword == "RUN":
            assert not re.search(r"\bpip\b.*\binstall\b", arguments), "install in the build stage"
            assert not re.search(r"\b(apt-get|apt|apk)\b.*\binstall\b", arguments), arguments
            assert not re.search(r"\b(gcc|build-essential|python3-dev)\b", arguments)
            assert "type=cache" not in arguments
    sources = {a.split()[0].rstrip("/") for a in copies if not a.startswith("--")}
    assert sources == {"gunicorn.conf.py", *SOURCE}
    assert ("WORKDIR", "/app") in runtime
    # Bytecode is written at build time: at run time the root file system is read-only.
    compiled = _index(runtime, lambda k, a: k == "RUN" and "compileall" in a)
    assert compiled > _index(runtime, _is_source_copy)


def test_the_environment_is_for_a_container():
    env = _env(_stages()[-1])
    expected = {
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": "/app",  # `import service` from any directory
        "POPLITEAL_CONFIG": "production",
        "HOST": "0.0.0.0",  # noqa: S104 - gunicorn.conf.py listens on loopback unless told so
        "PORT": "8000",
        "WEB_CONCURRENCY": "2",
        "POPLITEAL_METRICS_PORT": "9464",
    }
    assert {name: env.get(name) for name in expected} == expected
    assert env["PATH"].split(":")[0] == "/opt/venv/bin"


def test_it_runs_as_a_non_root_user():
    runtime = _stages()[-1]
    users = [(i, a) for i, (k, a) in enumerate(runtime) if k == "USER"]
    assert users, "no USER: the service would run as root"
    position, user = users[-1]
    uid, _, gid = user.partition(":")
    assert uid not in ("root", "0")
    assert gid not in ("root", "0")
    assert uid.isdigit(), "a numeric user: Kubernetes can check runAsNonRoot"
    assert position < _index(runtime, lambda k, a: k == "CMD")
    created = " ".join(a for k, a in runtime[:position] if k == "RUN")
    assert re.search(rf"useradd\b.*--uid {uid}\b", created), "the user exists in the image"
    # The SQLite default (no DATABASE_URL) writes to /app/instance: the user owns it.
    assert re.search(rf"chown {uid}(:\d+)? /app/instance", created)
    assert any(k == "VOLUME" and "/app/instance" in a for k, a in runtime)


def test_gunicorn_is_started_in_exec_form_with_its_config_file():
    commands = [arguments for keyword, arguments in _instructions() if keyword == "CMD"]
    assert len(commands) == 1
    command = json.loads(commands[0])  # exec form: a JSON array, no shell in between
    assert command == ["gunicorn", "--config", "gunicorn.conf.py", "service.wsgi:app"]
    # Bind address (HOST, PORT), workers (WEB_CONCURRENCY) and the rest: gunicorn.conf.py.
    assert (ROOT / "gunicorn.conf.py").is_file()
    assert not any(k == "ENTRYPOINT" for k, _ in _instructions()), "gunicorn is PID 1"
    exposed = {port for k, a in _stages()[-1] if k == "EXPOSE" for port in a.split()}
    assert exposed == {"8000", "9464"}


def test_the_health_check_asks_healthz_with_the_standard_library():
    checks = [arguments for keyword, arguments in _instructions() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, exec_form = checks[0].partition("CMD ")
    assert "--timeout=" in options
    assert "--interval=" in options
    command = json.loads(exec_form)
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2]
    assert "http://127.0.0.1:" in command[2]
    assert "/healthz" in command[2]
    compile(command[2], "HEALTHCHECK", "exec")  # it is valid Python


def _dockerignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path, or a folder above it, decides."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        alternatives = [pattern] + ([pattern[3:]] if pattern.startswith("**/") else [])
        if any(fnmatch(prefix, p) for prefix in prefixes for p in alternatives):
            ignored = not negated
    return ignored


def test_dockerignore_keeps_the_context_small_but_not_what_the_image_needs():
    patterns = _dockerignore_patterns()
    for unwanted in (".git", ".venv", ".env", "instance", "tests", "bench", "deploy"):
        assert _dockerignored(unwanted, patterns), f"{unwanted} must not be sent to the daemon"
    copied = []
    for keyword, arguments in _instructions():
        if keyword == "COPY" and not arguments.startswith("--from"):
            copied += arguments.split()[:-1]
    assert "gunicorn.conf.py" in copied, "the CMD reads it"
    for path in copied:
        assert (ROOT / path).exists(), f"COPY {path}: no such file"
        files = [ROOT / path] if (ROOT / path).is_file() else (ROOT / path).rglob("*")
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if file.is_file() and "__pycache__" not in relative:
                assert not _dockerignored(relative, patterns), f"{relative} is excluded"


# --- docker-compose.yml --------------------------------------------------------------------------


def _compose() -> tuple[str, dict]:
    text = (ROOT / "docker-compose.yml").read_text()
    return text, yaml.safe_load(text)


def _seconds(value) -> float:
    """A compose duration ("35s", "1m30s", 40) in seconds."""
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    assert "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def test_compose_runs_the_service_with_a_health_check_and_a_restart_policy():
    _text, compose = _compose()
    api = compose["services"]["api"]
    build = api["build"]
    assert (build if isinstance(build, str) else build.get("context", ".")) == "."
    check = api["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert "/readyz" in " ".join(check["test"])  # ready: database reachable, migrations current
    assert {"interval", "timeout", "retries"} <= set(check)
    assert api["restart"] in ("always", "unless-stopped", "on-failure")
    environment = api["environment"]
    assert "WEB_CONCURRENCY" in environment
    assert environment["POPLITEAL_PROXY_HOPS"] == "1", "nginx is the one trusted proxy"
    # SIGTERM, then in-flight requests get gunicorn's graceful timeout before SIGKILL.
    graceful = int(environment.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
    assert _seconds(api["stop_grace_period"]) > graceful


def test_the_api_scales_behind_the_proxy():
    _text, compose = _compose()
    services = compose["services"]
    api = services["api"]
    # No host port and no fixed name: `docker compose up --scale api=3` works.
    assert "ports" not in api
    assert "container_name" not in api
    assert {"8000", "9464"} <= {str(port) for port in api["expose"]}
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}, "the proxy is the only way in"
    proxy = services["proxy"]
    assert [str(port) for port in proxy["ports"]] == ["8000:8080"]
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert (ROOT / "deploy/nginx/nginx.conf").is_file()
    assert proxy["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert proxy["restart"] in ("always", "unless-stopped", "on-failure")
    # A pinned nginx that runs as non-root and has `server ... resolve` (1.27.3 and later).
    image, _, tag = proxy["image"].partition(":")
    assert image == "nginxinc/nginx-unprivileged"
    version = tuple(int(part) for part in re.match(r"(\d+)\.(\d+)", tag).groups())
    assert version >= (1, 27), tag
    assert tag != "latest"


def test_compose_containers_are_read_only_and_unprivileged():
    _text, compose = _compose()
    services = compose["services"]
    for name in ("api", "migrate", "proxy"):
        service = services[name]
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name  # the only place they write
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name


def test_compose_has_postgresql_and_redis_with_health_checks():
    _text, compose = _compose()
    services = compose["services"]
    assert set(services) == {"api", "migrate", "postgres", "redis", "proxy"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["image"].startswith("redis:")
    assert "ping" in services["redis"]["healthcheck"]["test"]
    # PostgreSQL keeps its data in a named volume.
    volume = services["postgres"]["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    # Every long-running service says when it is healthy; the one-off migration does not run on.
    for name, service in services.items():
        if name != "migrate":
            check = service["healthcheck"]
            assert check["test"][0] in ("CMD", "CMD-SHELL"), name
            assert {"interval", "timeout", "retries"} <= set(check), name


def test_compose_starts_the_api_after_its_migrations_and_healthy_dependencies():
    _text, compose = _compose()
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["flask", "--app", "service.wsgi", "db", "upgrade"]
    assert migrate["image"] == services["api"]["image"]  # the same code migrates and serves
    assert migrate["build"] == services["api"]["build"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["api"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name in ("api", "migrate"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert services["api"]["environment"]["RATELIMIT_STORAGE_URI"] == "redis://redis:6379/0"


def test_compose_takes_secrets_from_the_environment():
    _text, compose = _compose()
    password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    # Required: compose refuses to start without it, rather than run on a default password.
    assert password == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    assert "${POSTGRES_PASSWORD:?" in compose["services"]["api"]["environment"]["DATABASE_URL"]
    for name, service in compose["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|SECRET|TOKEN|KEY", variable):
                assert str(value).startswith("${"), f"{name}: {variable} is written in the file"


# --- deploy/nginx/nginx.conf ---------------------------------------------------------------------

NGINX_CONF = ROOT / "deploy/nginx/nginx.conf"


def _nginx() -> str:
    """nginx.conf without comments, one directive per line."""
    text = "\n".join(line.split("#")[0] for line in NGINX_CONF.read_text().splitlines())
    return re.sub(r"[ \t]+", " ", text)


def _directives(name: str) -> list[str]:
    # Values run to the next ";" (a JSON log_format has braces in its strings).
    return [m.strip() for m in re.findall(rf"(?:^|[;{{}}\s]){name} ([^;]*);", _nginx())]


def test_nginx_follows_every_api_replica():
    text = _nginx()
    assert _directives("resolver"), "no resolver: `resolve` cannot re-read the replicas"
    assert _directives("resolver")[0].split()[0] == "127.0.0.11", "Docker's embedded DNS"
    upstream = re.search(r"upstream (\w+) \{([^}]*)\}", text)
    assert upstream, "no upstream block"
    name, body = upstream.groups()
    assert re.search(r"\bzone \w+ \d+[km]?;", body), "`resolve` needs the upstream in a zone"
    assert re.search(r"\bserver api:8000\b[^;]*\bresolve\b[^;]*;", body)
    assert re.search(r"\bkeepalive \d+;", body)
    assert f"http://{name}" in _directives("proxy_pass")


def test_nginx_forwards_the_client_and_the_request_id():
    headers = {h.split()[0].lower(): h.split(None, 1)[1] for h in _directives("proxy_set_header")}
    assert headers["x-forwarded-for"] == "$proxy_add_x_forwarded_for"
    assert headers["x-forwarded-proto"] == "$scheme"
    assert headers["host"] == "$host"
    # The client's X-Request-ID when it sent one, nginx's $request_id otherwise.
    variable = headers["x-request-id"].lstrip("$")
    mapping = re.search(rf"map \$http_x_request_id \${variable} \{{([^}}]*)\}}", _nginx())
    assert mapping, "X-Request-ID comes from a map on $http_x_request_id"
    assert "$request_id" in mapping.group(1)


def test_nginx_limits_match_the_api():
    assert _directives("client_max_body_size") == ["64k"]  # the API's own limit
    assert _directives("server_tokens") == ["off"]
    _text, compose = _compose()
    worker_timeout = int(compose["services"]["api"]["environment"].get("GUNICORN_TIMEOUT", 30))
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        (value,) = _directives(directive)
        assert _seconds(value) > worker_timeout, f"{directive} must outlast gunicorn's timeout"
    (connect,) = _directives("proxy_connect_timeout")
    assert _seconds(connect) <= 10
    # Retries on another replica, never for a POST (no non_idempotent).
    for value in _directives("proxy_next_upstream"):
        assert "non_idempotent" not in value
        assert set(value.split()) <= {"error", "timeout"}


def test_nginx_keeps_metrics_private_and_logs_no_query_string():
    text = _nginx()
    assert "9464" not in text, "the metrics port is never proxied"
    formats = [f for f in _directives("log_format") if "escape=json" in f.split()[:2]]
    assert formats, "access log lines are JSON"
    name = formats[0].split()[0]
    assert any(value.split()[1:2] == [name] for value in _directives("access_log"))
    logged = " ".join(_directives("log_format"))
    for variable in re.findall(r"\$\w+", logged):
        assert variable not in ("$request", "$request_uri", "$args", "$query_string")
        assert not variable.startswith(("$arg_", "$request_body", "$http_cookie"))
        assert variable not in ("$http_authorization", "$http_referer"), variable
    assert "$uri" in logged


def test_nginx_writes_only_to_tmp():
    """The proxy runs on a read-only root file system with a tmpfs on /tmp."""
    paths = _directives("pid") + [
        value
        for directive in re.findall(r"\b(\w+_temp_path) ", _nginx())
        for value in _directives(directive)
    ]
    assert len(paths) >= 5
    for path in paths:
        assert path.startswith("/tmp/"), path
    for directive in ("error_log", "access_log"):
        for value in _directives(directive):
            assert value.split()[0] in ("/dev/stderr", "/dev/stdout", "off"), value


def test_nginx_accepts_the_config():
    """`nginx -t` on the real file, where an nginx binary is installed (CI without one skips).
    Paths under /tmp move to a scratch folder; `api` becomes localhost, which resolves without
    Docker's DNS; an nginx older than 1.27.3 has no `resolve`, so it is taken out for it."""
    # Debian installs it in sbin, which a non-root PATH may leave out.
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    nginx = shutil.which("nginx", path=search)
    if nginx is None:
        pytest.skip("nginx is not installed")
    version = _run(nginx, "-v").stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version)
    assert found, version
    with tempfile.TemporaryDirectory() as scratch:
        text = NGINX_CONF.read_text().replace("/tmp/", f"{scratch}/")
        text = text.replace("server api:8000", "server localhost:8000")
        if tuple(map(int, found.groups())) < (1, 27, 3):
            text = re.sub(r"(server localhost:8000[^;]*) resolve", r"\1", text)
        config = Path(scratch) / "nginx.conf"
        config.write_text(text)
        result = _run(nginx, "-t", "-p", scratch, "-c", str(config))
    assert result.returncode == 0, result.stderr


# --- the package --------------------------------------------------------------------------------


def test_every_file_the_packages_read_besides_their_code_is_packaged():
    """Rule files, the migrations' template and the answer dictionaries are read at run time:
    each is matched by a package-data pattern of pyproject.toml, so a wheel carries it."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    packaged = {
        path
        for package, patterns in package_data.items()
        for pattern in patterns
        for path in (ROOT / package.replace(".", "/")).glob(pattern)
    }
    data_files = {
        path
        for top in ("rules", "schemas", "service")
        for path in (ROOT / top).rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    assert any(path.suffix == ".zdict" for path in data_files)
    assert data_files - packaged == set()


# --- scripts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_executable(script):
    assert os.access(ROOT / script, os.X_OK), f"chmod +x {script}"
    if (ROOT / ".git").exists():
        mode = _run("git", "ls-files", "--stage", "--", script).stdout.split()
        assert mode, f"{script} is not committed"
        assert mode[0] == "100755", f"git update-index --chmod=+x {script}"


def test_scripts_pass_shellcheck():
    result = _run(_tool("shellcheck"), "--color=never", *SCRIPTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command():
    lines = [
        line.strip()
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[-1] == "exec scripts/test"
    assert "./scripts/test" in (ROOT / "README.md").read_text()


# --- the lock ------------------------------------------------------------------------------------


def test_the_lock_says_how_to_regenerate_it():
    header = (ROOT / "constraints.txt").read_text().splitlines()[:3]
    assert any("scripts/lock" in line for line in header if line.startswith("#"))


def test_every_declared_dependency_is_pinned_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [
        requirement for group in project["optional-dependencies"].values() for requirement in group
    ]
    pins = _pins((ROOT / "constraints.txt").read_text())
    problems = {}
    for text in declared:
        requirement = Requirement(text)
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems[requirement.name] = "not pinned"
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems[requirement.name] = f"{pinned} is outside {requirement.specifier}"
    assert problems == {}


def test_the_environment_is_exactly_the_lock():
    """pip freeze of the running environment and constraints.txt agree, both ways."""
    frozen = _run(sys.executable, "-m", "pip", "freeze", "--exclude-editable")
    assert frozen.returncode == 0, frozen.stderr
    installed = _pins(frozen.stdout)
    pinned = _pins((ROOT / "constraints.txt").read_text())
    assert installed, "pip freeze listed nothing"
    differences = {
        name: f"installed {installed.get(name, '-')}, pinned {pinned.get(name, '-')}"
        for name in installed.keys() | pinned.keys()
        if installed.get(name) != pinned.get(name)
    }
    assert differences == {}, "run scripts/bootstrap, or scripts/lock after changing pyproject"


# --- requirements.lock: what the image installs --------------------------------------------------


def _hashed_lock() -> dict[str, tuple[str, list[str]]]:
    """requirements.lock as {name: (version, [sha256, ...])}; fails on anything else in it."""
    text = re.sub(r"\\\n", " ", (ROOT / "requirements.lock").read_text())
    entries = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        assert not line.startswith("-"), f"{line!r}: no options (index, find-links, -e) in the lock"
        requirement, *options = line.split()
        name, separator, version = requirement.partition("==")
        assert separator, f"{requirement!r} is not pinned with =="
        assert re.fullmatch(r"[\w.!+]+", version), f"{requirement!r}: no exact version"
        hashes = []
        for option in options:
            found = re.fullmatch(r"--hash=sha256:([0-9a-f]{64})", option)
            assert found, f"{name}: {option!r} is not a sha256 hash"
            hashes.append(found.group(1))
        assert hashes, f"{name} has no hash: pip --require-hashes refuses it"
        entries[canonicalize_name(name)] = (version, hashes)
    return entries


def _runtime_closure() -> set[str]:
    """Every distribution the service needs at run time: pyproject's dependencies, extras
    included, and what they require in turn (as installed here), markers evaluated."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [(Requirement(text), "") for text in project["dependencies"]]
    visited: set[tuple[str, str]] = set()
    while pending:
        requirement, parent_extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": parent_extra}):
            continue
        name = canonicalize_name(requirement.name)
        for extra in ("", *sorted(requirement.extras)):
            if (name, extra) in visited:
                continue
            visited.add((name, extra))
            for text in importlib.metadata.distribution(name).requires or []:
                pending.append((Requirement(text), extra))
    return {name for name, _extra in visited}


def test_the_image_lock_pins_and_hashes_every_requirement():
    lock = _hashed_lock()
    assert lock
    text = (ROOT / "requirements.lock").read_text()
    assert "scripts/lock" in "\n".join(text.splitlines()[:6]), "says how to regenerate it"
    assert "://" not in text, "no index address in the lock"
    assert "file:" not in text, "no local path in the lock"
    # Wheels for every platform of a compiled package, not just this machine's.
    assert len(lock["psycopg-binary"][1]) > 2


def test_the_image_lock_has_the_versions_of_constraints_txt():
    pinned = _pins((ROOT / "constraints.txt").read_text())
    differences = {
        name: f"requirements.lock {version}, constraints.txt {pinned.get(name, '-')}"
        for name, (version, _hashes) in _hashed_lock().items()
        if pinned.get(name) != version
    }
    assert differences == {}, "run scripts/lock"


def test_the_image_lock_is_exactly_the_runtime_dependencies():
    """No development tool in the image, and nothing the service needs left out."""
    locked = set(_hashed_lock())
    needed = _runtime_closure()
    assert {"flask", "gunicorn", "psycopg-binary", "cryptography"} <= needed  # extras followed
    assert locked - needed == set(), "in the lock but not needed at run time"
    assert needed - locked == set(), "needed at run time but not in the lock"


def test_scripts_lock_regenerates_the_image_lock():
    script = (ROOT / "scripts/lock").read_text()
    assert "requirements.lock" in script
    assert "--generate-hashes" in script
    assert script.index("> constraints.txt") < script.index("requirements.lock pyproject.toml")
