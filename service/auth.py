"""API keys at the edge: every /v1 request carries ``Authorization: Bearer <key>``.

Health, readiness, the OpenAPI document and the Swagger UI need no key.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from flask import Flask, g, request

from service.http import problem
from service.storage import Principal, StorageUnavailable
from service.storage.keys import ApiKeyStore

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

    def verify(self, key: str) -> Principal | None:
        digest = hashlib.sha256(key.encode()).hexdigest()
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


def install_api_key_check(app: Flask, keys: ApiKeyStore) -> KeyVerifier:
    verifier = KeyVerifier(
        keys, app.config["API_KEY_CACHE_SECONDS"], app.config["API_KEY_STALE_SECONDS"]
    )

    @app.before_request
    def require_api_key():
        # CORS preflights carry no credentials by design.
        if not request.path.startswith(PROTECTED_PREFIX) or request.method == "OPTIONS":
            return None
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return problem(401, headers={"WWW-Authenticate": CHALLENGE})
        principal = verifier.verify(key)
        if principal is None:
            return problem(
                401,
                "This API key is not valid, or it has been revoked.",
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
            )
        g.principal = principal
        return None

    return verifier
