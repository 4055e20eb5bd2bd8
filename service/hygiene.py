"""HTTP hygiene: security headers on every answer, and CORS for an allow-list of origins.

Answers hold health data, so no cache (browser, proxy or CDN) may keep them, no page may frame
them, and no browser may guess their type. Browser-based fitness apps may call the API only
from origins the operator listed (``POPLITEAL_CORS_ORIGINS``); by default there are none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask import Flask, Response, request

from service.web import problem

# JSON, problem details and FHIR: nothing in them may load, run or be framed.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The Swagger UI page (/docs): its own scripts and styles from this origin; flask-smorest's
# page starts Swagger UI with one inline script.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
)

# What a browser app may send and read across origins.
CORS_ALLOWED_HEADERS = "Authorization, Content-Type, Accept, Idempotency-Key, X-Request-ID"
CORS_EXPOSED_HEADERS = (
    "X-Request-ID, X-Rules-Version, Location, Retry-After, Idempotent-Replayed, "
    "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)
# How long a browser may reuse a preflight answer, in seconds.
CORS_MAX_AGE_SECONDS = "600"
CORS_PREFIXES = ("/v1/", "/cds-services/")

ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


def parse_origins(text: str | None) -> frozenset[str]:
    """The allow-list from ``a, b, c``; refuses what is not an exact origin, '*' included."""
    origins = set()
    for item in (text or "").split(","):
        origin = item.strip().rstrip("/")
        if not origin:
            continue
        if not ORIGIN.match(origin):
            raise RuntimeError(
                f"POPLITEAL_CORS_ORIGINS: {origin!r} is not an origin like "
                "https://app.example.com (a wildcard is refused: answers hold health data)"
            )
        # Browsers leave out a scheme's default port: so must the list, or it never matches.
        origin = re.sub(r"^(https://[^:/]+):443$|^(http://[^:/]+):80$", r"\1\2", origin)
        origins.add(origin.lower())
    return frozenset(origins)


class SecurityHeaders:
    """The security headers of an answer, from plain values; the Flask hook and the fast path
    both add them."""

    def __init__(self, hsts_seconds: int) -> None:
        self.hsts = f"max-age={hsts_seconds}; includeSubDomains" if hsts_seconds > 0 else None
        # Every answer gets one of four lists: made here once, not per request.
        self._lists = {
            (is_html, has_cache_control): self._headers(is_html, has_cache_control)
            for is_html in (False, True)
            for has_cache_control in (False, True)
        }

    def for_answer(self, mimetype: str, has_cache_control: bool) -> tuple[tuple[str, str], ...]:
        return self._lists[mimetype == "text/html", has_cache_control]

    def _headers(self, is_html: bool, has_cache_control: bool) -> tuple[tuple[str, str], ...]:
        headers = [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            (
                "Content-Security-Policy",
                DOCS_CONTENT_SECURITY_POLICY if is_html else API_CONTENT_SECURITY_POLICY,
            ),
        ]
        # Health data must not be kept by any cache; static Swagger UI files say otherwise
        # themselves and keep what they say.
        if not has_cache_control:
            headers.append(("Cache-Control", "no-store"))
        if self.hsts:
            headers.append(("Strict-Transport-Security", self.hsts))
        return tuple(headers)


def install_security_headers(app: Flask) -> SecurityHeaders:
    security_headers = SecurityHeaders(int(app.config["HSTS_SECONDS"]))

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        for name, value in security_headers.for_answer(
            response.mimetype, "Cache-Control" in headers
        ):
            headers[name] = value
        return response

    return security_headers


def install_cors(app: Flask, origins: Iterable[str]) -> None:
    allowed = frozenset(origins)
    if not allowed:
        return  # the default: no cross-origin access at all, and no CORS headers

    def cross_origin() -> str | None:
        origin = request.headers.get("Origin")
        if origin and (request.path + "/").startswith(CORS_PREFIXES):
            return origin
        return None

    @app.before_request
    def answer_preflight():
        origin = cross_origin()
        if (
            origin is None
            or request.method != "OPTIONS"
            or "Access-Control-Request-Method" not in request.headers
        ):
            return None
        if origin.lower() not in allowed:
            return problem(403, "This origin is not on the service's CORS allow-list.")
        if request.routing_exception is not None:
            return None  # 404 or 405, as without CORS
        adapter = app.url_map.bind_to_environ(request.environ)
        methods = sorted(adapter.allowed_methods(request.path))
        response = app.response_class(status=204)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE_SECONDS
        response.headers["Vary"] = "Origin"
        return response

    @app.after_request
    def allow_listed_origin(response: Response) -> Response:
        origin = cross_origin()
        if origin is None:
            return response
        response.vary.add("Origin")
        if origin.lower() in allowed and "Access-Control-Allow-Origin" not in response.headers:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
        return response
