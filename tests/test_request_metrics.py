"""The per-request metrics expose what prometheus_client's own Counter, Histogram and Gauge would."""

from __future__ import annotations

import platform

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway import __version__
from gateway.observability.metrics import LATENCY_BUCKETS, Metrics, RequestMetrics

OBSERVATIONS = [
    ("owa-public", 200, 0.0004), ("owa-public", 200, 0.001), ("owa-public", 304, 0.0011), ("owa-app", 440, 0.3),
    ("rejected", 400, 0.0), ("activesync", 200, 3599.0), ("activesync", 200, 4000.0), ("owa-app", 200, 2.5),
]


def test_the_exposition_is_prometheus_clients() -> None:
    ours = CollectorRegistry(auto_describe=True)
    metrics = RequestMetrics(LATENCY_BUCKETS)
    ours.register(metrics)
    library = CollectorRegistry(auto_describe=True)
    requests = Counter("gateway_requests_total", "Requests answered, by route class and status code.",
                       ("route_class", "status"), registry=library)
    latency = Histogram("gateway_request_duration_seconds", "Time from request headers to the end of the response.",
                        ("route_class",), buckets=LATENCY_BUCKETS, registry=library)
    in_flight = Gauge("gateway_requests_in_flight", "Requests being served right now.", registry=library)
    for route_class, status, seconds in OBSERVATIONS:
        metrics.observe(route_class, status, seconds)
        requests.labels(route_class, str(status)).inc()
        latency.labels(route_class).observe(seconds)
    metrics.in_flight = 3
    in_flight.set(3)
    assert generate_latest(ours).decode() == generate_latest(library).decode()


def test_requests_in_flight_go_up_and_down() -> None:
    metrics = Metrics()
    metrics.request_started()
    metrics.request_started()
    assert "gateway_requests_in_flight 2.0" in metrics.render().decode()
    metrics.request_ended("owa-public", 200, 0.002)
    text = metrics.render().decode()
    assert "gateway_requests_in_flight 1.0" in text
    assert 'gateway_requests_total{route_class="owa-public",status="200"} 1.0' in text
    assert 'gateway_request_duration_seconds_bucket{le="0.0025",route_class="owa-public"} 1.0' in text
    assert 'gateway_request_duration_seconds_bucket{le="0.001",route_class="owa-public"} 0.0' in text


def test_no_created_series_and_the_process_is_described() -> None:
    metrics = Metrics()
    metrics.request_ended("owa-public", 200, 0.002)
    metrics.upstream_errors.labels("connect").inc()
    text = metrics.render().decode()
    assert "_created" not in text
    assert (f'gateway_build_info{{aiohttp="{aiohttp.__version__}",python="{platform.python_version()}",'
            f'version="{__version__}"}} 1.0') in text
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                   "process_max_fds", "python_info"):
        assert f"\n{family}" in text, family
