"""Packaging: the Dockerfile lints clean and keeps its promises, compose runs the service with a
health check, the scripts are executable and shellcheck-clean, and the lock is in force."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SCRIPTS = ["scripts/bootstrap", "scripts/lock", "scripts/run", "scripts/test", ".ci/run"]
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


def _index(instructions, predicate) -> int:
    return next(i for i, instruction in enumerate(instructions) if predicate(*instruction))


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


def test_the_image_is_a_pinned_python_3_11_slim():
    instructions = _instructions()
    images = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert len(images) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", images[0])


def test_dependencies_are_installed_from_the_lock_before_the_source_is_copied():
    instructions = _instructions()
    install = _index(instructions, lambda k, a: k == "RUN" and "constraints.txt" in a)
    first_source = _index(
        instructions, lambda k, a: k in ("COPY", "ADD") and a.split()[0].rstrip("/") in SOURCE
    )
    assert install < first_source, "the dependency layer must not depend on the source"
    copied_before = {
        source.rstrip("/")
        for k, a in instructions[:install]
        if k == "COPY"
        for source in a.split()[:-1]
    }
    assert copied_before == {"pyproject.toml", "constraints.txt"}


def test_the_environment_is_for_a_container():
    env = " ".join(arguments for keyword, arguments in _instructions() if keyword == "ENV")
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "WEB_CONCURRENCY=2"):
        assert setting in env.split(), setting


def test_it_runs_as_a_non_root_user():
    instructions = _instructions()
    users = [(i, a) for i, (k, a) in enumerate(instructions) if k == "USER"]
    assert users, "no USER: the service would run as root"
    position, user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    command = _index(instructions, lambda k, a: k == "CMD")
    assert position < command


def test_gunicorn_is_started_in_exec_form_on_all_interfaces():
    commands = [arguments for keyword, arguments in _instructions() if keyword == "CMD"]
    assert len(commands) == 1
    command = json.loads(commands[0])  # exec form: a JSON array, no shell in between
    assert command[0] == "gunicorn"
    assert command[command.index("--bind") + 1] == "0.0.0.0:8000"
    assert command[-1] == "service.wsgi:app"
    assert "--workers" not in command, "the worker count comes from WEB_CONCURRENCY"
    assert ("EXPOSE", "8000") in _instructions()


def test_the_health_check_asks_healthz_with_the_standard_library():
    checks = [arguments for keyword, arguments in _instructions() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, exec_form = checks[0].partition("CMD ")
    assert "--timeout=" in options
    assert "--interval=" in options
    command = json.loads(exec_form)
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2]
    assert "127.0.0.1:8000/healthz" in command[2]
    compile(command[2], "HEALTHCHECK", "exec")  # it is valid Python


def test_dockerignore_keeps_the_context_small_but_not_what_the_image_needs():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (".git", ".venv"):
        assert needed in patterns, f"{needed} must not be sent to the Docker daemon"
    copied = []
    for keyword, arguments in _instructions():
        if keyword == "COPY" and not arguments.startswith("--from"):
            copied += arguments.split()[:-1]
    assert copied
    for path in copied:
        assert (ROOT / path).exists(), f"COPY {path}: no such file"
        excluded = [p for p in patterns if not p.startswith("!") and fnmatch(path.rstrip("/"), p)]
        assert not excluded, f"COPY {path} is excluded by .dockerignore {excluded}"


# --- docker-compose.yml --------------------------------------------------------------------------


def _compose() -> tuple[str, dict]:
    text = (ROOT / "docker-compose.yml").read_text()
    return text, yaml.safe_load(text)


def test_compose_runs_the_service_with_a_health_check_and_a_restart_policy():
    _text, compose = _compose()
    api = compose["services"]["api"]
    build = api["build"]
    assert (build if isinstance(build, str) else build.get("context", ".")) == "."
    assert "8000:8000" in [str(port) for port in api["ports"]]
    check = api["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert "/readyz" in " ".join(check["test"])  # ready: database reachable, migrations current
    assert {"interval", "timeout", "retries"} <= set(check)
    assert api["restart"] in ("always", "unless-stopped", "on-failure")
    assert "WEB_CONCURRENCY" in api["environment"]


def test_compose_has_postgresql_and_redis_with_health_checks():
    _text, compose = _compose()
    services = compose["services"]
    assert set(services) == {"api", "migrate", "postgres", "redis"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["image"].startswith("redis:")
    assert "ping" in services["redis"]["healthcheck"]["test"]
    # PostgreSQL keeps its data in a named volume.
    volume = services["postgres"]["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]


def test_compose_starts_the_api_after_its_migrations_and_healthy_dependencies():
    _text, compose = _compose()
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["flask", "--app", "service.wsgi", "db", "upgrade"]
    assert migrate["image"] == services["api"]["image"]  # the same code migrates and serves
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
