"""The push poller: one poller per push across replicas (two pollers on one store stand for two
replicas), the lease taken over when a replica dies, and the final status shared through the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.mfa.poller import DIRECT_CHECK_SECONDS, PushPoller
from gateway.monosign import MonosignClient, PushStatus
from gateway.policy.user_agent import ClientDevice
from gateway.sessions.memory import MemoryBackend
from gateway.sessions.redis_backend import connect
from gateway.sessions.store import EncryptedSessionStore, random_server_key
from gateway.sim.monosign import MonosignSimulator
from gateway.sim.monosign_state import FaultMode, MonosignSimState
from gateway.sim.monosign_users import demo_users
from tests.flow.conftest import API_KEY, API_SECRET
from tests.redis_server import RedisServer

FAST = {"first_delay": 0.05, "max_delay": 0.2, "lease_seconds": 0.5}


@pytest.fixture
async def sim() -> AsyncIterator[MonosignSimulator]:
    async with MonosignSimulator(MonosignSimState(demo_users(), api_key=API_KEY, api_secret=API_SECRET)) as running:
        yield running


@pytest.fixture
async def client(sim: MonosignSimulator) -> AsyncIterator[MonosignClient]:
    async with MonosignClient(base_url=sim.url, api_key=API_KEY, api_secret=API_SECRET, timeout=2.0) as running:
        yield running


@pytest.fixture
def store() -> EncryptedSessionStore:
    return EncryptedSessionStore(MemoryBackend(), random_server_key())


async def start_push(sim: MonosignSimulator, client: MonosignClient) -> tuple[str, float]:
    user = await client.lookup_user("alice")
    push = await client.start_push(user.id, "10.0.0.1", ClientDevice("Chrome", "Windows"))
    return push.request_id, time.time() + push.expires_in


def status_calls(sim: MonosignSimulator) -> int:
    return sum(1 for call in sim.state.calls if call["operation"] == "push_status")


async def test_one_poller_per_push_across_replicas(sim: MonosignSimulator, client: MonosignClient,
                                                  store: EncryptedSessionStore) -> None:
    first, second = PushPoller(store, client, **FAST), PushPoller(store, client, **FAST)
    request_id, expires_at = await start_push(sim, client)
    try:
        for _ in range(5):
            await first.ensure(request_id, expires_at)
            await second.ensure(request_id, expires_at)
        assert first.running + second.running == 1
        assert await second.status(request_id, expires_at) is PushStatus.PENDING
        sim.state.answer_latest_push("alice", approve=True)
        for _ in range(50):
            if await second.status(request_id, expires_at) is PushStatus.APPROVED:
                break
            await asyncio.sleep(0.05)
        assert await second.status(request_id, expires_at) is PushStatus.APPROVED
        assert await first.status(request_id, expires_at) is PushStatus.APPROVED
        await asyncio.sleep(0.1)
        assert first.running + second.running == 0  # a final status ends the poller
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_dead_replicas_lease_is_taken_over(sim: MonosignSimulator, client: MonosignClient,
                                                   store: EncryptedSessionStore) -> None:
    dying, survivor = PushPoller(store, client, **FAST), PushPoller(store, client, **FAST)
    request_id, expires_at = await start_push(sim, client)
    try:
        await dying.ensure(request_id, expires_at)
        assert dying.running == 1
        await survivor.ensure(request_id, expires_at)
        assert survivor.running == 0
        await dying.aclose()  # the replica goes away without a word
        for _ in range(40):  # within about two lease slots, a status request elsewhere takes over
            await survivor.ensure(request_id, expires_at)
            if survivor.running:
                break
            await asyncio.sleep(0.05)
        assert survivor.running == 1
        calls = status_calls(sim)
        sim.state.answer_latest_push("alice", approve=False)
        for _ in range(50):
            if await survivor.status(request_id, expires_at) is PushStatus.REJECTED:
                break
            await asyncio.sleep(0.05)
        assert await survivor.status(request_id, expires_at) is PushStatus.REJECTED
        assert status_calls(sim) > calls
    finally:
        await survivor.aclose()


async def test_backoff_keeps_monosign_calls_few(sim: MonosignSimulator, client: MonosignClient,
                                                store: EncryptedSessionStore) -> None:
    poller = PushPoller(store, client, first_delay=0.1, max_delay=0.4, lease_seconds=2.0)
    request_id, expires_at = await start_push(sim, client)
    try:
        await poller.ensure(request_id, expires_at)
        await asyncio.sleep(1.5)
        # 0.1 + 0.15 + 0.225 + 0.34 + 0.4 + 0.4 ... : about six calls in 1.5 s, never one per 0.1 s.
        assert 3 <= status_calls(sim) <= 8
    finally:
        await poller.aclose()
    assert poller.running == 0


async def test_an_expired_push_is_recorded_as_expired(sim: MonosignSimulator, client: MonosignClient,
                                                      store: EncryptedSessionStore) -> None:
    sim.state.push_ttl = 0.2
    poller = PushPoller(store, client, **FAST)
    request_id, expires_at = await start_push(sim, client)
    try:
        await poller.ensure(request_id, expires_at)
        for _ in range(40):
            if await poller.status(request_id, expires_at) is PushStatus.EXPIRED:
                break
            await asyncio.sleep(0.05)
        assert await poller.status(request_id, expires_at) is PushStatus.EXPIRED
    finally:
        await poller.aclose()


def test_timings_are_checked() -> None:
    with pytest.raises(ValueError, match="lease"):
        PushPoller(EncryptedSessionStore(MemoryBackend(), random_server_key()), None, lease_seconds=1.0,  # type: ignore[arg-type]
                   max_delay=2.0)


async def test_check_now_asks_monosign_once_per_push_per_second(sim: MonosignSimulator, client: MonosignClient,
                                                                store: EncryptedSessionStore) -> None:
    poller = PushPoller(store, client, **FAST)
    request_id, expires_at = await start_push(sim, client)
    answers = await asyncio.gather(*(poller.check_now(request_id, expires_at) for _ in range(20)))
    assert set(answers) == {PushStatus.PENDING}
    assert status_calls(sim) == 1  # twenty callers, one Monosign call
    sim.state.answer_latest_push("alice", approve=True)
    assert await poller.check_now(request_id, expires_at) is PushStatus.PENDING  # the second is not over yet
    assert status_calls(sim) == 1
    await asyncio.sleep(DIRECT_CHECK_SECONDS + 0.1)
    assert await poller.check_now(request_id, expires_at) is PushStatus.APPROVED
    assert status_calls(sim) == 2
    # Once recorded, the answer comes from the store: no further Monosign call.
    assert await poller.check_now(request_id, expires_at) is PushStatus.APPROVED
    assert await poller.status(request_id, expires_at) is PushStatus.APPROVED
    assert status_calls(sim) == 2


async def test_a_direct_check_and_the_poller_record_the_answer_once(sim: MonosignSimulator, client: MonosignClient,
                                                                    store: EncryptedSessionStore) -> None:
    poller = PushPoller(store, client, first_delay=0.3, max_delay=0.3, lease_seconds=2.0)
    request_id, expires_at = await start_push(sim, client)
    try:
        await poller.ensure(request_id, expires_at)
        await asyncio.sleep(0.05)  # the poller's first call is made; its next turn is 0.3 s away
        sim.state.answer_latest_push("alice", approve=True)
        assert await poller.check_now(request_id, expires_at) is PushStatus.APPROVED
        calls = status_calls(sim)
        await asyncio.sleep(0.5)
        assert poller.running == 0  # the poller found the answer in the store and stopped
        assert status_calls(sim) == calls  # without asking Monosign again
        assert await store.count("push-approved", request_id) == 1
    finally:
        await poller.aclose()


async def test_check_now_leaves_the_push_pending_when_monosign_fails(sim: MonosignSimulator,
                                                                     client: MonosignClient,
                                                                     store: EncryptedSessionStore) -> None:
    poller = PushPoller(store, client, **FAST)
    request_id, expires_at = await start_push(sim, client)
    sim.state.answer_latest_push("alice", approve=True)
    await sim.set_faults(FaultMode.HTML_502)
    assert await poller.check_now(request_id, expires_at) is PushStatus.PENDING
    assert await poller.status(request_id, expires_at) is PushStatus.PENDING


@pytest.mark.redis
async def test_direct_checks_are_bounded_across_replicas_on_redis(sim: MonosignSimulator, client: MonosignClient,
                                                                  tmp_path: Path) -> None:
    """Two replicas (two stores on one redis-server), a burst of direct checks on each: one Monosign call."""
    with RedisServer.running(tmp_path / "redis") as server:
        key = random_server_key()
        stores = [EncryptedSessionStore(connect(server.url, timeout=2.0), key) for _ in range(2)]
        try:
            replicas = [PushPoller(store, client, **FAST) for store in stores]
            request_id, expires_at = await start_push(sim, client)
            answers = await asyncio.gather(*(poller.check_now(request_id, expires_at)
                                             for poller in replicas for _ in range(10)))
            assert set(answers) == {PushStatus.PENDING}
            assert status_calls(sim) == 1
            sim.state.answer_latest_push("alice", approve=True)
            await asyncio.sleep(DIRECT_CHECK_SECONDS + 0.1)
            assert await replicas[1].check_now(request_id, expires_at) is PushStatus.APPROVED
            assert await replicas[0].status(request_id, expires_at) is PushStatus.APPROVED  # shared
            assert status_calls(sim) == 2
        finally:
            for store in stores:
                await store.aclose()


def calls_for(sim: MonosignSimulator, request_id: str) -> int:
    return sum(1 for call in sim.state.calls if call["operation"] == "push_status" and request_id in call["path"])


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def replica_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[EncryptedSessionStore]]:
    """Two replicas' stores on one backend: one memory backend, or two clients of one redis-server."""
    key = random_server_key()
    if request.param == "memory":
        backend = MemoryBackend()
        yield [EncryptedSessionStore(backend, key) for _ in range(2)]
        return
    with RedisServer.running(tmp_path / "redis") as server:
        yield [EncryptedSessionStore(connect(server.url, timeout=2.0), key) for _ in range(2)]


