"""Parse `wrk --latency` output (pure; tested in tests/test_bench_wrk.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*([0-9]+) requests in ([0-9.]+)(us|ms|s|m)", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
_ERRORS = re.compile(r"Non-2xx or 3xx responses:\s+([0-9]+)|Socket errors: connect ([0-9]+), read ([0-9]+), "
                     r"write ([0-9]+), timeout ([0-9]+)")


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors plus non-2xx/3xx answers


def parse_wrk(output: str) -> WrkResult:
    percentiles = {int(name): float(value) * _UNITS_TO_MS[unit] for name, value, unit in _PERCENTILE.findall(output)}
    requests = _REQUESTS.search(output)
    rate = _RATE.search(output)
    if requests is None or rate is None or 50 not in percentiles or 99 not in percentiles:
        raise ValueError("not wrk --latency output")
    errors = 0
    for match in _ERRORS.finditer(output):
        errors += sum(int(group) for group in match.groups() if group)
    return WrkResult(int(requests.group(1)), float(rate.group(1)), percentiles[50], percentiles[99], errors)
