"""Brute-force limits on the second factor, per Monosign user and per client IP, kept in the store.

Failures (wrong or malformed codes, rejected pushes) are counted in a window of
`GATEWAY_MFA_LOCKOUT_SECONDS` that starts at the first failure. Reaching `GATEWAY_MFA_MAX_FAILURES`
sets a lock of that same length, starting then: a separate counter, so the pause is always the full
length however the failures were spread. Both live in the session store, so every replica sees them.

Keys are Monosign's user Id, not the typed name: `CORP\\alice`, `alice@corp.example` and `ALICE`
share one counter. The store only offers counters, not their expiry, so the remaining wait is known
exactly where the lock was set and reported as the full length elsewhere (an upper bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum

from gateway.mfa.decisions import attempts_left
from gateway.sessions.base import SessionStore

_MAX_REMEMBERED_LOCKS = 10_000


class Scope(StrEnum):
    USER = "user"
    IP = "ip"


_FAILURES = {Scope.USER: "mfa-fail-user", Scope.IP: "mfa-fail-ip"}
_LOCKS = {Scope.USER: "mfa-lock-user", Scope.IP: "mfa-lock-ip"}
_PUSHES = "mfa-push-user"
# How long a used one-time code is remembered: a TOTP code lives 30 s, and verifiers accept a few
# steps of clock skew either side; ten minutes is comfortably longer.
CODE_REUSE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    attempts_left: int
    locked: tuple[Scope, ...]  # the scopes this failure locked (empty: not locked)


class Lockout:
    def __init__(self, store: SessionStore, *, max_failures: int, seconds: float, max_pushes: int = 10,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self.max_failures = max_failures
        self.max_pushes = max_pushes
        self.seconds = seconds
        self._clock = clock
        self._locked_at: OrderedDict[tuple[Scope, str], float] = OrderedDict()
        self._in_flight: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def one_at_a_time(self, user_id: str) -> AsyncIterator[None]:
        """Serialise a user's code checks in this process.

        Failures are counted when Monosign has answered; without this, a burst of parallel guesses
        would all pass the lockout check before the first failure is counted. Across replicas the
        overshoot is bounded by the number of replicas (and Monosign's own lockout).
        """
        lock, users = self._in_flight.get(user_id, (asyncio.Lock(), 0))
        self._in_flight[user_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._in_flight[user_id]
            if users <= 1:
                del self._in_flight[user_id]
            else:
                self._in_flight[user_id] = (lock, users - 1)

    async def push_allowed(self, user_id: str) -> bool:
        """Counts a push for the user; False past `max_pushes` pushes in the window (push fatigue:
        someone with the password must not be able to buzz the user's phone without end)."""
        return await self._store.hit(_PUSHES, user_id, self.seconds) <= self.max_pushes

    async def wait_seconds(self, user_id: str, client_ip: str) -> float:
        """Seconds until this user at this address may try again (0: not locked)."""
        keys = {Scope.USER: user_id, Scope.IP: client_ip}
        counts = await asyncio.gather(*(self._store.count(_LOCKS[scope], key) for scope, key in keys.items()))
        waits = [self._remaining(scope, keys[scope]) for scope, count in zip(keys, counts, strict=True) if count > 0]
        return max(waits, default=0.0)

    async def attempts_left(self, user_id: str, client_ip: str) -> int:
        user, ip = await asyncio.gather(self._store.count(_FAILURES[Scope.USER], user_id),
                                        self._store.count(_FAILURES[Scope.IP], client_ip))
        return attempts_left(self.max_failures, user, ip)

    async def record_failure(self, user_id: str, client_ip: str) -> FailureOutcome:
        keys = {Scope.USER: user_id, Scope.IP: client_ip}
        counts = await asyncio.gather(
            *(self._store.hit(_FAILURES[scope], key, self.seconds) for scope, key in keys.items())
        )
        locked = []
        for scope, count in zip(keys, counts, strict=True):
            if count >= self.max_failures:
                await self._store.hit(_LOCKS[scope], keys[scope], self.seconds)
                await self._store.clear(_FAILURES[scope], keys[scope])
                self._remember(scope, keys[scope])
                locked.append(scope)
        return FailureOutcome(attempts_left(self.max_failures, *counts), tuple(locked))

    async def first_use_of_code(self, user_id: str, code: str) -> bool:
        """True the first time a code Monosign accepted is used for this user; False for a replay.

        A one-time code is one-time whatever Monosign does about it (RFC 6238 §5.2 asks the
        verifier to refuse a second use; Monosign's API does not promise it): a code read over a
        shoulder, or replayed by whoever relayed it, must not pass a second session. The store
        keeps only a keyed hash of the pair, for longer than any code stays valid."""
        return await self._store.claim_once(f"code-used:{user_id}:{code}", CODE_REUSE_SECONDS)

    async def succeeded(self, user_id: str) -> None:
        """A passed second factor forgets the user's failures (the address keeps its count: one
        attacker's own account must not reset the count of a password-spraying address)."""
        await self._store.clear(_FAILURES[Scope.USER], user_id)

    def _remember(self, scope: Scope, key: str) -> None:
        self._locked_at[(scope, key)] = self._clock()
        self._locked_at.move_to_end((scope, key))
        while len(self._locked_at) > _MAX_REMEMBERED_LOCKS:
            self._locked_at.popitem(last=False)

    def _remaining(self, scope: Scope, key: str) -> float:
        locked_at = self._locked_at.get((scope, key))
        if locked_at is None:
            return self.seconds
        return max(1.0, locked_at + self.seconds - self._clock())
