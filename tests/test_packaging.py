"""Packaging: the Dockerfile lints clean, compose runs the service, the lock file is in force."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[_normal(name)] = version
    return pins


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    result = subprocess.run(
        [hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_keeps_its_promises():
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in text
    assert "-slim" in text
    assert text.index("constraints.txt") < text.index("COPY rules"), "dependencies first"
    assert "\nUSER " in text
    assert "USER root" not in text
    assert "HEALTHCHECK" in text
    assert 'CMD ["gunicorn"' in text, "gunicorn in exec form"


def test_compose_runs_the_service_with_a_health_check():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    api = compose["services"]["api"]
    assert api["build"] == "."
    assert "8000:8000" in api["ports"]
    assert "/healthz" in " ".join(api["healthcheck"]["test"])


def test_every_installed_dependency_is_the_pinned_version():
    pins = _pins()
    project_requirements = metadata.requires("popliteal") or []
    assert project_requirements, "the project is not installed"
    mismatched = {}
    for dist in metadata.distributions():
        name = _normal(dist.metadata["Name"])
        if name in ("popliteal", "pip", "setuptools", "wheel"):
            continue
        if name not in pins:
            mismatched[name] = f"{dist.version} installed, not in constraints.txt"
        elif pins[name] != dist.version:
            mismatched[name] = f"{dist.version} installed, {pins[name]} pinned"
    assert mismatched == {}
