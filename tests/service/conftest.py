"""Fixtures of the tests that compare two apps' answers (tests/service/wsgi_exchange.py)."""

from __future__ import annotations

import logging

import pytest

from service import observability
from service.logs import ACCESS_LOGGER
from tests.service.wsgi_exchange import LineCapture


@pytest.fixture
def fixed_request_clock(monkeypatch):
    monkeypatch.setattr(observability, "perf_counter", lambda: 1000.0)


@pytest.fixture
def access_lines() -> LineCapture:
    capture = LineCapture()
    logger = logging.getLogger(ACCESS_LOGGER)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(level)
