"""Budgets of failed authentications per client address: each failure can cost a lookup (of
an API key in the database, of a CDS client's keys over the network), so an address that keeps
failing is refused for a while. Used by the API key check and by the CDS Hooks service."""

from __future__ import annotations

import logging
import math
import time

import limits
import limits.storage
import limits.strategies

log = logging.getLogger(__name__)


class FailedAuthenticationBudget:
    """How many requests with a missing or wrong key one address may send.

    Only legacy keys (see ``service.storage.key_format``) can make the service look up a key
    it has not checked, so only they spend and heed this budget: a checked key is never
    refused for what others sent from its address. Counted where the rate limits are: with
    Redis, once for every worker and machine; in memory, per worker process (each of N workers
    allows the whole budget); if Redis is away, in this process's memory until it is back.
    """

    def __init__(
        self,
        limit: str,
        storage_uri: str,
        storage_options: dict,
        namespace: str = "popliteal-auth-failures",
    ) -> None:
        self.limit = limits.parse(limit)
        self._namespace = namespace
        self._shared = limits.strategies.FixedWindowRateLimiter(
            limits.storage.storage_from_string(storage_uri, **storage_options)
            if not storage_uri.startswith("memory")
            else limits.storage.MemoryStorage()
        )
        self._local = limits.strategies.FixedWindowRateLimiter(limits.storage.MemoryStorage())
        self._shared_away = False  # logged once when the shared store goes, once when back

    def _call(self, method: str, address: str):
        try:
            result = getattr(self._shared, method)(self.limit, self._namespace, address)
        except Exception:  # the shared store is away: count here rather than fail the request
            if not self._shared_away:
                log.warning("rate-limit storage unreachable; counting failed keys per process")
                self._shared_away = True
            return getattr(self._local, method)(self.limit, self._namespace, address)
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


def failed_authentication_budget(
    config: dict, namespace: str = "popliteal-auth-failures"
) -> FailedAuthenticationBudget | None:
    """The per-address budget of failed authentications, where rate limits are on."""
    if not config["RATELIMIT_ENABLED"]:
        return None
    return FailedAuthenticationBudget(
        config["AUTH_FAILURE_LIMIT"],
        config["RATELIMIT_STORAGE_URI"],
        config["RATELIMIT_STORAGE_OPTIONS"],
        namespace,
    )
