"""One Prometheus exposition from several workers' (pure): every sample gets a `worker` label.

Each worker keeps its own registry (Counters, Histograms and the custom collectors other components
register, such as the Monosign client's), and serves it on its private admin socket; the supervisor
reads them all and answers one scrape. Series are per worker, as Prometheus expects of several
processes: `sum without (worker) (rate(gateway_requests_total[5m]))` gives the whole gateway. A
restarted worker starts its counters from zero under the same label, which `rate()` treats as the
counter reset it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

WORKER_LABEL = "worker"


class MetricsConflict(ValueError):
    """Two workers exposed one metric name with different types (different gateway versions)."""


def merge_expositions(texts: Mapping[str, str], *, own: str = "") -> list[Metric]:
    """Parse each worker's text exposition (keyed by the worker's label value) into one list of
    metric families, each sample labelled with its worker. Families keep the first help text.

    `own` is the supervisor's exposition: its samples keep their labels, without a `worker`, and a
    family that the workers expose too (`process_*`, `gateway_build_info`) is still one family (the
    text format allows each name once)."""
    merged: dict[str, Metric] = {}
    sources = [(None, own), *texts.items()]
    for worker, text in sources:
        for family in text_string_to_metric_families(text):
            target = merged.get(family.name)
            if target is None:
                target = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            elif target.type != family.type:
                raise MetricsConflict(f"metric {family.name!r} is a {target.type} and a {family.type}")
            for sample in family.samples:
                labels = sample.labels if worker is None else {**sample.labels, WORKER_LABEL: worker}
                target.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
    return list(merged.values())


class StaticCollector(Collector):
    """Hands fixed families to `generate_latest` through a registry."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families
