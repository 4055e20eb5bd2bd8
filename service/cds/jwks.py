"""A CDS client's JWK Set at a URL, fetched off the request path.

A request never waits on the key server, but the one that starts a process's first fetch (for
at most ``first_wait``). Fetches run in a background thread, one at a time per URL, with a
timeout; a failed fetch is remembered and retried only after a back-off that doubles up to
``max_backoff``, so tokens that name a client cannot make the service call out at their pace.
A token whose ``kid`` is not in the cached set asks for a refresh at most every
``min_refresh`` seconds (that is how a client's key rotation is picked up); meanwhile it is
refused. Keys stay usable ``max_stale`` seconds past their lifespan while refreshes fail, so a
key server's outage does not stop a client whose keys are known.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

import jwt

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 1_000_000
FIRST_BACKOFF_SECONDS = 5.0


class JwkSetUnavailable(Exception):
    """No usable keys yet (never fetched, or the fetch is failing)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # The address was checked when the clients file was read; a redirect would skip the check.
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def fetch_jwk_set(url: str, timeout: float) -> list[jwt.PyJWK]:
    if urlsplit(url).scheme not in ("https", "http"):  # http only where jwks_url_problem allows
        raise JwkSetUnavailable("not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with _opener.open(request, timeout=timeout) as response:
        if response.status != 200:
            raise JwkSetUnavailable(f"HTTP {response.status}")
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise JwkSetUnavailable("the JWK Set is larger than 1 MB")
    return jwt.PyJWKSet.from_json(body.decode("utf-8")).keys  # an empty set raises


class RemoteJwkSet:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        lifespan: float = 300.0,
        max_stale: float = 3600.0,
        first_wait: float = 2.0,
        min_refresh: float = 60.0,
        max_backoff: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        fetch: Callable[[str, float], list[jwt.PyJWK]] = fetch_jwk_set,
    ) -> None:
        self.url = url
        self._timeout, self._lifespan, self._max_stale = timeout, lifespan, max_stale
        self._first_wait, self._min_refresh, self._max_backoff = (
            first_wait,
            min_refresh,
            max_backoff,
        )
        self._clock = clock
        self._fetch = fetch
        self._lock = threading.Lock()
        self._keys: list[jwt.PyJWK] | None = None
        self._fetched_at = -math.inf
        self._last_attempt = -math.inf
        self._backoff = 0.0
        self._backoff_until = -math.inf
        self._running: threading.Event | None = None
        self.fetches = 0  # attempts started, for tests and logs

    def keys(self, kid: str | None, *, may_fetch: bool = True) -> list[jwt.PyJWK]:
        """The cached keys, refreshed in the background when due; ``may_fetch=False`` (an
        address over its failure budget) never starts a fetch."""
        now = self._clock()
        keys, age = self._keys, now - self._fetched_at
        unknown_kid = keys is not None and kid is not None and kid not in _kids(keys)
        due = (
            keys is None
            or age >= self._lifespan
            or (unknown_kid and now - self._last_attempt >= self._min_refresh)
        )
        started = self._start_fetch(now) if due and may_fetch else None
        if keys is None and started is not None:
            started.wait(self._first_wait)  # only a request that starts a first fetch waits
            keys, age = self._keys, self._clock() - self._fetched_at
        if keys is None or age >= self._lifespan + self._max_stale:
            raise JwkSetUnavailable("the client's JWK Set is not available")
        return keys

    def _start_fetch(self, now: float) -> threading.Event | None:
        """The new fetch's completion; None when one is running already or backing off."""
        with self._lock:
            if self._running is not None or now < self._backoff_until:
                return None
            self._running = threading.Event()
            self._last_attempt = now
            self.fetches += 1
            running = self._running
        threading.Thread(target=self._run, args=(running,), daemon=True).start()
        return running

    def _run(self, running: threading.Event) -> None:
        try:
            keys = self._fetch(self.url, self._timeout)
        except Exception as error:  # any failure: remembered, retried after the back-off
            with self._lock:
                self._backoff = min(
                    self._max_backoff, max(FIRST_BACKOFF_SECONDS, 2 * self._backoff)
                )
                self._backoff_until = self._clock() + self._backoff
            log.warning(
                "cannot fetch the JWK Set at %s (%s); next try in %.0f s",
                self.url,
                type(error).__name__,
                self._backoff,
            )
        else:
            with self._lock:
                self._keys, self._fetched_at = keys, self._clock()
                self._backoff, self._backoff_until = 0.0, -math.inf
        finally:
            with self._lock:
                self._running = None
            running.set()


def _kids(keys: list[jwt.PyJWK]) -> set[str | None]:
    return {key.key_id for key in keys}
