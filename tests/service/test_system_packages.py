"""scripts/test and the Debian packages it installs: it says so before it does, names the
packages and how to skip, and installs nothing with SKIP_SYSTEM_PACKAGES=1. The script runs for
real, in a copy of the checkout whose bootstrap and tools are stand-ins, on a PATH without
chromium and with an apt-get that only writes down that it was called."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APT_CALLED = "apt-get was called:"


def _stand_in(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def checkout(tmp_path) -> Path:
    """scripts/test as it is, with stand-ins for what it runs after the system packages."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "test", tmp_path / "scripts" / "test")
    _stand_in(tmp_path / "scripts" / "bootstrap", "exit 0")
    tools = tmp_path / ".venv" / "bin"
    tools.mkdir(parents=True)
    for tool in ("ruff", "lint-imports", "hadolint", "python"):
        _stand_in(tools / tool, "exit 0")
    # A PATH with the shell and the commands the script itself uses, and nothing else: no
    # chromium, no chromedriver, no nginx. `id -u` says root, so installing is on the cards.
    path = tmp_path / "path"
    path.mkdir()
    for command in ("bash", "dirname"):
        (path / command).symlink_to(shutil.which(command))
    _stand_in(path / "id", "echo 0")
    _stand_in(path / "apt-get", f'echo "{APT_CALLED} $*" >&2')
    return tmp_path


def _run_tests_script(checkout: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": str(checkout / "path"),
        "HOME": os.environ.get("HOME", "/tmp"),
        **environment,
    }
    # An argument for pytest makes it a partial run: the load harness is left out.
    return subprocess.run(
        [str(checkout / "scripts" / "test"), "-q"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_skip_system_packages_installs_nothing_and_says_so(checkout):
    run = _run_tests_script(checkout, SKIP_SYSTEM_PACKAGES="1")
    assert run.returncode == 0, run.stderr
    assert APT_CALLED not in run.stderr
    assert "SKIP_SYSTEM_PACKAGES=1: not installing" in run.stderr
    assert "chromium chromium-driver" in run.stderr
    assert "the browser test will be skipped" in run.stderr


def test_without_it_the_packages_are_named_before_apt_get_runs(checkout):
    run = _run_tests_script(checkout)
    assert run.returncode == 0, run.stderr
    announced = run.stderr.index("Installing the Debian packages chromium chromium-driver")
    assert "SKIP_SYSTEM_PACKAGES=1 skips this" in run.stderr
    first_call = run.stderr.index(APT_CALLED)
    assert announced < first_call
    assert f"{APT_CALLED} install -y -qq chromium chromium-driver" in run.stderr


def test_ci_does_not_skip_the_system_packages():
    assert "SKIP_SYSTEM_PACKAGES" not in (ROOT / ".ci" / "run").read_text()
