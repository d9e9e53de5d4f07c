"""Fixtures for the session store suite: the same tests run over the memory and the Redis backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from gateway.sessions.base import Backend
from gateway.sessions.memory import MemoryBackend
from gateway.sessions.redis_backend import connect
from gateway.sessions.store import EncryptedSessionStore
from tests.redis_server import RedisServer

SERVER_KEY = b"test server key: thirty-two bytes or more, of course"
PREFIX = "msgw-test:"

StoreFactory = Callable[..., EncryptedSessionStore]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the suite (each test starts from an empty database)."""
    with RedisServer.running(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_store(request: pytest.FixtureRequest, backend_kind: str) -> AsyncIterator[StoreFactory]:
    """Build stores that share one storage (two stores = two replicas); all closed at teardown."""
    shared_memory = MemoryBackend()
    server: RedisServer | None = None
    if backend_kind == "redis":
        server = request.getfixturevalue("redis_server")
        with server.client() as plain:
            plain.flushall()
    backends: list[Backend] = []

    def factory(
        *,
        server_key: bytes = SERVER_KEY,
        previous_keys: Sequence[bytes] = (),
        cache_seconds: float = 0.0,
        cache_entries: int = 10_000,
    ) -> EncryptedSessionStore:
        backend: Backend
        if server is None:
            backend = shared_memory
        else:
            backend = connect(server.url, timeout=2.0)
            backends.append(backend)
        return EncryptedSessionStore(
            backend, server_key, previous_keys=previous_keys, prefix=PREFIX,
            cache_seconds=cache_seconds, cache_entries=cache_entries,
        )

    yield factory
    for backend in backends:
        await backend.aclose()


@pytest.fixture
async def store(make_store: StoreFactory) -> EncryptedSessionStore:
    return make_store()


@pytest.fixture
def fresh_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, free to be killed and restarted."""
    with RedisServer.running(tmp_path / "redis") as server:
        yield server
