"""The README teaches by example, so its examples are run: every shell block that calls the
service with curl, and the Python example, against a real gunicorn. Each curl call in the
README ends with `# → STATUS`; the call must answer exactly that. The README stays short and
its links, and those of docs/, lead somewhere."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, Gunicorn, gunicorn_server

README = REPO_ROOT / "README.md"
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
README_BASE_URL = "http://127.0.0.1:8000"
MAX_README_LINES = 260

SHELL_BLOCK = re.compile(r"^```(sh|bash|console)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXPECTED_STATUS = re.compile(r"#\s*→\s*(\d{3})")
# A curl invocation: the command name at the start of a command (not inside a word or a
# function's name), so that `api() { curl …; }` counts once, where `api` is called.
CURL_CALL = re.compile(r"(?:^|[\s;|(&{$])(?:curl|api)\s")
INLINE_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# The wrapper the test puts in front of curl: every call reports its status on stderr, one
# line each, without touching what the call writes to stdout (the README pipes it on).
STATUS_REPORTER = "curl() { command curl --write-out '%{stderr}STATUS %{http_code}\\n' \"$@\"; }\n"


def shell_blocks(markdown: str) -> list[str]:
    """The shell blocks that call the service with curl, as commands (a console block's
    commands are its `$ ` lines and their continuations)."""
    blocks = []
    for kind, body in SHELL_BLOCK.findall(markdown):
        if kind == "console":
            body = console_commands(body)
        if "curl" in body:
            blocks.append(body)
    return blocks


def console_commands(body: str) -> str:
    commands, continuing = [], False
    for line in body.splitlines():
        if line.startswith("$ ") or continuing:
            commands.append(line.removeprefix("$ "))
            continuing = line.endswith("\\")
    return "\n".join(commands) + "\n"


def expected_statuses(block: str) -> list[int]:
    return [int(status) for status in EXPECTED_STATUS.findall(block)]


def calls_in(block: str) -> int:
    """How many times the block calls the service (lines defining a function excluded)."""
    commands = [line.split("#", 1)[0] for line in block.splitlines()]
    return sum(
        len(CURL_CALL.findall(" " + command)) for command in commands if "() {" not in command
    )


def as_test_script(block: str, server: Gunicorn) -> str:
    """The block with the live server's address and key in place of the README's."""
    block = block.replace(README_BASE_URL, server.url)
    return re.sub(r"^KEY=\S+", f"KEY={server.keys[0]}", block, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Gunicorn]:
    database = f"sqlite:///{tmp_path_factory.mktemp('readme') / 'popliteal.sqlite3'}"
    with gunicorn_server(database, tenant="readme", RATELIMIT_APPLICATION="10000 per minute") as s:
        yield s


def test_the_readme_has_curl_examples_and_each_call_says_its_status():
    blocks = shell_blocks(README.read_text())
    assert len(blocks) >= 3, "the first call, the EHR loop and the other calls"
    for block in blocks:
        assert calls_in(block) == len(expected_statuses(block)), (
            f"every curl call in this README block needs a `# → STATUS` comment:\n{block}"
        )


@pytest.mark.live
def test_every_curl_example_in_the_readme_answers_the_status_it_shows(server, tmp_path):
    """The blocks run in order in one shell, as a reader pastes them, so later blocks use
    what earlier ones set (KEY, URL, the helper functions, ids)."""
    blocks = shell_blocks(README.read_text())
    script = "set -euo pipefail\n" + STATUS_REPORTER
    for number, block in enumerate(blocks):
        script += f"echo 'BLOCK {number}' >&2\n{as_test_script(block, server)}\n"
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{result.stderr}\n{result.stdout[-2000:]}"
    answered: dict[int, list[int]] = {}
    for line in result.stderr.splitlines():
        if line.startswith("BLOCK "):
            current = answered.setdefault(int(line.split()[1]), [])
        elif line.startswith("STATUS "):
            current.append(int(line.split()[1]))
    for number, block in enumerate(blocks):
        assert answered.get(number) == expected_statuses(block), (
            f"README block {number} answered {answered.get(number)}:\n{block}"
        )


# In the README's trimmed answer: "key": value pairs with a whole value (a string cut short
# with … is left out), and the counts it gives in comments.
ANSWER_PAIR = re.compile(r'"(\w+)": ("[^"…]*"|-?\d+(?:\.\d+)?|true|false|null)(?=[,}\s])')
PLAN_ITEMS = re.compile(r"/\* (\d+) dosed exercises \*/")
MORE_QUESTIONS = re.compile(r"/\* (\d+) more")


def scalar_pairs(value: Any) -> set[tuple[str, Any]]:
    """Every (key, value) pair of a JSON document whose value is not an object or array."""
    if isinstance(value, dict):
        own = {(key, item) for key, item in value.items() if not isinstance(item, dict | list)}
        return own.union(*(scalar_pairs(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(scalar_pairs(item) for item in value))
    return set()


def first_call_body(readme: str) -> dict[str, Any]:
    """The JSON body the README's first curl call sends."""
    first = shell_blocks(readme)[0]
    words = shlex.split(first.replace("\\\n", " "), comments=True)
    return json.loads(words[words.index("-d") + 1])


