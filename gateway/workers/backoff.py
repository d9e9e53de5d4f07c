"""When to restart a dead worker (pure): at once after a long, healthy run; with growing delays
when workers keep dying soon after they start, so a crash loop does not spin the CPU or the logs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    stable_after: float = 10.0  # seconds: a worker that lived this long was healthy
    first_delay: float = 1.0    # seconds before the restart after the first quick death
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if not (self.stable_after > 0 and 0 < self.first_delay <= self.max_delay):
            raise ValueError("expected stable_after > 0 and 0 < first_delay <= max_delay")


@dataclass(frozen=True, slots=True)
class RestartDecision:
    quick_failures: int  # consecutive deaths, each within `stable_after` of its start
    delay: float         # seconds to wait before starting the replacement


def next_restart(policy: RestartPolicy, quick_failures: int, uptime: float) -> RestartDecision:
    """The decision after a worker died `uptime` seconds after it started, following
    `quick_failures` consecutive quick deaths in the same slot."""
    if uptime >= policy.stable_after:
        return RestartDecision(0, 0.0)
    failures = quick_failures + 1
    # 1, 2, 4, ... seconds; the exponent is capped so the float never overflows in a long loop.
    delay = min(policy.first_delay * 2 ** min(failures - 1, 32), policy.max_delay)
    return RestartDecision(failures, delay)
