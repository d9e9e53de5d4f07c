"""The memory store is bounded (GATEWAY_MEMORY_STORE_MAX_ENTRIES): when full it refuses new keys,
fail closed, and never makes room by evicting a session or a counter."""

from __future__ import annotations

import pytest

from gateway.sessions.base import SessionRecord, SessionState, StoreUnavailable
from gateway.sessions.factory import StoreConfig, build_store
from gateway.sessions.memory import MemoryBackend
from gateway.sessions.store import EncryptedSessionStore, random_server_key
from gateway.settings import SettingsError, load_settings
from tests.flow.conftest import flow_environment
from tests.settings_env import REQUIRED

FIELDS = {name.lower(): value for name, value in REQUIRED.items()}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store_of(backend: MemoryBackend) -> EncryptedSessionStore:
    return EncryptedSessionStore(backend, random_server_key())


async def test_a_full_store_refuses_every_kind_of_new_key_and_keeps_what_it_has() -> None:
    clock = Clock()
    backend = MemoryBackend(clock, max_entries=3)
    store = store_of(backend)
    alice = await store.create(SessionRecord(state=SessionState.COMPLETE, user_id="alice"), ttl=60)
    assert await store.hit("login-fail-ip", "192.0.2.1", 60) == 1
    assert await store.claim_once("push-start:x", 60)
    assert len(backend) == 3

    with pytest.raises(StoreUnavailable, match="GATEWAY_MEMORY_STORE_MAX_ENTRIES"):
        await store.create(SessionRecord(state=SessionState.PENDING, user_id="bob"), ttl=60)
    with pytest.raises(StoreUnavailable):
        await store.hit("login-fail-ip", "192.0.2.2", 60)
    with pytest.raises(StoreUnavailable):
        await store.claim_once("push-start:y", 60)
    assert len(backend) == 3

    # What exists keeps working: the session is read, changed and rotated, the counter counts on.
    record = await store.load(alice)
    assert record is not None
    assert record.user_id == "alice"
    assert await store.save(alice, record, ttl=60)
    rotated = await store.rotate(alice, record, ttl=60)
    assert rotated is not None
    assert (await store.load(rotated)) is not None
    assert await store.hit("login-fail-ip", "192.0.2.1", 60) == 2


async def test_expired_entries_make_room_but_a_full_store_is_not_swept_on_every_refusal() -> None:
    clock = Clock()
    backend = MemoryBackend(clock, max_entries=2)
    store = store_of(backend)
    await store.hit("short", "a", 5)
    await store.create(SessionRecord(state=SessionState.COMPLETE, user_id="alice"), ttl=600)
    with pytest.raises(StoreUnavailable):
        await store.hit("short", "b", 5)  # this refusal swept: nothing had expired yet
    clock.now += 10  # "short:a" is over now, and the last full sweep was 10 s ago
    assert await store.hit("short", "b", 5) == 1  # swept, room made

    clock.now += 10  # "short:b" is over too
    await store.hit("short", "c", 600)  # makes room again (the periodic sweep or the full one)
    with pytest.raises(StoreUnavailable):
        await store.hit("short", "d", 600)
    clock.now += 0.5
    with pytest.raises(StoreUnavailable):
        await store.hit("short", "e", 600)  # within a second of the last full sweep: refused at once


def test_the_setting_reaches_the_memory_backend_and_has_a_floor() -> None:
    settings = load_settings(env_file=None, **FIELDS, gateway_memory_store_max_entries=5000)
    assert settings.gateway_memory_store_max_entries == 5000
    assert "max_entries=5000" in repr(build_store(StoreConfig(memory_max_entries=5000)))
    with pytest.raises(SettingsError, match="GATEWAY_MEMORY_STORE_MAX_ENTRIES: Input should be greater than or equal"):
        load_settings(env_file=None, **FIELDS, gateway_memory_store_max_entries=10)


async def test_through_the_gateway_a_full_store_refuses_sign_in_and_signed_in_users_carry_on() -> None:
    backend = MemoryBackend(max_entries=64)
    async with flow_environment(store=store_of(backend)) as env:
        alice = env.browser()
        await alice.sign_in("alice")
        assert (await alice.get("/owa/")).status == 200
        filler = 0
        while len(backend) < 64:
            await backend.set_nx(f"filler:{filler}", 600)
            filler += 1

        bob = env.browser()
        page = await bob.password("bob")
        assert page.status == 503
        assert "msgw" not in " ".join(page.set_cookies)
        assert (await alice.get("/owa/")).status == 200
