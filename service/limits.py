"""Rate limits per API key (Flask-Limiter).

Counts live in memory by default (per process) or in Redis (RATELIMIT_STORAGE_URI), shared by
every worker and machine. If Redis goes away, each process counts on its own and logs a
warning, and goes back to Redis when it answers again: a rate-limit store is never a reason to
refuse a clinical request with a 500.
"""

from __future__ import annotations

import limits
from flask import Flask, g, request
from flask_limiter import Limiter

from service.auth import PROTECTED_PREFIX
from service.web import RETRY_AFTER

# The settings that hold rate-limit strings, each with the environment variable it comes from
# (Flask-Limiter's own settings have the same names), and whether it holds one limit only.
LIMIT_SETTINGS = {
    "RATELIMIT_APPLICATION": ("RATELIMIT_APPLICATION", False),
    "RATELIMIT_DEFAULT": ("RATELIMIT_DEFAULT", False),
    "RATELIMIT_IN_MEMORY_FALLBACK": ("RATELIMIT_IN_MEMORY_FALLBACK", False),
    "RATELIMIT_META": ("RATELIMIT_META", False),
    "AUTH_FAILURE_LIMIT": ("POPLITEAL_AUTH_FAILURE_LIMIT", True),
}


def check_rate_limits(config) -> None:
    """Every rate limit set parses, or the service stops here naming the setting.

    Flask-Limiter would start with a mistyped limit (``30 per secnd``), skip it, and log an
    error on every request: the per-key limits would be silently off. Checked whether or not
    limits are enabled, so that turning them on later cannot meet a typo."""
    for name, (setting, single) in LIMIT_SETTINGS.items():
        value = config.get(name)
        if value is None or callable(value):
            continue
        try:
            parsed = limits.parse_many(str(value))
        except ValueError:
            parsed = []
        if not parsed or (single and len(parsed) != 1):
            what = "one rate limit" if single else "rate limits separated by ';'"
            raise RuntimeError(
                f"{setting}={value!r} is not {what} such as '30 per minute' or "
                "'600 per minute;30 per second' (per second, minute, hour or day); to turn rate "
                "limits off, set RATELIMIT_ENABLED=false"
            )


def _rate_limit_key() -> str:
    principal = getattr(g, "principal", None)
    if principal is not None:
        return f"key:{principal.key_id}"
    return f"address:{request.remote_addr}"


def new_limiter() -> Limiter:
    """Flask-Limiter, counting per key on the /v1 API; ``install_rate_limits`` puts it on the
    app, at its place among the request hooks."""
    limiter = Limiter(key_func=_rate_limit_key)

    @limiter.request_filter
    def outside_the_api() -> bool:
        return not request.path.startswith(PROTECTED_PREFIX)

    return limiter


def install_rate_limits(app: Flask, limiter: Limiter) -> None:
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

    limiter.init_app(app)
