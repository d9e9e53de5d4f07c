"""A short, bounded, in-process cache of sessions that have passed the second factor.

It keeps the store off the data path: OWA fires dozens of requests per page, and a passed session
rarely changes. The bound on age (`GATEWAY_SESSION_CACHE_SECONDS`) is the bound on how long a logoff
or lockout done by another replica can go unseen here; the bound on size (LRU) caps memory.

Entries are keyed by the whole cookie value (id and secret), so an entry only answers the exact
cookie that created it (dictionary keys match by equality, never by hash alone). Nothing is lost by
keeping the value itself: this process holds the server key that opens every record anyway, and a
digest of the value cost a SHA-256 on every request. Records are copied in and out (`get`; `peek` hands
out the cache's own, for readers that change nothing).

A record read from the backend may be put here only if nothing was forgotten while it was being
read (`epoch`): otherwise a logoff on this replica that lands during another request's store round
trip would be undone by that request caching what it read just before.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.sessions.base import SessionRecord

DEFAULT_MAX_ENTRIES = 10_000


class PassedSessionCache:
    def __init__(
        self,
        max_age: float,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age = max_age
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, SessionRecord]] = OrderedDict()
        self._epoch = 0  # how many forgets so far

    @property
    def epoch(self) -> int:
        """Read before a store round trip; hand it to `put` afterwards."""
        return self._epoch

    @property
    def enabled(self) -> bool:
        return self._max_age > 0 and self._max_entries > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, cookie_value: str) -> SessionRecord | None:
        """A copy of the passed session this exact cookie value opens, or None."""
        record = self.peek(cookie_value)
        return None if record is None else record.copy()

    def peek(self, cookie_value: str) -> SessionRecord | None:
        """Like `get`, without the copy (for the data path): the caller must not change it."""
        if not self.enabled:
            return None
        found = self._entries.get(cookie_value)
        if found is None:
            return None
        stored_at, record = found
        if self._clock() - stored_at >= self._max_age:
            del self._entries[cookie_value]
            return None
        self._entries.move_to_end(cookie_value)
        return record

    def put(self, cookie_value: str, record: SessionRecord, *, since: int | None = None) -> None:
        """Remember a passed session; any other state only evicts what was there. `since`: the
        `epoch` read before the store round trip that produced `record`; if anything was forgotten
        meanwhile (perhaps this very session), the record is not cached."""
        if not self.enabled:
            return
        if not record.passed or (since is not None and since != self._epoch):
            self._entries.pop(cookie_value, None)
            return
        self._entries[cookie_value] = (self._clock(), record.copy())
        self._entries.move_to_end(cookie_value)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, cookie_value: str) -> None:
        self._epoch += 1
        self._entries.pop(cookie_value, None)
