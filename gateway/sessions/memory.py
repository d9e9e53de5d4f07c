"""The in-process backend: one dict with expiry, for a single gateway process.

Every method runs without awaiting, so each is atomic with respect to the other tasks of the event
loop: compare-and-set, move and increment need no lock. Expired entries are dropped when read, and
the whole dict is swept from time to time so abandoned sessions do not pile up.

The dict is bounded (`max_entries`, GATEWAY_MEMORY_STORE_MAX_ENTRIES): someone who can make the
gateway write entries (failure counters per address, sessions of a stolen password) must not be able
to grow the process without limit. When it is full even after a sweep, a new key is refused with
`StoreUnavailable` (the callers fail closed: "sign-in is temporarily unavailable") rather than making
room by evicting: evicting would end someone's session, or reset a lockout counter an attacker had
just filled. Entries that exist keep working (a signed-in user's requests, a counter's increments).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.sessions.base import Stored, StoreUnavailable

_SWEEP_INTERVAL = 10.0
_FULL_SWEEP_INTERVAL = 1.0
DEFAULT_MAX_ENTRIES = 200_000


@dataclass(slots=True)
class _Entry:
    expires_at: float
    version: int = 0
    data: bytes = b""
    count: int = 0
    proof: bytes = b""


class MemoryBackend:
    def __init__(self, clock: Callable[[], float] = time.monotonic, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._next_sweep = clock() + _SWEEP_INTERVAL
        self._max_entries = max_entries
        self._last_full_sweep = float("-inf")

    def __repr__(self) -> str:
        return f"MemoryBackend(max_entries={self._max_entries})"

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, key: str) -> _Entry | None:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= now:
            del self._entries[key]
            return None
        return entry

    def _sweep(self, now: float) -> None:
        for key in [key for key, entry in self._entries.items() if entry.expires_at <= now]:
            del self._entries[key]
        self._next_sweep = now + _SWEEP_INTERVAL

    def _make_room(self) -> None:
        """Before a new key is written: room for it, or StoreUnavailable (never an eviction)."""
        if len(self._entries) < self._max_entries:
            return
        now = self._clock()
        # A sweep walks every entry: while the store stays full, at most one a second, or each
        # refused write would cost that walk.
        if now >= self._last_full_sweep + _FULL_SWEEP_INTERVAL:
            self._last_full_sweep = now
            self._sweep(now)
        if len(self._entries) >= self._max_entries:
            raise StoreUnavailable(f"the memory store is full ({self._max_entries} entries; "
                                   "GATEWAY_MEMORY_STORE_MAX_ENTRIES)")

    def _expiry(self, ttl: float) -> float:
        if ttl <= 0:
            raise ValueError("a TTL must be positive")
        return self._clock() + ttl

    async def get(self, key: str) -> Stored | None:
        entry = self._live(key)
        return None if entry is None else Stored(entry.version, entry.data, entry.proof)

    async def add(self, key: str, data: bytes, proof: bytes, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        self._make_room()
        self._entries[key] = _Entry(self._expiry(ttl), version=1, data=data, proof=proof)
        return True

    def _holds(self, key: str, version: int | None, proof: bytes) -> _Entry | None:
        entry = self._live(key)
        if entry is None or not entry.proof or not hmac.compare_digest(entry.proof, proof):
            return None
        if version is not None and entry.version != version:
            return None
        return entry

    async def compare_and_set(self, key: str, expected_version: int, proof: bytes, data: bytes, ttl: float) -> bool:
        if self._holds(key, expected_version, proof) is None:
            return False
        self._entries[key] = _Entry(self._expiry(ttl), version=expected_version + 1, data=data, proof=proof)
        return True

    async def move(
        self, old_key: str, expected_version: int, proof: bytes,
        new_key: str, data: bytes, new_proof: bytes, ttl: float,
    ) -> bool:
        if self._holds(old_key, expected_version, proof) is None or self._live(new_key) is not None:
            return False
        expires_at = self._expiry(ttl)
        del self._entries[old_key]
        self._entries[new_key] = _Entry(expires_at, version=expected_version + 1, data=data, proof=new_proof)
        return True

    async def delete_session(self, key: str, proof: bytes) -> None:
        if self._holds(key, None, proof) is not None:
            del self._entries[key]

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def incr(self, key: str, window: float) -> int:
        entry = self._live(key)
        if entry is None:
            self._make_room()
            entry = self._entries[key] = _Entry(self._expiry(window))
        entry.count += 1
        return entry.count

    async def get_count(self, key: str) -> int:
        entry = self._live(key)
        return 0 if entry is None else entry.count

    async def set_nx(self, key: str, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        self._make_room()
        self._entries[key] = _Entry(self._expiry(ttl))
        return True

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._entries.clear()
