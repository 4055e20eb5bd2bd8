"""What operators see of each request: one log line and its metrics, with no health data.

The routes report what they decided (``observe_assessment``, ``observe_escalation_check``);
``record_response``, called by the pipeline's last after-request hook, turns that, with the
request's route template, status and duration (from ``g.request_started``, set by the
pipeline's first hook), into the per-request log line and the Prometheus samples: one latency
observation (which also counts the request), one log record.
"""

from __future__ import annotations

import time

from flask import Response, g, request

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


def record_response(response: Response) -> None:
    """The request's metrics and its log line, from the final answer."""
    context = g._get_current_object()  # one proxy look-up for the attributes read below
    started = getattr(context, "request_started", None)
    duration = time.perf_counter() - started if started is not None else 0.0
    rule = request.url_rule
    route = rule.rule if rule is not None else UNMATCHED_ROUTE
    status = response.status_code
    method = request.method
    if method not in KNOWN_METHODS:
        method = "other"
    metrics.record_request(route, method, str(status), duration)
    if status == 429:
        limit = getattr(context, "rate_limited_by", "api_key")
        metrics.series(metrics.RATE_LIMIT_REJECTIONS, limit).inc()
    principal = getattr(context, "principal", None)
    log_request(
        {
            "request_id": getattr(context, "request_id", None),
            "tenant": principal.tenant if principal is not None else None,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(duration * 1000, 3),
            "rules_version": getattr(context, "rules_version", None),
            "triage_level": getattr(context, "triage_level", None),
        }
    )
