"""Readiness: critical checks drain the replica, informational ones are only reported."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gateway.observability.readiness import (
    Check,
    CheckOutcome,
    CheckResult,
    Readiness,
    ReadinessCollector,
    is_ready,
)
from tests.proxy.support import run_gateway, run_upstream


@pytest.mark.parametrize(
    ("checks", "ready"),
    [
        ({}, True),
        ({"upstream": CheckResult(critical=True)}, True),
        ({"upstream": CheckResult(critical=True, problem="refused")}, False),
        ({"monosign": CheckResult(critical=False, problem="circuit open")}, True),
        ({"store": CheckResult(critical=True), "monosign": CheckResult(critical=False, problem="down")}, True),
        ({"store": CheckResult(critical=True, problem="down"), "monosign": CheckResult(critical=False)}, False),
        ({"store": CheckResult(critical=True, problem="x"), "monosign": CheckResult(critical=False, problem="y")},
         False),
    ],
)
def test_only_critical_failures_make_the_replica_not_ready(checks: dict[str, CheckResult], ready: bool) -> None:
    assert is_ready(checks) is ready


def _answer(value: str | CheckOutcome | None) -> Check:
    async def check() -> str | CheckOutcome | None:
        return value

    return check


async def test_informational_failure_is_reported_with_its_state_and_still_ready() -> None:
    readiness = Readiness()
    readiness.add("upstream", _answer(None))
    readiness.add("store", _answer(None))
    readiness.add("monosign", _answer(CheckOutcome("monosign circuit open", state="open")), critical=False)
    report = await readiness.report()
    assert report.ready
    assert report.as_json() == {
        "status": "ready",
        "ready": True,
        "checks": {
            "upstream": {"ok": True, "critical": True},
            "store": {"ok": True, "critical": True},
            "monosign": {"ok": False, "critical": False, "state": "open", "error": "monosign circuit open"},
        },
    }


async def test_critical_failure_is_not_ready_and_named() -> None:
    readiness = Readiness()
    readiness.add("store", _answer("session store unavailable (timeout)"))
    readiness.add("monosign", _answer(CheckOutcome(state="closed")), critical=False)
    report = await readiness.report()
    assert not report.ready
    body = report.as_json()
    assert body["status"] == "not ready"
    assert body["ready"] is False
    assert body["checks"]["store"] == {"ok": False, "critical": True, "error": "session store unavailable (timeout)"}
    assert body["checks"]["monosign"] == {"ok": True, "critical": False, "state": "closed"}


async def test_slow_or_broken_checks_fail_as_their_kind() -> None:
    async def slow() -> None:
        await asyncio.sleep(5)

    async def broken() -> None:
        raise RuntimeError("secret detail")

    readiness = Readiness(timeout=0.05)
    readiness.add("slow-info", slow, critical=False)
    readiness.add("broken-info", broken, critical=False)
    report = await readiness.report()
    assert report.ready
    assert report.checks["slow-info"].problem == "no answer within 0.05 s"
    assert report.checks["broken-info"].problem == "check failed (RuntimeError)"  # the type, not the text
    readiness.add("broken", broken)
    assert not (await readiness.report()).ready


async def test_draining_is_critical_whatever_the_checks_say() -> None:
    readiness = Readiness()
    readiness.add("monosign", _answer(None), critical=False)
    readiness.draining = True
    report = await readiness.report()
    assert not report.ready
    assert report.as_json()["checks"]["shutdown"] == {"ok": False, "critical": True,
                                                      "error": "the gateway is shutting down"}


def test_names_are_unique_and_the_kind_is_kept() -> None:
    readiness = Readiness()
    readiness.add("upstream", _answer(None))
    readiness.add("monosign", _answer(None), critical=False)
    assert readiness.names == ["upstream", "monosign"]
    assert readiness.is_critical("upstream")
    assert not readiness.is_critical("monosign")
    for name in ("upstream", "shutdown"):
        with pytest.raises(ValueError, match="already registered"):
            readiness.add(name, _answer(None))


async def test_the_admin_metrics_report_readiness_as_of_the_scrape() -> None:
    """gateway_ready and gateway_readiness_check_ok follow the checks, run afresh for each scrape."""
    async with run_upstream() as (upstream, _), run_gateway(upstream.url, mfa=False) as gateway, \
            aiohttp.ClientSession() as client:
        async with client.get(gateway.admin_url + "/metrics") as response:
            text = await response.text()
        assert "\ngateway_ready 1.0\n" in text
        assert 'gateway_readiness_check_ok{check="upstream",critical="true"} 1.0' in text
        gateway.gateway.state.readiness.draining = True
        async with client.get(gateway.admin_url + "/metrics") as response:
            text = await response.text()
        assert "\ngateway_ready 0.0\n" in text
        assert 'gateway_readiness_check_ok{check="shutdown",critical="true"} 0.0' in text
        assert 'gateway_readiness_check_ok{check="upstream",critical="true"} 1.0' in text


async def test_no_readiness_metrics_before_a_first_report() -> None:
    readiness = Readiness()
    readiness.add("upstream", _answer("refused"))
    registry = CollectorRegistry()
    registry.register(ReadinessCollector(readiness))
    assert "\ngateway_ready " not in generate_latest(registry).decode()
    await readiness.report()
    text = generate_latest(registry).decode()
    assert "\ngateway_ready 0.0\n" in text
    assert 'gateway_readiness_check_ok{check="upstream",critical="true"} 0.0' in text


async def test_a_group_s_checks_are_the_ones_it_names_at_each_report() -> None:
    readiness = Readiness()
    readiness.add("upstream", _answer(None))
    sites: dict[str, Check] = {"upstream:wiki": _answer("upstream not reachable (refused)")}
    readiness.add_group(lambda: dict(sites), critical=False)
    report = await readiness.report()
    assert report.ready  # informational
    assert report.as_json()["checks"]["upstream:wiki"] == {"ok": False, "critical": False,
                                                           "error": "upstream not reachable (refused)"}
    sites.clear()
    sites.update({"upstream:crm": _answer(None), "upstream": _answer("not this one"), "shutdown": _answer("no")})
    report = await readiness.report()
    assert list(report.checks) == ["upstream", "upstream:crm"]  # a registered name and shutdown keep their own
    assert report.ready
    assert readiness.names == ["upstream", "upstream:crm"]
    assert not readiness.is_critical("upstream:crm")
