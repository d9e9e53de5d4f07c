"""Polling Monosign for a push's answer: one poller per push, whatever the browsers do.

The MFA page asks `/_gateway/mfa/status` every two seconds; answering each of those with a Monosign
call would multiply Monosign's load by the number of waiting users and tabs. Instead one asyncio task
per push request id polls Monosign with back-off and writes the final status into the store, where
every replica's `/status` reads it.

Only one replica polls a given push. The right to poll is a lease in time slots: a poller holds slot
`n` when its `claim_once` of `push-poll:<id>:<n>` succeeded, and claims slot `n + 1` ahead of time
while it runs. If its replica dies, nobody claims the next slot, and the next `/status` request
anywhere claims it and starts a poller of its own.

A user who presses "I have approved it" (`/_gateway/mfa/complete`) before the poller's next turn
gets `check_now`: one Monosign call through the poller's own path, at most one per push per
`DIRECT_CHECK_SECONDS` across replicas, so a burst of those requests is not a burst of Monosign calls.
A final status is written by whichever of the two sees it first; the other finds it there, and the
poller stops.

A push the session no longer waits for ("Send again" replaced it, "Cancel", a code passed, the
session ended) is `abandon`ed: this replica's poller is cancelled at once, and a marker in the store
stops the poller of any other replica at its next turn (each turn looks before asking Monosign), so
an abandoned push costs at most the one Monosign call in flight per replica. The marker only stops
polling: what an approval of the push is worth is the session's to say, and it no longer names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable

from gateway.monosign import MonosignClient, MonosignError, PushStatus, PushUnknown
from gateway.observability.logging import get_logger
from gateway.sessions.base import SessionStore, StoreUnavailable

log = get_logger("gateway.mfa.poller")

FINAL_STATUSES = (PushStatus.APPROVED, PushStatus.REJECTED, PushStatus.EXPIRED)
_STATUS_COUNTERS = {status: f"push-{status.value}" for status in FINAL_STATUSES}
_ABANDONED = "push-abandoned"
# How long a final status stays readable after the push expired (the user may come back late).
STATUS_KEEP_SECONDS = 600.0
# A push is polled this long past its announced expiry before the gateway calls it expired itself.
EXPIRY_GRACE_SECONDS = 5.0
# At most one direct check (`check_now`) per push in this many seconds, whatever the number of requests.
DIRECT_CHECK_SECONDS = 1.0


class PushPoller:
    def __init__(self, store: SessionStore, monosign: MonosignClient, *, first_delay: float = 0.5,
                 max_delay: float = 4.0, lease_seconds: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        if not 0 < first_delay <= max_delay < lease_seconds:
            raise ValueError("expected 0 < first_delay <= max_delay < lease_seconds")
        self._store = store
        self._monosign = monosign
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._lease = lease_seconds
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def status(self, request_id: str, expires_at: float) -> PushStatus:
        """The push's status as far as the store knows; pending until a poller wrote a final one."""
        recorded = await self._recorded(request_id)
        if recorded is not None:
            return recorded
        if self._clock() > expires_at + EXPIRY_GRACE_SECONDS:
            return PushStatus.EXPIRED
        return PushStatus.PENDING

    async def check_now(self, request_id: str, expires_at: float) -> PushStatus:
        """The push's status, asking Monosign now if the store still has it as pending (the user says
        they answered it). A final answer is recorded as the poller would record it. Only one caller
        per push per `DIRECT_CHECK_SECONDS` (on any replica) asks; the others get the store's status.
        A Monosign failure leaves the push pending. Raises StoreUnavailable."""
        known = await self.status(request_id, expires_at)
        if known is not PushStatus.PENDING:
            return known
        if not await self._store.claim_once(f"push-check:{request_id}", DIRECT_CHECK_SECONDS):
            return known
        answer = await self._poll_once(request_id)
        if answer is None or not answer.is_final:
            return PushStatus.PENDING
        return await self._record(request_id, answer, expires_at)

    async def ensure(self, request_id: str, expires_at: float) -> None:
        """Make sure somebody polls this push: start a poller here unless one runs here or elsewhere."""
        if request_id in self._tasks:
            return
        slot = self._slot(self._clock())
        if not await self._claim(request_id, slot):
            return  # another replica's poller holds the lease
        task = asyncio.create_task(self._run(request_id, expires_at, {slot}), name=f"push-poller-{request_id[:8]}")
        self._tasks[request_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(request_id, None))

    async def abandon(self, request_id: str, expires_at: float) -> None:
        """Stop polling a push no session waits for: this replica's poller now, every other one at its
        next turn (a marker in the store, kept until the push would have expired anyway). Raises
        StoreUnavailable after stopping the local poller."""
        task = self._tasks.get(request_id)
        if task is not None:
            task.cancel()
        keep = max(expires_at - self._clock(), 0.0) + EXPIRY_GRACE_SECONDS + self._lease
        await self._store.hit(_ABANDONED, request_id, keep)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- internals -----------------------------------------------------------------------------------
    def _slot(self, now: float) -> int:
        return math.floor(now / self._lease)

    async def _claim(self, request_id: str, slot: int) -> bool:
        return await self._store.claim_once(f"push-poll:{request_id}:{slot}", self._lease * 3)

    async def _recorded(self, request_id: str) -> PushStatus | None:
        counts = await asyncio.gather(*(self._store.count(_STATUS_COUNTERS[s], request_id) for s in FINAL_STATUSES))
        for status, count in zip(FINAL_STATUSES, counts, strict=True):
            if count > 0:
                return status
        return None

    async def _settled(self, request_id: str) -> bool:
        """Nothing left to poll for: a final status is recorded, or the push was abandoned."""
        counters = (*(_STATUS_COUNTERS[s] for s in FINAL_STATUSES), _ABANDONED)
        counts = await asyncio.gather(*(self._store.count(counter, request_id) for counter in counters))
        return any(count > 0 for count in counts)

    async def _record(self, request_id: str, status: PushStatus, expires_at: float) -> PushStatus:
        """Write the final status unless one is there already (the poller and a direct check may both
        have seen it); returns the status that stands."""
        recorded = await self._recorded(request_id)
        if recorded is not None:
            return recorded
        keep = max(expires_at - self._clock(), 0.0) + STATUS_KEEP_SECONDS
        await self._store.hit(_STATUS_COUNTERS[status], request_id, keep)
        return status

    async def _run(self, request_id: str, expires_at: float, claimed: set[int]) -> None:
        delay = self._first_delay
        try:
            while True:
                now = self._clock()
                if self._slot(now) not in claimed:
                    return  # the lease went to another replica's poller
                if await self._settled(request_id):
                    return  # answered (a direct check on any replica got it first), or abandoned
                next_slot = self._slot(now) + 1
                if next_slot not in claimed and await self._claim(request_id, next_slot):
                    claimed.add(next_slot)
                if now > expires_at + EXPIRY_GRACE_SECONDS:
                    await self._record(request_id, PushStatus.EXPIRED, expires_at)
                    return
                status = await self._poll_once(request_id)
                if status is not None and status.is_final:
                    await self._record(request_id, status, expires_at)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, self._max_delay)
        except StoreUnavailable as exc:
            # The status cannot be shared; the browser's next /status (after the store is back) restarts polling.
            log.warning("push_poller_stopped", push_request_id=request_id, reason=str(exc))
        except Exception:  # a poller must never die silently: the user would wait for ever
            log.exception("push_poller_failed", push_request_id=request_id)

    async def _poll_once(self, request_id: str) -> PushStatus | None:
        try:
            return await self._monosign.push_status(request_id)
        except PushUnknown:
            return PushStatus.EXPIRED
        except MonosignError:
            return None  # logged by the client; try again after the back-off
