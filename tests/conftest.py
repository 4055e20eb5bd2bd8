"""Fixtures shared by every test: the app in-process and its test client."""

from __future__ import annotations

import pytest

from service import create_app
from service.config import TestingConfig


@pytest.fixture(scope="session")
def app():
    return create_app(TestingConfig)


@pytest.fixture
def client(app):
    return app.test_client()