async def wait_until_stopped(poller: PushPoller) -> None:
    for _ in range(200):  # a poller turn is at most max_delay (0.2 s) apart
        if poller.running == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the poller never stopped")


async def test_an_abandoned_push_stops_being_polled_on_every_replica(
        sim: MonosignSimulator, client: MonosignClient, replica_stores: list[EncryptedSessionStore]) -> None:
    polling, forgetting = (PushPoller(store, client, **FAST) for store in replica_stores)
    request_id, expires_at = await start_push(sim, client)
    try:
        await polling.ensure(request_id, expires_at)
        while calls_for(sim, request_id) < 2:  # polled, on the replica that holds the lease
            await asyncio.sleep(0.05)
        await forgetting.abandon(request_id, expires_at)  # the session was forgotten on the other replica
        abandoned_at = calls_for(sim, request_id)
        await wait_until_stopped(polling)
        # A late ensure (a /status that read the session before it forgot the push) polls nothing either.
        await forgetting.ensure(request_id, expires_at)
        await polling.ensure(request_id, expires_at)
        await wait_until_stopped(forgetting)
        await wait_until_stopped(polling)
        assert calls_for(sim, request_id) <= abandoned_at + 1  # at most the call in flight
        # The abandoned push is still what Monosign says it is to whoever asks; only polling stopped.
        assert await forgetting.status(request_id, expires_at) is PushStatus.PENDING
    finally:
        for poller in (polling, forgetting):
            await poller.aclose()
        for store in replica_stores:
            await store.aclose()


async def test_abandoning_stops_the_local_poller_at_once(sim: MonosignSimulator, client: MonosignClient,
                                                         store: EncryptedSessionStore) -> None:
    poller = PushPoller(store, client, first_delay=0.1, max_delay=0.4, lease_seconds=2.0)
    request_id, expires_at = await start_push(sim, client)
    other_id, other_expires_at = await start_push(sim, client)
    try:
        await poller.ensure(request_id, expires_at)
        await poller.ensure(other_id, other_expires_at)
        await poller.abandon(request_id, expires_at)
        abandoned_at = calls_for(sim, request_id)
        await asyncio.sleep(0)  # the cancelled task ends at its next step
        await asyncio.sleep(0)
        assert poller.running == 1  # the other push's poller runs on
        while calls_for(sim, other_id) < 4:  # several turns of the other push's poller
            await asyncio.sleep(0.05)
        assert calls_for(sim, request_id) == abandoned_at
    finally:
        await poller.aclose()
