"""Readiness: critical checks drain the replica, informational ones are only reported."""

from __future__ import annotations

import asyncio

import pytest

from gateway.observability.readiness import Check, CheckOutcome, CheckResult, Readiness, is_ready


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
