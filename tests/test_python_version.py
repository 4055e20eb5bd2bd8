"""The Python versions the project declares are the ones it is tested and shipped on: pyproject's
requires-python and classifiers, the Dockerfile's base images, scripts/bootstrap's check, ruff's
target, and the interpreter running these tests all name the same minor version."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# Every minor version a declaration could plausibly allow, older and newer than today's.
CANDIDATES = [f"3.{minor}" for minor in range(6, 20)]


def _allowed_by_requires_python() -> set[str]:
    specifier = SpecifierSet(PYPROJECT["project"]["requires-python"])
    return {version for version in CANDIDATES if specifier.contains(f"{version}.0")}


def _classified() -> set[str]:
    prefix = "Programming Language :: Python :: "
    versions = {
        classifier.removeprefix(prefix)
        for classifier in PYPROJECT["project"].get("classifiers", [])
        if classifier.startswith(prefix)
    }
    return {version for version in versions if re.fullmatch(r"3\.\d+", version)}


def _docker_base_images() -> set[str]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    images = re.findall(r"^FROM\s+python:(\d+\.\d+)(?:\.\d+)?\S*", text, flags=re.MULTILINE)
    assert images, "the Dockerfile has no python base image"
    return set(images)


def test_requires_python_allows_exactly_one_minor_version():
    assert _allowed_by_requires_python() == {"3.11"}


def test_the_classifiers_name_the_versions_requires_python_allows():
    project = PYPROJECT["project"]
    assert "Programming Language :: Python :: 3 :: Only" in project["classifiers"]
    assert _classified() == _allowed_by_requires_python()


def test_the_dockerfile_base_image_is_a_declared_version():
    assert _docker_base_images() == _allowed_by_requires_python()


def test_bootstrap_ruff_and_this_interpreter_agree():
    [allowed] = _allowed_by_requires_python()
    major, minor = allowed.split(".")
    bootstrap = (ROOT / "scripts" / "bootstrap").read_text(encoding="utf-8")
    assert f"sys.version_info[:2] != ({major}, {minor})" in bootstrap
    assert f"python{allowed}" in bootstrap
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{major}{minor}"
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == allowed
