"""docs/observability.md, the Grafana dashboard and the alert rules name exactly the metrics a running
gateway exposes: a family added without its documentation, or a query left naming a renamed metric,
fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import generate_latest

from gateway.workers.supervisor import SupervisorMetrics
from tests.flow.conftest import flow_environment

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "observability.md"
DASHBOARD = ROOT / "docker" / "grafana" / "monosign-gateway-dashboard.json"
ALERTS = ROOT / "docker" / "prometheus" / "monosign-gateway-alerts.yml"
# A metric name in PromQL (or in an annotation): the gateway's own and the process collector's.
METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_:])(?:gateway|process)_[a-z0-9_]+")
# A table row of the reference: | `family` | type | labels | meaning |
DOCUMENTED_FAMILY = re.compile(r"^\| `((?:gateway|process|python)_[a-z0-9_]*)` \| [a-z]+ \|", re.MULTILINE)
TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)


async def scraped_metrics() -> str:
    """A running gateway's /metrics (with the MFA flow, so Monosign's families are there), plus the
    supervisor's own families, which only a gateway of several workers exposes (same code)."""
    async with flow_environment() as env:
        text = await env.metrics()
    return text + generate_latest(SupervisorMetrics().registry).decode()


def exposed_families(text: str) -> set[str]:
    return {name for name, _ in TYPE_LINE.findall(text)}


def exposed_series_names(text: str) -> set[str]:
    """Family names, and a histogram's `_bucket`, `_sum` and `_count` (series it has before any
    observation too, as far as queries are concerned)."""
    names = set()
    for name, kind in TYPE_LINE.findall(text):
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def documented_families() -> set[str]:
    return set(DOCUMENTED_FAMILY.findall(DOC.read_text()))


async def test_every_exposed_family_is_documented_and_every_documented_family_exposed() -> None:
    exposed = exposed_families(await scraped_metrics())
    documented = documented_families()
    assert exposed - documented == set(), "families missing from docs/observability.md"
    assert documented - exposed == set(), "docs/observability.md documents families no gateway exposes"


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["title"], panel
        assert panel["targets"], panel["title"]
        queries.extend(target["expr"] for target in panel["targets"])
    return queries


def alert_rules() -> list[dict[str, Any]]:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    for rule in rules:
        assert rule["alert"], rule
        assert rule["expr"], rule
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
    return rules


async def test_the_dashboard_and_the_alerts_name_only_metrics_that_exist() -> None:
    exposed = exposed_series_names(await scraped_metrics())
    # The whole files, annotations and descriptions included: a metric named anywhere must exist.
    named = set(METRIC_NAME.findall(DASHBOARD.read_text())) | set(METRIC_NAME.findall(ALERTS.read_text()))
    assert named, "no metric names found: the pattern is wrong"
    assert named - exposed == set()
    assert dashboard_queries()


def test_the_alerts_cover_what_operators_must_hear_about() -> None:
    expressions = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    for metric in ("gateway_monosign_breaker_state", "gateway_authn_second_factor_total",
                   "gateway_authn_lockouts_total", "gateway_requests_total", "gateway_ready",
                   "gateway_pinned_connections", "process_max_fds"):
        assert any(metric in expression for expression in expressions.values()), metric
    for alert in expressions:
        assert f"`{alert}`" in DOC.read_text(), f"{alert} is not described in docs/observability.md"


def test_the_metric_name_pattern() -> None:
    expression = ('sum by (job) (rate(gateway_requests_total{status=~"5.."}[5m])) / 2 * gateway_pinned_connections'
                  ' > 0.7 * process_max_fds and my_gateway_x and gateway_ready')
    assert METRIC_NAME.findall(expression) == ["gateway_requests_total", "gateway_pinned_connections",
                                               "process_max_fds", "gateway_ready"]
