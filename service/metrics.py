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

from collections.abc import Iterable, Iterator
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, Metric, values
from prometheus_client.core import CounterMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from service.batched_counts import BatchedCounts
from service.config import env_number

HTTP_LABELS = ("route", "method", "status")
HTTP_LATENCY_NAME = "popliteal_http_request_duration_seconds"
HTTP_LATENCY = Histogram(
    HTTP_LATENCY_NAME,
    "Time to answer an HTTP request, by route template, method and status.",
    HTTP_LABELS,
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# popliteal_http_requests_total is the latency histogram's count under its own name: one
# observation per request feeds both, rather than a counter of the same event beside it.
HTTP_REQUESTS_NAME = "popliteal_http_requests"
HTTP_REQUESTS_HELP = "HTTP requests answered, by route template, method and status."
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
# Under gunicorn every increment is a locked write to the worker's samples file, some 3 us; with
# some twenty rules firing per assessment that cost a third as much as the evaluation itself
# (68 us against 170). There, firings are added up in the worker and written every
# POPLITEAL_METRICS_FLUSH_SECONDS (and when the worker exits); in one process an increment is a
# cheap add in memory, so each is made at once, as with 0.
RULE_FIRINGS_FLUSH_SECONDS = env_number("POPLITEAL_METRICS_FLUSH_SECONDS", 1.0)
_MULTIPROCESS = values.ValueClass is not values.MutexValue
RULE_COUNTS = BatchedCounts(
    lambda rule_id, count: series(RULE_FIRINGS, rule_id).inc(count),
    RULE_FIRINGS_FLUSH_SECONDS if _MULTIPROCESS and RULE_FIRINGS_FLUSH_SECONDS > 0 else None,
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


@cache
def series(metric, *labels: str):
    """One labelled series of a metric, looked up once and kept. A dozen or more rules fire
    per assessment, and looking each series up again (a lock, label checks) cost about half
    as much as the evaluation itself. Label values are bounded sets, so this cache is too."""
    return metric.labels(*labels)


def record_request(route: str, method: str, status: str, seconds: float) -> None:
    """The request's one observation: its latency, which also counts it."""
    series(HTTP_LATENCY, route, method, status).observe(seconds)


def _request_counts(families: Iterable[Metric]) -> CounterMetricFamily:
    """popliteal_http_requests_total, read off the latency histogram's _count samples."""
    counts: dict[tuple[str, ...], float] = {}
    created: dict[tuple[str, ...], float] = {}
    for family in families:
        if family.name != HTTP_LATENCY_NAME:
            continue
        for sample in family.samples:
            kept = {f"{HTTP_LATENCY_NAME}_count": counts, f"{HTTP_LATENCY_NAME}_created": created}
            if sample.name in kept:
                kept[sample.name][tuple(sample.labels[name] for name in HTTP_LABELS)] = sample.value
    family = CounterMetricFamily(HTTP_REQUESTS_NAME, HTTP_REQUESTS_HELP, labels=HTTP_LABELS)
    for labels, value in counts.items():
        family.add_metric(labels, value, created=created.get(labels))
    return family


class _RequestCountsOf:
    """A collector of popliteal_http_requests_total from another collector's families; with
    ``also_source``, the source's own families as well."""

    def __init__(self, source, also_source: bool) -> None:
        self.source, self.also_source = source, also_source

    def collect(self) -> Iterator[Metric]:
        families = list(self.source.collect())
        if self.also_source:
            yield from families
        yield _request_counts(families)


# In this process (tests, ``flask run``): beside the histogram in the default registry.
REGISTRY.register(_RequestCountsOf(HTTP_LATENCY, also_source=False))


def record_assessment(assessment: dict) -> None:
    series(ASSESSMENTS, assessment["triage"]["level"]).inc()
    RULE_COUNTS.add([fired["rule_id"] for fired in assessment["trace"]["rules_fired"]])


def record_escalation_check(check: dict) -> None:
    series(ESCALATION_CHECKS, check["level"]).inc()
    RULE_COUNTS.add([flag["rule_id"] for flag in check["red_flags"]])


def multiprocess_registry() -> CollectorRegistry:
    """A registry that reads every worker's samples (the gunicorn master serves this one)."""
    registry = CollectorRegistry()
    registry.register(_RequestCountsOf(MultiProcessCollector(None), also_source=True))
    return registry
