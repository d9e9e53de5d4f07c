"""The shutdown drain as the requests see it: the moment it starts, and the requests it had to cut.

On SIGTERM the server (gateway.server) stops accepting, closes idle connections and lets accepted
requests finish, bodies included, for `GATEWAY_SHUTDOWN_GRACE`. Requests that would otherwise hold
the replica open until the grace period ends (ActiveSync Ping, OWA's notification channel) are *held*
requests: they end cleanly at the start of the drain instead, and the client reconnects to another
replica. `Drain.race` is how a held request waits for its upstream while watching for that moment.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["Drain", "DrainStarted"]

T = TypeVar("T")


class DrainStarted(Exception):
    """The drain started while a held request was waiting: end it now, cleanly."""


class Drain:
    """Create anywhere; used in the event loop."""

    def __init__(self) -> None:
        self._started = asyncio.Event()
        self.cutting = False
        # Route classes of the requests still running at the end of the grace period, as they end.
        self.cut: Counter[str] = Counter()

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def begin(self) -> None:
        self._started.set()

    def record_cut(self, route_class: str) -> None:
        if self.cutting:
            self.cut[route_class] += 1

    async def race(self, awaitable: Awaitable[T]) -> T:
        """`awaitable`'s result; or, when the drain starts first, cancel it and raise DrainStarted."""
        if self.started:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise DrainStarted
        work = asyncio.ensure_future(awaitable)
        drain = asyncio.ensure_future(self._started.wait())
        try:
            await asyncio.wait((work, drain), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # our own caller was cancelled (the client went away)
            work.cancel()
            raise
        finally:
            drain.cancel()
        if work.done():
            return work.result()
        work.cancel()
        try:
            late = await work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception:  # noqa: S110 - it failed while being abandoned: nothing to hand back
            pass
        else:  # it finished while being cancelled: do not leak the connection it holds
            close = getattr(late, "close", None)
            if callable(close):
                close()
        raise DrainStarted
