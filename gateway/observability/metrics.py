"""Prometheus metrics, on a registry of their own (not the process-wide default).

One `Metrics` object per application: tests build apps repeatedly and each gets fresh counters.
Other components add their metrics to `metrics.registry`; the admin listener serves `render()`.
Label values are bounded sets (route classes, status codes, error kinds), never paths or users.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds. Small requests take around a millisecond; downloads and long polls take minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   300.0, 3600.0)


class Metrics:
    """The gateway's own metrics, plus the registry other components register theirs in."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests_total", "Requests answered, by route class and status code.",
            ("route_class", "status"), registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds", "Time from request headers to the end of the response.",
            ("route_class",), buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Upstream failures by kind (connect, timeout, tls, protocol, disconnect).",
            ("kind",), registry=self.registry,
        )
        self.in_flight = Gauge(
            "gateway_requests_in_flight", "Requests being served right now.", registry=self.registry,
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
            "gateway_authn_lockouts_total", "Second-factor lockouts by scope (user, ip, monosign).",
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

        # Label children, looked up once per (route class, status) instead of on every request.
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe_request(self, route_class: str, status: int, seconds: float) -> None:
        children = self._request_children.get((route_class, status))
        if children is None:
            children = (self.requests.labels(route_class, str(status)), self.latency.labels(route_class))
            self._request_children[(route_class, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
