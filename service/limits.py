"""Rate limits per API key, on the /v1 API.

Counts live in memory by default (per process) or in Redis (RATELIMIT_STORAGE_URI), shared by
every worker and machine, at one round trip per request at most (``service.redis_counts``:
a busy key's requests are counted in leases of several). If Redis
goes away, each process counts on its own and logs a warning, and goes back to Redis when it
answers again: a rate-limit store is never a reason to refuse a clinical request with a 500.

The settings keep Flask-Limiter's names and meaning (the service used it before): the same
fixed windows, headers, keys in Redis and fallback.
"""

from __future__ import annotations

import time

import limits
from flask import Flask, Response, g, request
from werkzeug.exceptions import TooManyRequests

from service.auth import PROTECTED_PREFIX
from service.observability import observe_rate_limit
from service.rate_counts import PerKeyLimiter, Tally, parse_windows
from service.storage import Principal

# The settings that hold rate-limit strings, each with the environment variable it comes from
# (Flask-Limiter's settings had the same names), and whether it holds one limit only.
LIMIT_SETTINGS = {
    "RATELIMIT_APPLICATION": ("RATELIMIT_APPLICATION", False),
    "RATELIMIT_DEFAULT": ("RATELIMIT_DEFAULT", False),
    "RATELIMIT_IN_MEMORY_FALLBACK": ("RATELIMIT_IN_MEMORY_FALLBACK", False),
    "RATELIMIT_META": ("RATELIMIT_META", False),
    "AUTH_FAILURE_LIMIT": ("POPLITEAL_AUTH_FAILURE_LIMIT", True),
}
# Flask-Limiter's per-route and meta limits: the service has one budget per key and does not
# read them, so set they would be silently off.
UNREAD_SETTINGS = ("RATELIMIT_DEFAULT", "RATELIMIT_META")
# Where a request's count is kept between the check and the headers.
TALLY = "rate_limit_tally"
# A request the fast path counted and then passed on to Flask carries its count here, so that
# it is counted once (service.fast_path).
COUNTED_TALLY = "popliteal.rate_limit_tally"


def check_rate_limits(config) -> None:
    """Every rate limit set parses, or the service stops here naming the setting.

    A mistyped limit (``30 per secnd``) must not start a service whose per-key limits are
    silently off. Checked whether or not limits are enabled, so that turning them on later
    cannot meet a typo."""
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
        if name in UNREAD_SETTINGS:
            raise RuntimeError(
                f"{setting}={value!r}: the service does not read this setting; each API key "
                "has one budget across /v1, RATELIMIT_APPLICATION"
            )
    strategy = config.get("RATELIMIT_STRATEGY")
    if strategy not in (None, "fixed-window"):
        raise RuntimeError(
            f"RATELIMIT_STRATEGY={strategy!r}: the rate limits count in fixed windows only "
            "('fixed-window')"
        )


def new_limiter() -> PerKeyLimiter:
    """The per-key limiter, empty; ``install_rate_limits`` configures it and puts it on the
    app, at its place among the request hooks."""
    return PerKeyLimiter()


class RateLimited(TooManyRequests):
    """Over a key's budget: answered as the 429 problem (service.web), naming the limit."""

    def __init__(self, tally: Tally) -> None:
        super().__init__(description=tally.window.text)
        self.tally = tally


def _limits(value) -> str:
    return str(value() if callable(value) else value)


class RateLimits:
    """The per-key limits from plain values: a request counted, and the headers of its answer.
    The Flask hooks and the fast path both use it."""

    def __init__(self, limiter: PerKeyLimiter, headers_enabled: bool) -> None:
        self.limiter = limiter
        self.headers_enabled = headers_enabled

    def count(self, principal: Principal | None, address: str | None, endpoint: str):
        """The request's Tally (``refused`` when over a limit); None if it was not counted."""
        key = f"key:{principal.key_id}" if principal is not None else f"address:{address}"
        return self.limiter.hit(key, endpoint)

    def headers(self, tally: Tally | None, status: int) -> list[tuple[str, str]]:
        """X-RateLimit-* on every answer counted; Retry-After (the end of the window) only on
        the limiter's own 429: on any other answer it would tell clients to back off, and a
        503's own Retry-After (seconds) stays as it is."""
        if tally is None or not self.headers_enabled:
            return []
        reset_at = int(tally.reset + 1)
        headers = [
            ("X-RateLimit-Limit", str(tally.window.amount)),
            ("X-RateLimit-Remaining", str(tally.remaining)),
            ("X-RateLimit-Reset", str(reset_at)),
        ]
        if tally.refused and status == 429:
            headers.append(("Retry-After", str(max(1, int(reset_at - time.time())))))
        return headers


def install_rate_limits(app: Flask, limiter: PerKeyLimiter) -> RateLimits | None:
    config = app.config
    if not config["RATELIMIT_ENABLED"]:
        return None
    headers_enabled = config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    fallback_enabled = config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK", config["RATELIMIT_APPLICATION"])
    config.setdefault("RATELIMIT_KEY_PREFIX", "popliteal")
    limiter.configure(
        parse_windows(_limits(config["RATELIMIT_APPLICATION"])),
        config.get("RATELIMIT_STORAGE_URI") or "memory://",
        dict(config.get("RATELIMIT_STORAGE_OPTIONS") or {}),
        key_prefix=config["RATELIMIT_KEY_PREFIX"],
        fallback=(
            parse_windows(_limits(config["RATELIMIT_IN_MEMORY_FALLBACK"]))
            if fallback_enabled
            else None
        ),
    )
    rate_limits = RateLimits(limiter, headers_enabled)

    def check_rate_limit() -> None:
        # Requests that match no route (404) are not counted, as before.
        endpoint = request.endpoint
        if endpoint is None or not request.path.startswith(PROTECTED_PREFIX):
            return
        environ = request.environ
        if COUNTED_TALLY in environ:  # counted by the fast path, which passed the request on
            tally = environ.pop(COUNTED_TALLY)
        else:
            principal = getattr(g, "principal", None)
            tally = rate_limits.count(principal, request.remote_addr, endpoint)
        if tally is None:
            return
        setattr(g, TALLY, tally)
        if tally.refused:
            observe_rate_limit("api_key")
            raise RateLimited(tally)

    def add_rate_limit_headers(response: Response) -> Response:
        for name, value in rate_limits.headers(g.get(TALLY), response.status_code):
            response.headers[name] = value
        return response

    app.before_request(check_rate_limit)
    app.after_request(add_rate_limit_headers)
    return rate_limits
