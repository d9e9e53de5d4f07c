"""Prometheus metrics of a MonosignClient, read at scrape time (no state of their own)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.monosign.breaker import BreakerState
from gateway.monosign.client import MonosignClient

BREAKER_STATE_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class MonosignCollector(Collector):
    def __init__(self, client: MonosignClient) -> None:
        self._client = client

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "gateway_monosign_breaker_state",
            "Monosign circuit breaker: 0 closed, 1 half-open (probing), 2 open (calls fail fast).",
        )
        state.add_metric([], BREAKER_STATE_VALUES[self._client.breaker_state])
        yield state
        calls = CounterMetricFamily(
            "gateway_monosign_calls", "Monosign API calls by operation and outcome.",
            labels=["operation", "outcome"],
        )
        for (operation, outcome), count in sorted(self._client.stats.calls.items()):
            calls.add_metric([operation, outcome], count)
        yield calls
        seconds = CounterMetricFamily(
            "gateway_monosign_call_seconds", "Total seconds spent in Monosign API calls, by operation.",
            labels=["operation"],
        )
        for operation, total in sorted(self._client.stats.latency_sum.items()):
            seconds.add_metric([operation], total)
        yield seconds


def register_monosign_metrics(client: MonosignClient, registry: CollectorRegistry) -> MonosignCollector:
    """Expose the client's breaker state and call counters in `registry`; returns the collector."""
    collector = MonosignCollector(client)
    registry.register(collector)
    return collector
