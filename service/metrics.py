"""Prometheus metrics, summed over every gunicorn worker.

prometheus_client's multiprocess mode: each worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (set by gunicorn.conf.py before this module is imported), and the
gunicorn master serves their sum on a separate internal port (``POPLITEAL_METRICS_PORT``),
never on the public API port. Outside gunicorn (tests, ``flask run``) the metrics live in this
process's default registry.

Labels are bounded sets: route templates (never raw paths), methods, status codes, triage
levels and rule ids from the loaded rule sets. No label ever holds a value from a request.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

HTTP_REQUESTS = Counter(
    "popliteal_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "popliteal_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ASSESSMENTS = Counter(
    "popliteal_assessments",
    "Assessments made (POST /v1/assess and CDS Hooks calls), by triage level.",
    ["triage_level"],
)
ESCALATION_CHECKS = Counter(
    "popliteal_escalation_checks",
    "Red-flag screens made (POST /v1/escalation-check), by triage level.",
    ["triage_level"],
)
RULE_FIRINGS = Counter(
    "popliteal_rule_firings",
    "Rules that fired in assessments and red-flag screens, by rule id.",
    ["rule_id"],
)
RATE_LIMIT_REJECTIONS = Counter(
    "popliteal_rate_limit_rejections",
    "Requests refused with 429: over an API key's budget, or too many wrong keys from one address.",
    ["limit"],
)
DATABASE_ERRORS = Counter(
    "popliteal_database_errors",
    "Database failures met while answering: unreachable (503) or unexpected (500).",
    ["kind"],
)


# One labelled series object per label value, kept: about twenty rules fire per assessment,
# and looking each series up again (lock, label checks) cost as much as the evaluation itself.
# The label values are bounded sets, so these caches are too.
@cache
def _rule_firings(rule_id: str):
    return RULE_FIRINGS.labels(rule_id)


@cache
def _assessments(level: str):
    return ASSESSMENTS.labels(level)


@cache
def _escalation_checks(level: str):
    return ESCALATION_CHECKS.labels(level)


@cache
def http_series(route: str, method: str, status: str):
    """The request counter and latency histogram of one (route template, method, status)."""
    return HTTP_REQUESTS.labels(route, method, status), HTTP_LATENCY.labels(route, method, status)


def record_assessment(assessment: dict) -> None:
    _assessments(assessment["triage"]["level"]).inc()
    for fired in assessment["trace"]["rules_fired"]:
        _rule_firings(fired["rule_id"]).inc()


def record_escalation_check(check: dict) -> None:
    _escalation_checks(check["level"]).inc()
    for flag in check["red_flags"]:
        _rule_firings(flag["rule_id"]).inc()


def multiprocess_registry() -> CollectorRegistry:
    """A registry that reads every worker's samples (the gunicorn master serves this one)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry
