"""Fixtures for the rules-core tests: the rule library is loaded (and checked) once per session.

``evaluator`` is the default, newest version: the behaviour the service gives a request that pins
no version. ``any_evaluator`` runs a test once per loaded version, for the properties every
version must keep.
"""

from __future__ import annotations

import pytest

from rules import load_library

VERSIONS = load_library().versions


@pytest.fixture(scope="session")
def library():
    return load_library()


@pytest.fixture(scope="session")
def evaluator(library):
    return library.get()


@pytest.fixture(scope="session", params=VERSIONS)
def any_evaluator(library, request):
    return library.get(request.param)
