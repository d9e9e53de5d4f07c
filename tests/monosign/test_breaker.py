"""The circuit breaker's state machine, with a hand-driven clock."""

from __future__ import annotations

import pytest

from gateway.monosign.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_opens_after_threshold_consecutive_failures(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_in() == 10


def test_a_success_resets_the_count(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=10, clock=clock)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 1


def test_one_probe_after_cooldown_then_closes(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=clock)
    breaker.record_failure()
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one probe at a time
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_failed_probe_reopens_for_a_full_cooldown(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=5, cooldown=10, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_in() == 10
    assert not breaker.allow()


def test_cancelled_probe_lets_another_call_probe(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=1, clock=clock)
    breaker.record_failure()
    clock.now += 1
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1), (1, 0)])
def test_rejects_nonsense(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker(threshold=threshold, cooldown=cooldown)