@pytest.mark.live
def test_the_trimmed_answer_in_the_readme_is_what_the_first_call_answers(server):
    readme = README.read_text()
    [answer_block] = re.findall(r"^```jsonc\n(.*?)^```$", readme, re.MULTILINE | re.DOTALL)
    request = urllib.request.Request(
        f"{server.url}/v1/assess",
        data=json.dumps(first_call_body(readme)).encode(),
        headers={"Authorization": f"Bearer {server.keys[0]}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.load(response)
    shown = {(key, json.loads(value)) for key, value in ANSWER_PAIR.findall(answer_block)}
    assert len(shown) >= 10
    assert shown <= scalar_pairs(answer), f"not in the real answer: {shown - scalar_pairs(answer)}"
    [items] = PLAN_ITEMS.findall(answer_block)
    assert len(answer["exercise_plan"]["items"]) == int(items)
    [more] = MORE_QUESTIONS.findall(answer_block)
    assert len(answer["missing_information"]) == int(more) + 1


@pytest.mark.live
def test_the_python_example_runs_the_whole_loop_against_the_service(server):
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "fitness_app.py")],
        env={**os.environ, "POPLITEAL_URL": server.url, "POPLITEAL_API_KEY": server.keys[0]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # The scripted member answers every safety question, so the plan becomes ready and the
    # session runs to its end, with the screen repeated midway.
    assert "Q: " in result.stdout
    assert "screening again" in result.stdout
    assert "Session completed." in result.stdout, result.stdout


def test_the_readme_stays_short():
    lines = len(README.read_text().splitlines())
    assert lines < MAX_README_LINES, f"README.md has {lines} lines; move detail to docs/"


def heading_anchors(markdown: str) -> set[str]:
    """The anchors a Markdown renderer gives the page's headings (GitHub's rule: lower case,
    punctuation dropped, spaces to hyphens)."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken_links(document: Path) -> list[str]:
    """The relative links of a Markdown file whose file, or heading, does not exist."""
    broken = []
    for target in INLINE_LINK.findall(document.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # an address elsewhere
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        missing_heading = (
            linked.exists()
            and anchor
            and linked.suffix == ".md"
            and anchor not in heading_anchors(linked.read_text())
        )
        if not linked.exists() or missing_heading:
            broken.append(target)
    return broken


@pytest.mark.parametrize("document", [README, *DOCS], ids=lambda path: path.name)
def test_every_relative_link_resolves(document: Path):
    assert not broken_links(document), f"{document.name}: links that lead nowhere"


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## A heading, with a comma\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[a](missing.md) [b](other.md#a-heading-with-a-comma) [c](other.md#nowhere)\n"
        "[d](#page) [e](#gone) [f](https://example.org/x.md)\n"
    )
    assert broken_links(page) == ["missing.md", "other.md#nowhere", "#gone"]
