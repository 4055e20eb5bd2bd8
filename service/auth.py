"""API keys at the edge: every /v1 request carries ``Authorization: Bearer <key>``.

Health, readiness, the OpenAPI document and the Swagger UI need no key.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, g, request

from service.auth_failures import FailedAuthenticationBudget, failed_authentication_budget
from service.observability import observe_rate_limit
from service.storage import (
    ApiKeyStore,
    KeyChecker,
    KeyShape,
    Principal,
    StorageUnavailable,
    hash_key,
    is_legacy_shaped,
)
from service.web import RATE_LIMITED_PROBLEM, problem

PROTECTED_PREFIX = "/v1/"
CHALLENGE = 'Bearer realm="popliteal"'
# After the database failed a key lookup, how long known keys are served without asking it.
UNAVAILABLE_BACKOFF_SECONDS = 5.0
# Enough for every key a deployment has; beyond it the cache starts afresh.
MAX_CACHED_KEYS = 10_000


def bearer_token() -> str:
    """The credential of this request's ``Authorization: Bearer <credential>`` header."""
    return bearer_credential(request.headers.get("Authorization", ""))


def bearer_credential(authorization: str) -> str:
    """The credential of an ``Authorization: Bearer <credential>`` header's value; "" for any
    other scheme, so that a key or token sent another way is never looked at."""
    scheme, _, credential = authorization.partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


