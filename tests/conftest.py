"""Fixtures shared by every test: the app in-process, its test client, and the real service
under gunicorn on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from service import create_app
from service.config import TestingConfig

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def app():
    return create_app(TestingConfig)


@pytest.fixture
def client(app):
    return app.test_client()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy within {timeout} s")


@pytest.fixture(scope="session")
def live_server():
    """The real service: gunicorn with two sync workers, as in production. Yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--log-level", "warning", "--no-control-socket", "service.wsgi:app",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "POPLITEAL_CONFIG": "production"},
    )  # fmt: skip
    try:
        wait_until_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
