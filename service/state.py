"""The app's shared objects, built once by create_app and reached one typed way: ``state()``.

Request code reads ``state().storage``, ``state().rules`` and so on from the current app; code
that holds an app (the tests, gunicorn's hooks) reads ``state(app)``. The object is frozen:
what an app shares is decided at start-up and never swapped under a running request.

The Prometheus metrics are not here: prometheus_client registers each metric once per process
(and under gunicorn each worker writes its own samples), so they are one set per process
however many apps it creates. ``service.metrics`` is their one home.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from flask import Flask, current_app
from flask_limiter import Limiter

from rules import RulesLibrary
from service.auth_failures import FailedAuthenticationBudget
from service.cds_auth import TokenVerifier
from service.pseudonyms import Pseudonymizer
from service.storage import Storage

# Where the state is kept among the app's extensions.
EXTENSION = "popliteal"


@dataclass(frozen=True)
class AppState:
    # Every rules version, loaded and checked at start-up.
    rules: RulesLibrary
    # The database; connections open lazily, in each worker process, on first use.
    storage: Storage
    # Flask-Limiter: the per-key rate limits of the /v1 API.
    limiter: Limiter
    # The trusted CDS clients and their keys (unconfigured: every CDS call is refused).
    cds_verifier: TokenVerifier
    # Failed CDS authentications per address: past it, only keys already fetched are used and
    # failures answer 429 (a valid token is still accepted). None where rate limits are off.
    cds_budget: FailedAuthenticationBudget | None
    # Turns a CDS patient's identifiers into the pseudonyms stored; None without CDS clients.
    pseudonymizer: Pseudonymizer | None

    def __getitem__(self, name: str):
        """``app.extensions["popliteal"]["storage"]``, read-only, for code outside the service
        that still reads the state that way (gunicorn.conf.py's post_fork); use ``state(app)``."""
        if name not in _FIELDS:
            raise KeyError(name)
        return getattr(self, name)


_FIELDS = frozenset(field.name for field in fields(AppState))


def state(app: Flask | None = None) -> AppState:
    """The shared objects of ``app``, or of the current app."""
    return (current_app if app is None else app).extensions[EXTENSION]
