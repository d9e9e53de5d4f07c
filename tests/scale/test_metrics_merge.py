"""Merging the workers' Prometheus expositions into one scrape (pure)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.workers.metrics_merge import MetricsConflict, StaticCollector, merge_expositions


def _worker_text(requests: int, in_flight: float) -> str:
    registry = CollectorRegistry()
    counter = Counter("gateway_requests_total", "Requests answered.", ("route_class", "status"), registry=registry)
    counter.labels("owa-app", "200").inc(requests)
    Gauge("gateway_requests_in_flight", "In flight.", registry=registry).set(in_flight)
    Histogram("gateway_request_duration_seconds", "Duration.", buckets=(0.1, 1.0), registry=registry).observe(0.5)
    return generate_latest(registry).decode()


def _render(texts: dict[str, str]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StaticCollector(merge_expositions(texts)))
    return generate_latest(registry).decode()


def test_samples_get_a_worker_label_and_families_appear_once() -> None:
    text = _render({"1": _worker_text(3, 1), "2": _worker_text(5, 0)})
    assert text.count("# TYPE gateway_requests_total counter") == 1
    assert text.count("# TYPE gateway_request_duration_seconds histogram") == 1
    assert 'gateway_requests_total{route_class="owa-app",status="200",worker="1"} 3.0' in text
    assert 'gateway_requests_total{route_class="owa-app",status="200",worker="2"} 5.0' in text
    assert 'gateway_requests_in_flight{worker="1"} 1.0' in text
    assert 'gateway_request_duration_seconds_bucket{le="1.0",worker="2"} 1.0' in text


def test_the_merged_text_parses_and_sums_like_the_workers() -> None:
    text = _render({"1": _worker_text(3, 1), "2": _worker_text(5, 0), "3": _worker_text(11, 2)})
    families = {family.name: family for family in text_string_to_metric_families(text)}
    requests = families["gateway_requests"]
    assert requests.type == "counter"
    assert sum(sample.value for sample in requests.samples if sample.name == "gateway_requests_total") == 19
    assert sorted(sample.labels["worker"] for sample in families["gateway_requests_in_flight"].samples) == [
        "1", "2", "3"]


def test_no_workers_no_families() -> None:
    assert merge_expositions({}) == []


def test_a_type_conflict_is_reported() -> None:
    gauge = "# HELP x X\n# TYPE x gauge\nx 1.0\n"
    counter = "# HELP x X\n# TYPE x counter\nx_total 1.0\n"
    with pytest.raises(MetricsConflict, match="'x'"):
        merge_expositions({"1": gauge, "2": counter})


def test_the_supervisors_own_families_keep_their_labels_and_share_the_workers_families() -> None:
    own = "# HELP process_open_fds Open fds.\n# TYPE process_open_fds gauge\nprocess_open_fds 9.0\n" \
          "# HELP gateway_workers_running Running.\n# TYPE gateway_workers_running gauge\ngateway_workers_running 2.0\n"
    worker = "# HELP process_open_fds Open fds.\n# TYPE process_open_fds gauge\nprocess_open_fds 40.0\n"
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StaticCollector(merge_expositions({"1": worker, "2": worker}, own=own)))
    text = generate_latest(registry).decode()
    assert text.count("# TYPE process_open_fds gauge") == 1
    assert "\nprocess_open_fds 9.0\n" in text
    assert 'process_open_fds{worker="1"} 40.0' in text
    assert 'process_open_fds{worker="2"} 40.0' in text
    assert "\ngateway_workers_running 2.0\n" in text
