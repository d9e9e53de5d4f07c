"""A circuit breaker for the Monosign client: a small explicit state machine, no I/O.

closed ──(threshold consecutive transport failures)──▶ open ──(cooldown elapsed, next call)──▶ half-open
   ▲                                                     ▲                                        │
   └──────────────────(the probe succeeds)───────────────┴───────────(the probe fails)────────────┘

While open, calls fail at once (the gateway applies its fail mode without waiting for timeouts).
After the cooldown exactly one call goes through as a probe; the others keep failing fast until it
returns. Only transport failures count: an answer with an envelope, even a "no", proves Monosign is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("threshold must be >= 1 and cooldown > 0")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_in(self) -> float:
        """Seconds until the next probe may go (0 when calls are allowed)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self._clock())

    def allow(self) -> bool:
        """May a call go out now? Turns open into half-open once the cooldown is over (that call probes)."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if self.retry_in() > 0:
                return False
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = True
            return True
        # Half-open: one probe at a time.
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._probe_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
        self._probe_in_flight = False

    def release(self) -> None:
        """A call ended with neither verdict (cancelled): let another call probe."""
        self._probe_in_flight = False
