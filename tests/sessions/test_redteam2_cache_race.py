"""Red team, second pass: a logoff on this replica while a load of the same session is in flight.

The store keeps passed sessions in a short in-process cache. With Redis, a load awaits the backend;
if the session is deleted (logoff) in that moment, the load must not put the record it read back
into the cache, or the signed-out cookie would keep passing here for the cache's lifetime.
"""

from __future__ import annotations

import asyncio

from gateway.sessions.base import SessionRecord, SessionState, Stored
from gateway.sessions.memory import MemoryBackend
from gateway.sessions.store import EncryptedSessionStore
from tests.sessions.conftest import PREFIX, SERVER_KEY


class SlowReads(MemoryBackend):
    """A backend whose reads answer only when the test says so (a Redis round trip, frozen):
    the value is read at once, and handed back later."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None
        self.reading = asyncio.Event()

    async def get(self, key: str) -> Stored | None:
        stored = await super().get(key)
        if self.gate is not None:
            self.reading.set()
            await self.gate.wait()
        return stored


async def test_a_load_in_flight_during_a_delete_does_not_bring_the_session_back() -> None:
    backend = SlowReads()
    store = EncryptedSessionStore(backend, SERVER_KEY, prefix=PREFIX, cache_seconds=30.0)
    # Signed in through another replica: not in this one's cache yet.
    other_replica = EncryptedSessionStore(backend, SERVER_KEY, prefix=PREFIX)
    cookie = await other_replica.create(SessionRecord(SessionState.COMPLETE, typed_username="alice"), 600.0)
    backend.gate = asyncio.Event()
    in_flight = asyncio.create_task(store.load(cookie))
    await backend.reading.wait()
    await store.delete(cookie)  # the logoff, on this replica, while the read is on its way
    backend.gate.set()
    await in_flight  # the request that started before the logoff may finish as it began
    backend.gate = None
    assert await store.load(cookie) is None


async def test_a_save_in_flight_during_a_delete_does_not_bring_the_session_back() -> None:
    backend = MemoryBackend()
    store = EncryptedSessionStore(backend, SERVER_KEY, prefix=PREFIX, cache_seconds=30.0)
    cookie = await store.create(SessionRecord(SessionState.COMPLETE, typed_username="alice"), 600.0)
    record = await store.load(cookie)
    assert record is not None
    original = backend.compare_and_set

    async def save_then_logoff(*args: object, **kwargs: object) -> bool:
        saved = await original(*args, **kwargs)  # type: ignore[arg-type]
        await store.delete(cookie)  # the logoff lands between the write and the cache update
        return saved

    backend.compare_and_set = save_then_logoff  # type: ignore[method-assign]
    await store.save(cookie, record, 600.0)
    backend.compare_and_set = original  # type: ignore[method-assign]
    assert await store.load(cookie) is None
