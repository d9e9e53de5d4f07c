"""Readiness: a registry of named dependency checks (`upstream`, later `monosign`, `store`).

Liveness (`/healthz`) never runs these: a process that answers is alive, whatever its
dependencies do. Readiness (`/readyz`) runs every check concurrently, each bounded by a timeout,
and names the ones that fail, so an operator sees at once which dependency is missing.
A check returns None when the dependency is usable, or a short, non-secret explanation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Check = Callable[[], Awaitable[str | None]]

CHECK_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    ready: bool
    checks: dict[str, str | None]  # name -> None (ok) or the problem

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not ready",
            "checks": {
                name: ({"ok": True} if problem is None else {"ok": False, "error": problem})
                for name, problem in self.checks.items()
            },
        }


class Readiness:
    def __init__(self, *, timeout: float = CHECK_TIMEOUT) -> None:
        self._checks: dict[str, Check] = {}
        self._timeout = timeout
        self.draining = False  # set on shutdown: load balancers should stop sending traffic

    def add(self, name: str, check: Check) -> None:
        if name in self._checks:
            raise ValueError(f"readiness check {name!r} is already registered")
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    async def _run_one(self, check: Check) -> str | None:
        try:
            return await asyncio.wait_for(check(), self._timeout)
        except TimeoutError:
            return f"no answer within {self._timeout:g} s"
        except Exception as exc:  # a broken check must not break /readyz
            return f"check failed ({type(exc).__name__})"

    async def report(self) -> ReadinessReport:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_one(self._checks[name]) for name in names))
        checks: dict[str, str | None] = dict(zip(names, results, strict=True))
        if self.draining:
            checks["shutdown"] = "the gateway is shutting down"
        return ReadinessReport(ready=all(problem is None for problem in checks.values()), checks=checks)
