"""API keys at the edge: every /v1 request carries ``Authorization: Bearer <key>``.

Health, readiness, the OpenAPI document and the Swagger UI need no key.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

import limits
import limits.storage
import limits.strategies
from flask import Flask, g, request

from service.http import RATE_LIMITED_PROBLEM, bearer_token, problem
from service.observability import observe_rate_limit
from service.storage import Principal, StorageUnavailable
from service.storage.keys import ApiKeyStore, hash_key

log = logging.getLogger(__name__)

PROTECTED_PREFIX = "/v1/"
CHALLENGE = 'Bearer realm="popliteal"'
# Enough for every key a deployment has; beyond it the cache starts afresh.
MAX_CACHED_KEYS = 10_000


class KeyVerifier:
    """Verifies keys against the database, remembering good ones for a few seconds.

    A revoked key stops working once its entry is older than ``fresh_seconds``. While the
    database is unreachable, a key verified within ``stale_seconds`` is still accepted, so
    that the stateless red-flag screen stays available to known clients; nothing can be
    revoked during such an outage anyway, since revoking needs the database.
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
        self._verified: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def cached(self, key: str) -> Principal | None:
        """The principal for a key verified within the fresh time, without asking anyone."""
        entry = self._verified.get(hash_key(key))
        if entry is not None and self._clock() - entry[0] < self._fresh:
            return entry[1]
        return None

    def verify(self, key: str) -> Principal | None:
        digest = hash_key(key)
        now = self._clock()
        entry = self._verified.get(digest)
        if entry is not None and now - entry[0] < self._fresh:
            return entry[1]
        try:
            principal = self._keys.authenticate(key)
        except StorageUnavailable:
            if entry is not None and now - entry[0] < self._stale:
                return entry[1]
            raise
        with self._lock:
            if principal is None:
                self._verified.pop(digest, None)
            else:
                if len(self._verified) >= MAX_CACHED_KEYS:
                    self._verified.clear()
                self._verified[digest] = (now, principal)
        return principal


class FailedAuthenticationBudget:
    """How many requests with a missing or wrong key one address may send.

    Every unknown key costs a database lookup; without this, anyone could make the database
    work at the speed they send requests. Counted where the rate limits are (memory or Redis);
    if Redis is away, in this process's memory instead.
    """

    def __init__(self, limit: str, storage_uri: str, storage_options: dict) -> None:
        self.limit = limits.parse(limit)
        self._shared = limits.strategies.FixedWindowRateLimiter(
            limits.storage.storage_from_string(storage_uri, **storage_options)
            if not storage_uri.startswith("memory")
            else limits.storage.MemoryStorage()
        )
        self._local = limits.strategies.FixedWindowRateLimiter(limits.storage.MemoryStorage())
        self._shared_away = False  # logged once when the shared store goes, once when back

    def _call(self, method: str, address: str):
        try:
            result = getattr(self._shared, method)(self.limit, "popliteal-auth-failures", address)
        except Exception:  # the shared store is away: count here rather than fail the request
            if not self._shared_away:
                log.warning("rate-limit storage unreachable; counting failed keys per process")
                self._shared_away = True
            return getattr(self._local, method)(self.limit, "popliteal-auth-failures", address)
        if self._shared_away:
            log.info("rate-limit storage back; counting failed keys there again")
            self._shared_away = False
        return result

    def exhausted(self, address: str) -> bool:
        return not self._call("test", address)

    def spend(self, address: str) -> None:
        self._call("hit", address)

    def retry_after(self, address: str) -> int:
        stats = self._call("get_window_stats", address)
        return max(1, math.ceil(stats.reset_time - time.time()))


def install_api_key_check(app: Flask, keys: ApiKeyStore) -> KeyVerifier:
    verifier = KeyVerifier(
        keys, app.config["API_KEY_CACHE_SECONDS"], app.config["API_KEY_STALE_SECONDS"]
    )
    budget = (
        FailedAuthenticationBudget(
            app.config["AUTH_FAILURE_LIMIT"],
            app.config["RATELIMIT_STORAGE_URI"],
            app.config["RATELIMIT_STORAGE_OPTIONS"],
        )
        if app.config["RATELIMIT_ENABLED"]
        else None
    )

    def refused(address: str, response):
        if budget is not None:
            budget.spend(address)
        return response

    @app.before_request
    def require_api_key():
        # CORS preflights carry no credentials by design.
        if not request.path.startswith(PROTECTED_PREFIX) or request.method == "OPTIONS":
            return None
        address = request.remote_addr or "unknown"
        key = bearer_token()
        # A key verified moments ago is served whatever others from its address sent.
        principal = verifier.cached(key) if key else None
        if principal is None and budget is not None and budget.exhausted(address):
            observe_rate_limit("failed_authentication")
            return problem(
                429,
                "Too many requests with a missing or wrong API key from this address; retry "
                "after the Retry-After header's seconds.",
                type_=RATE_LIMITED_PROBLEM,
                headers={"Retry-After": str(budget.retry_after(address))},
            )
        if principal is None:
            if not key:
                return refused(address, problem(401, headers={"WWW-Authenticate": CHALLENGE}))
            principal = verifier.verify(key)
        if principal is None:
            return refused(
                address,
                problem(
                    401,
                    "This API key is not valid, or it has been revoked.",
                    headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
                ),
            )
        g.principal = principal
        return None

    return verifier
