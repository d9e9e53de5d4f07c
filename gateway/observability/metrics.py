"""Prometheus metrics, on a registry of their own (not the process-wide default).

One `Metrics` object per application: tests build apps repeatedly and each gets fresh counters.
Other components add their metrics to `metrics.registry`; the admin listener serves `render()`.
Label values are bounded sets (route classes, status codes, error kinds), never paths or users.
Every family is described in docs/observability.md (tests/test_observability_docs.py checks both ways).

No `*_created` series: they double the series count for a timestamp Prometheus does not need
(`rate()` handles counter resets), so prometheus_client's are switched off for the process.
"""

from __future__ import annotations

import platform
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import aiohttp
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from gateway import __version__

CONTENT_TYPE = CONTENT_TYPE_LATEST

disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds. Small requests take around a millisecond; downloads and long polls take minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   300.0, 3600.0)


def register_process_metrics(registry: CollectorRegistry) -> None:
    """What every gateway process exposes about itself: `gateway_build_info` (the gateway's, Python's
    and aiohttp's versions), the process's CPU, memory and file descriptors (`process_*`, read from
    /proc at scrape time) and `python_info`."""
    build = Info("gateway_build", "The running gateway: its version, Python's and aiohttp's (always 1).",
                 registry=registry)
    build.info({"version": __version__, "python": platform.python_version(), "aiohttp": aiohttp.__version__})
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)


class Metrics:
    """The gateway's own metrics, plus the registry other components register theirs in."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        register_process_metrics(self.registry)
        # gateway_requests_total, gateway_request_duration_seconds, gateway_requests_in_flight.
        self.requests = RequestMetrics(LATENCY_BUCKETS)
        self.registry.register(self.requests)
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Upstream failures by kind (connect, timeout, tls, protocol, disconnect).",
            ("kind",), registry=self.registry,
        )
        self.rejected = Counter(
            "gateway_rejected_requests_total",
            "Requests refused at the edge before classification, by reason.",
            ("reason",), registry=self.registry,
        )

        # Authentication, in the style of Authelia's authelia_authn* metrics. Labels are bounded sets.
        self.second_factor = Counter(
            "gateway_authn_second_factor_total",
            "Second-factor attempts by method (totp, push) and result (success, failure, locked, error).",
            ("method", "result"), registry=self.registry,
        )
        self.first_factor_failures = Counter(
            "gateway_authn_first_factor_failures_total",
            "Exchange logons refused for a wrong user name or password, as seen by the gateway.",
            registry=self.registry,
        )
        self.lockouts = Counter(
            "gateway_authn_lockouts_total", "Second-factor lockouts by scope (network, user, ip, device, monosign).",
            ("scope",), registry=self.registry,
        )
        self.bypasses = Counter(
            "gateway_authn_bypasses_total",
            "Sessions let through without a second factor, by kind (exception, system_mailbox, fail_open).",
            ("kind",), registry=self.registry,
        )
        self.login_duration = Histogram(
            "gateway_authn_login_duration_seconds",
            "Time from Exchange accepting the password to the second factor passing.",
            buckets=(1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0), registry=self.registry,
        )
        self.sessions_ended = Counter(
            "gateway_sessions_ended_total",
            "Gateway sessions ended, by reason (logoff, exchange_timeout, idle, absolute, binding_mismatch, "
            "new_login).",
            ("reason",), registry=self.registry,
        )
        self.refusals = Counter(
            "gateway_authn_refusals_total",
            "Sign-ins and signed-in requests refused, by the audit event's reason (e.g. monosign_unreachable, "
            "session_store_unavailable, csrf_token).",
            ("reason",), registry=self.registry,
        )

    def request_started(self) -> None:
        self.requests.in_flight += 1

    def request_ended(self, route_class: str, status: int, seconds: float) -> None:
        self.requests.in_flight -= 1
        self.requests.observe(route_class, status, seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(slots=True)
class _Latency:
    per_bucket: list[int]  # observations per bucket (not cumulative), +Inf last
    total: float


class RequestMetrics(Collector):
    """The metrics every request updates, kept as plain numbers and turned into the families
    prometheus_client's Counter, Histogram and Gauge expose (same names, help, labels and buckets)
    only when scraped.

    Why: the library's metric objects take a lock for every update (five per request: in flight up
    and down, the counter, the histogram's sum and bucket), about 2.5 µs of the gateway's CPU per
    request; these updates cost a dictionary lookup and two additions. Updated and collected on the
    event loop's thread only (the admin listener runs on the same loop).
    """

    def __init__(self, buckets: Sequence[float]) -> None:
        self.in_flight = 0
        self._bounds = tuple(buckets)  # ascending; the +Inf bucket is implied
        # The `le` label values, as prometheus_client writes them.
        self._edges = [*(floatToGoString(bound) for bound in self._bounds), "+Inf"]  # type: ignore[no-untyped-call]
        self._counts: dict[tuple[str, int], int] = {}
        self._latency: dict[str, _Latency] = {}

    def observe(self, route_class: str, status: int, seconds: float) -> None:
        key = (route_class, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        latency = self._latency.get(route_class)
        if latency is None:
            latency = self._latency[route_class] = _Latency([0] * (len(self._bounds) + 1), 0.0)
        latency.per_bucket[bisect_left(self._bounds, seconds)] += 1  # the first bound >= seconds
        latency.total += seconds

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily("gateway_requests_total", "Requests answered, by route class and status code.",
                                       labels=("route_class", "status"))
        for (route_class, status), counted in self._counts.items():
            requests.add_metric((route_class, str(status)), float(counted))
        yield requests
        name = "gateway_request_duration_seconds"
        latency = HistogramMetricFamily(name, "Time from request headers to the end of the response.",
                                        labels=("route_class",))
        for route_class, observed in self._latency.items():
            cumulative, buckets = 0, []
            for edge, count in zip(self._edges, observed.per_bucket, strict=True):
                cumulative += count
                buckets.append((edge, float(cumulative)))
            latency.add_metric((route_class,), buckets, observed.total)
        yield latency
        yield GaugeMetricFamily("gateway_requests_in_flight", "Requests being served right now.", value=self.in_flight)
