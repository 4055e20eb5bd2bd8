"""What operators see of each request: one log line and its metrics, with no health data.

The routes report what they decided (``observe_assessment``, ``observe_escalation_check``);
``record_response``, called by the pipeline's last after-request hook, turns that, with the
request's route template, status and duration (from ``g.request_started``, set by the
pipeline's first hook), into the per-request log line and the Prometheus samples: one latency
observation (which also counts the request), one log record.

The fast path (``service.fast_path``) answers without Flask; it writes the same line and samples
through the same framework-free functions: ``clock``, ``assessment_level``,
``escalation_level`` and ``record_outcome``.
"""

from __future__ import annotations

from time import perf_counter

from flask import Response, g, request

from service import metrics
from service.access_log import log_request
from service.logs import KNOWN_METHODS

# A request that matched no route is labelled with this, never with its raw path: paths are
# unbounded (ids, probes, typos) and would make a metric per request.
UNMATCHED_ROUTE = "unmatched"


def clock() -> float:
    """Seconds on the clock that times requests (a module global, so that tests can fix it)."""
    return perf_counter()


def assessment_level(assessment: dict) -> str:
    """Counts an assessment and its rules in the metrics; its triage level, for the log line."""
    metrics.record_assessment(assessment)
    return assessment["triage"]["level"]


def escalation_level(check: dict) -> str:
    """Counts a red-flag screen and its flags in the metrics; its level, for the log line."""
    metrics.record_escalation_check(check)
    return check["level"]


def observe_assessment(assessment: dict) -> None:
    g.triage_level = assessment_level(assessment)


def observe_escalation_check(check: dict) -> None:
    g.triage_level = escalation_level(check)


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
    rule = request.url_rule
    principal = getattr(context, "principal", None)
    record_outcome(
        route=rule.rule if rule is not None else UNMATCHED_ROUTE,
        method=request.method,
        status=response.status_code,
        started=getattr(context, "request_started", None),
        request_id=getattr(context, "request_id", None),
        tenant=principal.tenant if principal is not None else None,
        rules_version=getattr(context, "rules_version", None),
        triage_level=getattr(context, "triage_level", None),
        rate_limited_by=getattr(context, "rate_limited_by", "api_key"),
    )


def record_outcome(
    *,
    route: str,
    method: str,
    status: int,
    started: float | None,
    request_id: str | None,
    tenant: str | None,
    rules_version: str | None,
    triage_level: str | None,
    rate_limited_by: str = "api_key",
) -> None:
    """A request's metrics and its log line, from plain values: the one writer of both, for
    the Flask pipeline and the fast path alike. ``started``: ``clock()`` when it began."""
    duration = clock() - started if started is not None else 0.0
    if method not in KNOWN_METHODS:
        method = "other"
    metrics.record_request(route, method, str(status), duration)
    if status == 429:
        metrics.series(metrics.RATE_LIMIT_REJECTIONS, rate_limited_by).inc()
    log_request(
        {
            "request_id": request_id,
            "tenant": tenant,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(duration * 1000, 3),
            "rules_version": rules_version,
            "triage_level": triage_level,
        }
    )
