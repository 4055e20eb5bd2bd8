"""Rate limits per API key (Flask-Limiter).

Counts live in memory by default (per process) or in Redis (RATELIMIT_STORAGE_URI), shared by
every worker and machine. If Redis goes away, each process counts on its own and logs a
warning, and goes back to Redis when it answers again: a rate-limit store is never a reason to
refuse a clinical request with a 500.
"""

from __future__ import annotations

from flask import Flask, g, request
from flask_limiter import Limiter

from service.auth import PROTECTED_PREFIX
from service.http import RETRY_AFTER


def _rate_limit_key() -> str:
    principal = getattr(g, "principal", None)
    if principal is not None:
        return f"key:{principal.key_id}"
    return f"address:{request.remote_addr}"


def install_rate_limits(app: Flask) -> Limiter:
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK", app.config["RATELIMIT_APPLICATION"])
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "popliteal")

    # Registered before the limiter, so that it runs after the limiter has added its headers
    # (Flask runs after-request functions last-registered first). Flask-Limiter sets
    # Retry-After, to the end of its window, on every answer it counts: on a 200 it would tell
    # clients to back off, and on a 503 it would replace the service's own advice (up to an
    # hour instead of seconds). Only its own 429 keeps its value.
    @app.after_request
    def retry_after_only_on_refusals(response):
        if response.status_code != 429:
            response.headers.pop("Retry-After", None)
            own = g.get(RETRY_AFTER)
            if own is not None:
                response.headers["Retry-After"] = own
        return response

    limiter = Limiter(key_func=_rate_limit_key, app=app)

    @limiter.request_filter
    def outside_the_api() -> bool:
        return not request.path.startswith(PROTECTED_PREFIX)

    return limiter
