"""Restart decisions for dead workers (pure, table-tested)."""

from __future__ import annotations

import pytest

from gateway.workers.backoff import RestartDecision, RestartPolicy, next_restart

POLICY = RestartPolicy(stable_after=10.0, first_delay=1.0, max_delay=30.0)


@pytest.mark.parametrize(
    ("quick_failures", "uptime", "expected"),
    [
        (0, 3600.0, RestartDecision(0, 0.0)),   # a healthy worker died: at once
        (7, 10.0, RestartDecision(0, 0.0)),     # a long enough run forgives earlier crashes
        (0, 9.9, RestartDecision(1, 1.0)),      # died soon after start: wait
        (1, 0.5, RestartDecision(2, 2.0)),
        (2, 0.5, RestartDecision(3, 4.0)),
        (4, 0.5, RestartDecision(5, 16.0)),
        (5, 0.5, RestartDecision(6, 30.0)),     # capped
        (10_000, 0.0, RestartDecision(10_001, 30.0)),  # a long crash loop stays capped, no overflow
    ],
)
def test_next_restart(quick_failures: int, uptime: float, expected: RestartDecision) -> None:
    assert next_restart(POLICY, quick_failures, uptime) == expected


def test_a_crash_loop_backs_off_then_a_stable_run_resets() -> None:
    failures, delays = 0, []
    for _ in range(7):
        decision = next_restart(POLICY, failures, uptime=0.2)
        failures = decision.quick_failures
        delays.append(decision.delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert next_restart(POLICY, failures, uptime=60.0) == RestartDecision(0, 0.0)


@pytest.mark.parametrize(("stable_after", "first_delay", "max_delay"),
                         [(0.0, 1.0, 30.0), (10.0, 0.0, 30.0), (10.0, 5.0, 1.0)])
def test_policy_rejects_nonsense(stable_after: float, first_delay: float, max_delay: float) -> None:
    with pytest.raises(ValueError, match="expected"):
        RestartPolicy(stable_after, first_delay, max_delay)
