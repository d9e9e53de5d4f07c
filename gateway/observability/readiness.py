"""Readiness: a registry of named dependency checks (`upstream`, `store`, `monosign`).

Liveness (`/healthz`) never runs these: a process that answers is alive, whatever its
dependencies do. Readiness (`/readyz`) runs every check concurrently, each bounded by a timeout,
and names the ones that fail, so an operator sees at once which dependency is missing.

A check is either *critical* or *informational*, and the difference is what a load balancer does
with the answer:

- critical (the default: `upstream`, `store`): this replica cannot serve without it, and another
  replica might (a Redis it cannot reach, an Exchange server behind a broken route). A failure
  makes `/readyz` answer 503, so the load balancer drains this replica.
- informational (`monosign`): every replica shares the dependency, so draining would take them all
  out at once and users would get connection errors instead of the gateway's own "try again
  shortly" page (and `GATEWAY_FAIL_MODE=open` could never apply). A failure is reported in the
  body, with the dependency's state, and `/readyz` still answers 200.

Checks that follow the configuration (each site's upstream, named `upstream:SITE`) are registered
as a group (`add_group`): the group is asked for its checks at each report, so a reload that adds or
removes a site adds or removes its check.

A check returns None when the dependency is usable, a short, non-secret explanation when it is
not, or a `CheckOutcome` to report the dependency's state as well (e.g. a circuit breaker's).

The last report is also exposed as metrics (`ReadinessCollector`: `gateway_ready`,
`gateway_readiness_check_ok`); the admin listener's `/metrics` runs the checks before each scrape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CHECK_TIMEOUT = 3.0
SHUTDOWN = "shutdown"


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """A check's answer with the dependency's state, shown in `/readyz` beside ok / error."""

    problem: str | None = None  # None: usable
    state: str | None = None  # e.g. "closed", "open", "half_open"


Check = Callable[[], Awaitable[str | CheckOutcome | None]]
# The checks of a group, by name, as they are now (e.g. one per site of the configuration in force).
CheckGroup = Callable[[], Mapping[str, Check]]


@dataclass(frozen=True, slots=True)
class CheckResult:
    critical: bool
    problem: str | None = None
    state: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"ok": self.ok, "critical": self.critical}
        if self.state is not None:
            entry["state"] = self.state
        if self.problem is not None:
            entry["error"] = self.problem
        return entry


def is_ready(checks: Mapping[str, CheckResult]) -> bool:
    """Ready unless a critical check failed: informational failures never drain the replica."""
    return all(result.ok or not result.critical for result in checks.values())


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    checks: dict[str, CheckResult]

    @property
    def ready(self) -> bool:
        return is_ready(self.checks)

    def as_json(self) -> dict[str, Any]:
        ready = self.ready
        return {
            "status": "ready" if ready else "not ready",
            "ready": ready,
            "checks": {name: result.as_json() for name, result in self.checks.items()},
        }


@dataclass(frozen=True, slots=True)
class _Registered:
    check: Check
    critical: bool


class Readiness:
    def __init__(self, *, timeout: float = CHECK_TIMEOUT) -> None:
        self._checks: dict[str, _Registered] = {}
        self._groups: list[tuple[CheckGroup, bool]] = []
        self._timeout = timeout
        self.draining = False  # set on shutdown: load balancers should stop sending traffic
        self.last: ReadinessReport | None = None  # the latest report, for the metrics

    def add(self, name: str, check: Check, *, critical: bool = True) -> None:
        """Register `check`; `critical=False` reports its failures without making `/readyz` 503."""
        if name in self._checks or name == SHUTDOWN:
            raise ValueError(f"readiness check {name!r} is already registered")
        self._checks[name] = _Registered(check, critical)

    def add_group(self, group: CheckGroup, *, critical: bool) -> None:
        """Register checks whose names change with the configuration: `group()` is asked at each
        report. A name already registered keeps its own check."""
        self._groups.append((group, critical))

    def _current(self) -> dict[str, _Registered]:
        checks = dict(self._checks)
        for group, critical in self._groups:
            for name, check in group().items():
                if name != SHUTDOWN:
                    checks.setdefault(name, _Registered(check, critical))
        return checks

    @property
    def names(self) -> list[str]:
        return list(self._current())

    def is_critical(self, name: str) -> bool:
        return self._current()[name].critical

    async def _run_one(self, registered: _Registered) -> CheckResult:
        try:
            answer = await asyncio.wait_for(registered.check(), self._timeout)
        except TimeoutError:
            return CheckResult(registered.critical, f"no answer within {self._timeout:g} s")
        except Exception as exc:  # a broken check must not break /readyz
            return CheckResult(registered.critical, f"check failed ({type(exc).__name__})")
        if isinstance(answer, CheckOutcome):
            return CheckResult(registered.critical, answer.problem, answer.state)
        return CheckResult(registered.critical, answer)

    async def report(self) -> ReadinessReport:
        current = self._current()
        names = list(current)
        results = await asyncio.gather(*(self._run_one(current[name]) for name in names))
        checks = dict(zip(names, results, strict=True))
        if self.draining:
            checks[SHUTDOWN] = CheckResult(critical=True, problem="the gateway is shutting down")
        self.last = ReadinessReport(checks)
        return self.last


class ReadinessCollector(Collector):
    """The latest readiness report as metrics: nothing until a first report exists."""

    def __init__(self, readiness: Readiness) -> None:
        self._readiness = readiness

    def collect(self) -> Iterator[Metric]:
        ready = GaugeMetricFamily("gateway_ready", "1 when /readyz would answer 200 (no critical check fails), else 0.")
        checks = GaugeMetricFamily("gateway_readiness_check_ok",
                                   "1 when the readiness check passes, else 0; critical checks drain the replica.",
                                   labels=("check", "critical"))
        report = self._readiness.last
        if report is not None:
            ready.add_metric((), 1.0 if report.ready else 0.0)
            for name, result in report.checks.items():
                checks.add_metric((name, "true" if result.critical else "false"), 1.0 if result.ok else 0.0)
        yield ready
        yield checks
