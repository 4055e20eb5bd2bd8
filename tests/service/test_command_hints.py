"""The command line's hints work as typed: the key hint of a restart runs as printed, through
`flask` or the `popliteal` command; no text in the service names a Flask command without the
app; and the database's migration state is said in words (up to date, behind, ahead)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa

from service import create_app
from service.cli import typed
from service.state import state
from tests.conftest import app_config

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
KEY = re.compile(r"plt_[A-Za-z0-9_-]{20,}")


def _run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=180
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


def _hint(output: str) -> str:
    """The command line the restart's message says to type."""
    [line] = [line for line in output.splitlines() if "keys create" in line]
    return line.strip()


def test_the_key_hint_of_a_restart_runs_as_printed_from_anywhere(tmp_path):
    popliteal = VENV_BIN / "popliteal"
    assert popliteal.exists(), "the popliteal command is not installed: run scripts/bootstrap"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'hints.sqlite3'}"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run([str(popliteal), "db", "upgrade"], env, ROOT)
    flask = [str(VENV_BIN / "flask"), "--app", "service.wsgi"]
    assert KEY.search(_run([*flask, "keys", "ensure-dev"], env, ROOT))  # the first start

    for starter, tenant in ((flask, "through-flask"), ([str(popliteal)], "through-popliteal")):
        restart = _run([*starter, "keys", "ensure-dev"], env, ROOT)
        assert not KEY.search(restart)
        hint = _hint(restart)
        typed_line = hint.replace("NAME", tenant)
        created = _run(shlex.split(typed_line), env, elsewhere)
        assert KEY.search(created), (hint, created)
        assert repr(tenant) in created


def test_the_popliteal_command_is_declared_with_the_app_preset():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["popliteal"] == "service.cli:main"


@pytest.mark.parametrize(
    ("argv", "on_path", "expected"),
    [
        (["popliteal"], True, "popliteal keys list"),
        (["flask"], True, "flask --app service.wsgi keys list"),
        (["/opt/env/bin/popliteal"], False, "/opt/env/bin/popliteal keys list"),
        (["/opt/env/bin/flask"], False, "/opt/env/bin/flask --app service.wsgi keys list"),
        (["/usr/bin/pytest"], False, "flask --app service.wsgi keys list"),
        ([], False, "flask --app service.wsgi keys list"),
    ],
)
def test_a_hint_names_the_program_that_is_running(monkeypatch, argv, on_path, expected):
    monkeypatch.setattr(sys, "argv", argv)
    found = (lambda name: f"/opt/env/bin/{Path(name).name}") if on_path else (lambda name: None)
    monkeypatch.setattr(typed.shutil, "which", found)
    monkeypatch.setattr(typed.os.path, "realpath", lambda path: path)
    assert typed.typed_command("keys list") == expected


def test_no_text_of_the_service_names_a_flask_command_without_the_app(app):
    commands = "|".join(app.cli.list_commands(None))
    without_app = re.compile(rf"\bflask\s+(?:{commands})\b")
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in sorted((ROOT / "service").rglob("*.py"))
        for match in without_app.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# -- The database's state, in words --------------------------------------------------------------


@pytest.fixture
def scratch_app(tmp_path):
    app = create_app(app_config(DATABASE_URL=f"sqlite:///{tmp_path / 'states.sqlite3'}"))
    yield app
    state(app).storage.dispose()


def test_the_database_state_is_said_in_words_with_what_to_do(scratch_app):
    runner = scratch_app.test_cli_runner()
    storage = state(scratch_app).storage
    [head] = storage.expected_revisions()

    def said(*arguments: str) -> str:
        result = runner.invoke(args=["db", *arguments])
        assert result.exit_code == 0, result.output
        return result.output

    empty = said("current")
    assert "empty" in empty
    assert "flask --app service.wsgi db upgrade" in empty

    behind = said("upgrade", "--revision", "0003")
    assert "behind: at revision 0003" in behind
    assert f"newest is {head}" in behind
    assert "flask --app service.wsgi db upgrade" in behind
    assert "wanted" not in behind

    assert f"up to date: at revision {head}" in said("upgrade")
    assert "up to date" in said("current")

    with storage.transaction() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    ahead = said("current")
    assert "ahead of this code: it is at revision 9999" in ahead
    assert f"db downgrade {head}" in ahead