class KeyVerifier:
    """Verifies keys: offline first (their shape and check), then against the database,
    remembering answers for a few seconds.

    A malformed key, or one whose check fails, is refused with no lookup. A revoked key stops
    working once its entry is older than ``fresh_seconds`` (a refused one is remembered as
    long, so a revoked key sent in a loop costs one lookup per interval). While the database
    is unreachable, a key verified within ``stale_seconds`` is still accepted, so that the
    stateless red-flag screen stays available to known clients; nothing can be revoked during
    such an outage anyway, since revoking needs the database.
    """

    def __init__(
        self,
        keys: ApiKeyStore,
        fresh_seconds: float,
        stale_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._fresh = fresh_seconds
        self._stale = stale_seconds
        self._clock = clock
        self._verified: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()
        # Read from the database once, when first needed (the service starts without it).
        self._checker: KeyChecker | None = None
        self._unavailable_until = -math.inf
        self._legacy_keys_exist = False

    def cached(self, key: str) -> Principal | None:
        """The principal for a key verified within the fresh time, without asking anyone."""
        entry = self._verified.get(hash_key(key))
        return entry[1] if self._is_fresh(entry, self._clock()) else None

    def _is_fresh(self, entry: tuple[float, Principal | None] | None, now: float) -> bool:
        return entry is not None and now - entry[0] < self._fresh

    def _load_checker(self) -> KeyChecker:
        if self._checker is None:
            self._checker, self._legacy_keys_exist = self._keys.key_checker()
        return self._checker

    def looks_up_legacy_keys(self) -> bool:
        """Whether a legacy-shaped key is looked up (some legacy key exists) rather than refused;
        assumed so while the database cannot say."""
        try:
            self._load_checker()
        except StorageUnavailable:
            return True
        return self._legacy_keys_exist

    def shape(self, key: str) -> KeyShape:
        """Judged offline; needs the database once per process, for the check's secret."""
        shape = self._load_checker().shape(key)
        if shape is KeyShape.LEGACY and not self._legacy_keys_exist:
            return KeyShape.REFUSED  # no legacy key to find: nothing to look up
        return shape

    def verify(self, key: str) -> Principal | None:
        digest = hash_key(key)
        now = self._clock()
        entry = self._verified.get(digest)
        if self._is_fresh(entry, now):
            return entry[1]
        stale = entry[1] if entry is not None and now - entry[0] < self._stale else None
        # Just after the database failed, a known key is served from the cache without asking
        # again: each attempt could cost a connection timeout (seconds, in a partition).
        if stale is not None and now < self._unavailable_until:
            return stale
        try:
            if self.shape(key) is KeyShape.REFUSED:
                return None
            principal = self._keys.authenticate(key)
        except StorageUnavailable:
            self._unavailable_until = self._clock() + UNAVAILABLE_BACKOFF_SECONDS
            if stale is not None:
                return stale
            raise
        with self._lock:
            if len(self._verified) >= MAX_CACHED_KEYS:
                self._verified.clear()
            self._verified[digest] = (now, principal)
        return principal


def client_address(remote_addr: str | None) -> str:
    """The address budgets and limits count a request under (one name when there is none)."""
    return remote_addr or "unknown"


def protected(path: str, method: str) -> bool:
    """Whether a request needs a key: /v1, except CORS preflights (no credentials by design)."""
    return path.startswith(PROTECTED_PREFIX) and method != "OPTIONS"


@dataclass(frozen=True)
class KeyRefusal:
    """Why a request's key was refused: a 401 (``error``: the WWW-Authenticate error, if any),
    or a 429 once the address spent its budget of wrong keys (``retry_after``, seconds).
    ``budgeted``: a wrong key that spends the address's budget when refused."""

    status: int
    detail: str | None = None
    error: str | None = None
    retry_after: int | None = None
    budgeted: bool = False


NO_KEY = KeyRefusal(401)
WRONG_KEY = "This API key is not valid, or it has been revoked."
TOO_MANY_WRONG_KEYS = (
    "Too many requests with a wrong API key from this address; retry after the Retry-After "
    "header's seconds."
)


class ApiKeyCheck:
    """The key check of a protected request, from plain values; the Flask hook and the fast
    path both ask it. ``verdict`` spends nothing: whoever answers the refusal spends
    (``spend``), so that a request passed on to another path is never counted twice."""

    def __init__(self, verifier: KeyVerifier, budget: FailedAuthenticationBudget | None) -> None:
        self.verifier = verifier
        self.budget = budget

    def verdict(
        self, authorization: str, address: str, look_up: bool = True
    ) -> Principal | KeyRefusal | None:
        """The principal, or why the key is refused. ``look_up=False``: None (undecided) for a
        key not verified within the fresh time, rather than asking the database."""
        key = bearer_credential(authorization)
        if not key:
            return NO_KEY
        verifier, budget = self.verifier, self.budget
        principal = verifier.cached(key)
        if principal is None and not look_up:
            return None
        # Only a legacy key can cost a lookup of a key nobody checked: it alone is budgeted.
        budgeted = (
            budget is not None
            and principal is None
            and is_legacy_shaped(key)
            and verifier.looks_up_legacy_keys()
        )
        if budgeted and budget.exhausted(address):
            return KeyRefusal(429, TOO_MANY_WRONG_KEYS, retry_after=budget.retry_after(address))
        if principal is None:
            principal = verifier.verify(key)
        if principal is None:
            return KeyRefusal(401, WRONG_KEY, "invalid_token", budgeted=budgeted)
        return principal

    def spend(self, refusal: KeyRefusal, address: str) -> None:
        if refusal.budgeted and self.budget is not None:
            self.budget.spend(address)


def install_api_key_check(app: Flask, keys: ApiKeyStore) -> ApiKeyCheck:
    verifier = KeyVerifier(
        keys, app.config["API_KEY_CACHE_SECONDS"], app.config["API_KEY_STALE_SECONDS"]
    )
    key_check = ApiKeyCheck(verifier, failed_authentication_budget(app.config))

    @app.before_request
    def require_api_key():
        if not protected(request.path, request.method):
            return None
        address = client_address(request.remote_addr)
        verdict = key_check.verdict(request.headers.get("Authorization", ""), address)
        if isinstance(verdict, KeyRefusal):
            key_check.spend(verdict, address)
            return _refused(verdict)
        g.principal = verdict
        return None

    return key_check


def _refused(refusal: KeyRefusal):
    if refusal.status == 429:
        observe_rate_limit("failed_authentication")
        return problem(
            429,
            refusal.detail,
            type_=RATE_LIMITED_PROBLEM,
            headers={"Retry-After": str(refusal.retry_after)},
        )
    challenge = f'{CHALLENGE}, error="{refusal.error}"' if refusal.error else CHALLENGE
    return problem(401, refusal.detail, headers={"WWW-Authenticate": challenge})
