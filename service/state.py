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
from datetime import datetime
from typing import Any, Protocol

from flask import Flask, current_app

from rules import RulesLibrary
from service.auth_failures import FailedAuthenticationBudget
from service.rate_counts import PerKeyLimiter
from service.storage import Storage, Subject

# Where the state is kept among the app's extensions.
EXTENSION = "popliteal"


class CdsTokenVerifier(Protocol):
    """What requests ask of the CDS clients' token verifier (``service.cds.tokens``).

    The state names what it does rather than importing it: the CDS package reads the state, so
    an import here would put the two in a cycle (``service.storage.connections`` does the same
    for the stores)."""

    @property
    def configured(self) -> bool:
        """Whether CDS clients are trusted and the service's public URL is set."""
        ...

    def verify(self, token: str, service_id: str, may_fetch: bool = True) -> tuple[Any, datetime]:
        """The caller (a ``service.cds.tokens.CdsCaller``), and until when its token counts."""
        ...


class SubjectPseudonymizer(Protocol):
    """What requests ask of the patients' pseudonymizer (``service.cds.pseudonyms``)."""

    def subject(self, real: Subject) -> Subject:
        """The stored stand-in for a real identifier: the same for the same identifier."""
        ...


@dataclass(frozen=True)
class AppState:
    # Every rules version, loaded and checked at start-up.
    rules: RulesLibrary
    # The database; connections open lazily, in each worker process, on first use.
    storage: Storage
    # The per-key rate limits of the /v1 API (service.limits installs them).
    limiter: PerKeyLimiter
    # The trusted CDS clients and their keys (unconfigured: every CDS call is refused).
    cds_verifier: CdsTokenVerifier
    # Failed CDS authentications per address: past it, only keys already fetched are used and
    # failures answer 429 (a valid token is still accepted). None where rate limits are off.
    cds_budget: FailedAuthenticationBudget | None
    # Turns a CDS patient's identifiers into the pseudonyms stored; None without CDS clients.
    pseudonymizer: SubjectPseudonymizer | None

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
