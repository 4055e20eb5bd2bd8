"""What operators see of each request: one log line and its metrics, with no health data.

The routes report what they decided (``observe_assessment``, ``observe_escalation_check``);
the hooks here turn that, with the request's route template, status and duration, into the
per-request log line and the Prometheus samples.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from service import metrics
from service.logs import KNOWN_METHODS, log_request

# A request that matched no route is labelled with this, never with its raw path: paths are
# unbounded (ids, probes, typos) and would make a metric per request.
UNMATCHED_ROUTE = "unmatched"


def observe_assessment(assessment: dict) -> None:
    g.triage_level = assessment["triage"]["level"]
    metrics.record_assessment(assessment)


def observe_escalation_check(check: dict) -> None:
    g.triage_level = check["level"]
    metrics.record_escalation_check(check)


def observe_triage_level(level: str | None) -> None:
    """For answers that carry a triage decided elsewhere (a prescription from a report)."""
    if level:
        g.triage_level = level


def observe_database_error(kind: str) -> None:
    metrics.DATABASE_ERRORS.labels(kind).inc()


def observe_rate_limit(limit: str) -> None:
    """Called where a 429 is decided: names which budget ran out."""
    g.rate_limited_by = limit


def install_request_observation(app: Flask) -> None:
    # Registered before every other hook, so the duration covers key checks and limits too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_clock)

    @app.after_request
    def observe(response: Response) -> Response:
        started = getattr(g, "request_started", None)
        duration = time.perf_counter() - started if started is not None else 0.0
        rule = request.url_rule
        route = rule.rule if rule is not None else UNMATCHED_ROUTE
        status = str(response.status_code)
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.series(metrics.HTTP_REQUESTS, route, method, status).inc()
        metrics.series(metrics.HTTP_LATENCY, route, method, status).observe(duration)
        if response.status_code == 429:
            metrics.RATE_LIMIT_REJECTIONS.labels(getattr(g, "rate_limited_by", "api_key")).inc()
        principal = getattr(g, "principal", None)
        log_request(
            {
                "request_id": getattr(g, "request_id", None),
                "tenant": principal.tenant if principal is not None else None,
                "method": method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(duration * 1000, 3),
                "rules_version": getattr(g, "rules_version", None),
                "triage_level": getattr(g, "triage_level", None),
            }
        )
        return response


def _start_clock() -> None:
    g.request_started = time.perf_counter()
