"""The session store, run over both backends (memory, and a real redis-server)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.sessions.base import SessionRecord, SessionState
from gateway.sessions.store import EncryptedSessionStore
from gateway.sessions.ticket import Ticket, parse_ticket
from tests.sessions.conftest import SERVER_KEY, StoreFactory


def pending_record(**changes: object) -> SessionRecord:
    record = SessionRecord(
        state=SessionState.PENDING,
        typed_username="CORP\\Alice",
        normalised_usernames=["alice", "alice@corp.example"],
        user_id="8d2f0c1e-0000-4000-8000-00000000a11c",
        user_name="alice",
        email="alice@corp.example",
        display_name="Alice Ünal",
        upstream_set_cookies=[
            "cadata=\"2Zk+q/abc==\"; path=/; secure; HttpOnly",
            "cadataKey=K3y; path=/; secure; HttpOnly",
        ],
        destination="/owa/#path=/mail",
        created_at=1_700_000_000.5,
        last_activity=1_700_000_001.25,
        csrf_token="csrf-" + "x" * 40,
        client_ip="198.51.100.7",
    )
    for name, value in changes.items():
        setattr(record, name, value)
    return record


# --- create / load / save / rotate / delete ---------------------------------------------------------

async def test_create_then_load_returns_every_field(store: EncryptedSessionStore) -> None:
    record = pending_record(push_request_id="push-1", push_expires_at=1_700_000_100.0, failures=2,
                            cadata_hash="ab" * 32, mfa_at=None)
    cookie = await store.create(record, ttl=60)
    assert parse_ticket(cookie) is not None
    assert record.version == 1
    loaded = await store.load(cookie)
    assert loaded == record


async def test_each_create_gets_a_new_cookie(store: EncryptedSessionStore) -> None:
    cookies = {await store.create(pending_record(), ttl=60) for _ in range(20)}
    assert len(cookies) == 20


async def test_save_is_compare_and_set_on_the_version(store: EncryptedSessionStore) -> None:
    cookie = await store.create(pending_record(), ttl=60)
    first = await store.load(cookie)
    second = await store.load(cookie)
    assert first is not None
    assert second is not None
    first.failures = 1
    assert await store.save(cookie, first, ttl=60)
    assert first.version == 2
    second.failures = 5
    assert not await store.save(cookie, second, ttl=60), "a stale copy must not overwrite a newer one"
    assert second.version == 1
    reloaded = await store.load(cookie)
    assert reloaded is not None
    assert (reloaded.failures, reloaded.version) == (1, 2)


async def test_save_of_an_unknown_or_malformed_session_fails(store: EncryptedSessionStore) -> None:
    assert not await store.save(Ticket.new().value, pending_record(version=1), ttl=60)
    assert not await store.save("garbage", pending_record(version=1), ttl=60)


async def test_rotate_moves_the_session_to_a_new_cookie(store: EncryptedSessionStore) -> None:
    old = await store.create(pending_record(), ttl=60)
    record = await store.load(old)
    assert record is not None
    record.state = SessionState.COMPLETE
    record.mfa_at = 1_700_000_050.0
    new = await store.rotate(old, record, ttl=60)
    assert new is not None
    assert new != old
    assert parse_ticket(new) is not None
    assert await store.load(old) is None, "the old cookie must stop working"
    loaded = await store.load(new)
    assert loaded is not None
    assert (loaded.state, loaded.mfa_at, loaded.version) == (SessionState.COMPLETE, 1_700_000_050.0, 2)
    assert record.version == 2
    # The new cookie keeps working for saves.
    loaded.failures = 3
    assert await store.save(new, loaded, ttl=60)


async def test_rotate_refuses_a_stale_or_gone_session(store: EncryptedSessionStore) -> None:
    cookie = await store.create(pending_record(), ttl=60)
    stale = await store.load(cookie)
    fresh = await store.load(cookie)
    assert stale is not None
    assert fresh is not None
    assert await store.save(cookie, fresh, ttl=60)
    assert await store.rotate(cookie, stale, ttl=60) is None
    assert await store.load(cookie) is not None, "a refused rotation leaves the session as it was"
    await store.delete(cookie)
    assert await store.rotate(cookie, fresh, ttl=60) is None
    assert await store.rotate("not-a-cookie", fresh, ttl=60) is None


async def test_delete(store: EncryptedSessionStore) -> None:
    cookie = await store.create(pending_record(), ttl=60)
    await store.delete(cookie)
    assert await store.load(cookie) is None
    await store.delete(cookie)  # twice: no error
    await store.delete("garbage")
    await store.delete(Ticket.new().value)


async def test_ttl_must_be_positive(store: EncryptedSessionStore) -> None:
    cookie = await store.create(pending_record(), ttl=60)
    record = await store.load(cookie)
    assert record is not None
    for call in (
        store.create(pending_record(), ttl=0),
        store.save(cookie, record, ttl=-1),
        store.rotate(cookie, record, ttl=0),
        store.hit("otp-fail", "alice", 0),
        store.claim_once("push-1", -5),
    ):
        with pytest.raises(ValueError, match="TTL must be positive"):
            await call


# --- expiry (TTLs shrunk to fractions of a second) ---------------------------------------------------

async def test_sessions_expire_with_their_ttl(store: EncryptedSessionStore) -> None:
    short = await store.create(pending_record(), ttl=0.3)
    long = await store.create(pending_record(), ttl=30)
    await asyncio.sleep(0.5)
    assert await store.load(short) is None
    assert await store.load(long) is not None


async def test_save_sets_a_new_ttl(store: EncryptedSessionStore) -> None:
    cookie = await store.create(pending_record(), ttl=0.4)
    record = await store.load(cookie)
    assert record is not None
    assert await store.save(cookie, record, ttl=30)
    await asyncio.sleep(0.6)
    assert await store.load(cookie) is not None
    assert await store.save(cookie, record, ttl=0.3)
    await asyncio.sleep(0.5)
    assert await store.load(cookie) is None


async def test_rotated_session_gets_the_new_ttl(store: EncryptedSessionStore) -> None:
    cookie = await store.create(pending_record(), ttl=30)
    record = await store.load(cookie)
    assert record is not None
    new = await store.rotate(cookie, record, ttl=0.3)
    assert new is not None
    await asyncio.sleep(0.5)
    assert await store.load(new) is None


async def test_counters_and_claims_expire(store: EncryptedSessionStore) -> None:
    assert await store.hit("otp-fail-user", "alice", 0.3) == 1
    assert await store.hit("otp-fail-user", "alice", 0.3) == 2
    assert await store.claim_once("push-7", 0.3)
    assert not await store.claim_once("push-7", 0.3)
    await asyncio.sleep(0.5)
    assert await store.count("otp-fail-user", "alice") == 0
    assert await store.hit("otp-fail-user", "alice", 0.3) == 1, "a new window starts after expiry"
    assert await store.claim_once("push-7", 0.3)


# --- counters and one-time claims ---------------------------------------------------------------------

async def test_counters_are_per_counter_and_key(store: EncryptedSessionStore) -> None:
    assert await store.count("otp-fail-user", "alice") == 0
    await store.hit("otp-fail-user", "alice", 60)
    await store.hit("otp-fail-user", "alice", 60)
    await store.hit("otp-fail-ip", "alice", 60)
    await store.hit("otp-fail-user", "bob", 60)
    assert await store.count("otp-fail-user", "alice") == 2
    assert await store.count("otp-fail-ip", "alice") == 1
    assert await store.count("otp-fail-user", "bob") == 1
    await store.clear("otp-fail-user", "alice")
    assert await store.count("otp-fail-user", "alice") == 0
    assert await store.count("otp-fail-user", "bob") == 1


async def test_counter_names_are_checked(store: EncryptedSessionStore) -> None:
    with pytest.raises(ValueError, match="counter name"):
        await store.hit("Bad Name:*", "alice", 60)


async def test_counters_and_sessions_do_not_collide(store: EncryptedSessionStore) -> None:
    cookie = await store.create(pending_record(), ttl=60)
    ticket = parse_ticket(cookie)
    assert ticket is not None
    await store.hit("s", ticket.storage_id, 60)
    assert await store.claim_once(ticket.storage_id, 60)
    assert await store.load(cookie) is not None


# --- concurrency: no lost updates, one winner ---------------------------------------------------------

async def _increment_failures(store: EncryptedSessionStore, cookie: str) -> int:
    """Load, change, save; on a conflict reload and retry. Returns the number of conflicts seen."""
    conflicts = 0
    while True:
        record = await store.load(cookie)
        assert record is not None
        record.failures += 1
        await asyncio.sleep(0)  # let the other tasks interleave between load and save
        if await store.save(cookie, record, ttl=60):
            return conflicts
        conflicts += 1


@pytest.mark.slow  # optimistic retries under full contention: about n²/2 loads for n writers
@pytest.mark.parametrize("state", [SessionState.PENDING, SessionState.COMPLETE])
async def test_parallel_saves_lose_no_update(make_store: StoreFactory, state: SessionState) -> None:
    # Two replicas, both caching passed sessions: a conflict must still lead to the newest copy.
    replicas = [make_store(cache_seconds=5), make_store(cache_seconds=5)]
    cookie = await replicas[0].create(pending_record(state=state), ttl=60)
    tasks = 200
    conflicts = await asyncio.gather(*(_increment_failures(replicas[i % 2], cookie) for i in range(tasks)))
    final = await make_store().load(cookie)
    assert final is not None
    assert final.failures == tasks
    assert final.version == tasks + 1
    assert sum(conflicts) > 0, "the test must actually produce conflicts"


async def test_parallel_hits_count_every_one(make_store: StoreFactory) -> None:
    replicas = [make_store(), make_store()]
    results = await asyncio.gather(*(replicas[i % 2].hit("otp-fail-ip", "198.51.100.7", 60) for i in range(300)))
    assert sorted(results) == list(range(1, 301))
    assert await replicas[0].count("otp-fail-ip", "198.51.100.7") == 300


async def test_parallel_claims_have_exactly_one_winner(make_store: StoreFactory) -> None:
    replicas = [make_store(), make_store()]
    results = await asyncio.gather(*(replicas[i % 2].claim_once("push-approval-42", 60) for i in range(100)))
    assert results.count(True) == 1


async def test_a_released_claim_can_be_claimed_again(make_store: StoreFactory) -> None:
    """A lock made of claim_once and release (one push start per session): across two replicas, at
    any moment at most one holder, and each release lets exactly one next caller in."""
    replicas = [make_store(), make_store()]
    assert await replicas[0].claim_once("push-start:s1", 60)
    assert not await replicas[1].claim_once("push-start:s1", 60)
    assert await replicas[1].claim_once("push-start:s2", 60)  # per key
    await replicas[1].release("push-start:s1")
    results = await asyncio.gather(*(replicas[i % 2].claim_once("push-start:s1", 60) for i in range(50)))
    assert results.count(True) == 1
    await replicas[0].release("push-start:unknown")  # releasing nothing is no error


async def test_parallel_rotations_have_exactly_one_winner(make_store: StoreFactory) -> None:
    replicas = [make_store(), make_store()]
    cookie = await replicas[0].create(pending_record(), ttl=60)
    records = [await replicas[i % 2].load(cookie) for i in range(50)]
    assert all(record is not None for record in records)
    results = await asyncio.gather(*(
        replicas[i % 2].rotate(cookie, record, ttl=60) for i, record in enumerate(records) if record
    ))
    winners = [value for value in results if value is not None]
    assert len(winners) == 1
    assert await replicas[0].load(cookie) is None
    assert await replicas[1].load(winners[0]) is not None


# --- foreign, malformed and tampered cookie values ----------------------------------------------------

def _other_secret(cookie: str) -> str:
    return cookie.split(".")[0] + "." + Ticket.new().value.split(".")[1]


def _flip_last_secret_char(cookie: str) -> str:
    return cookie[:-1] + ("A" if cookie[-1] != "A" else "B")


MALFORMED: dict[str, object] = {
    "empty": "",
    "garbage": "not a session",
    "huge": "A" * 1_000_000,
    "dot only": ".",
    "none": None,
    "bytes": b"abc.def",
    "non-ascii": "é" * 22 + "." + "é" * 43,
    "padding": "A" * 22 + "==." + "A" * 43,
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_values_are_no_session(store: EncryptedSessionStore, name: str) -> None:
    value = MALFORMED[name]
    assert await store.load(value) is None  # type: ignore[arg-type]
    await store.delete(value)  # type: ignore[arg-type]


TAMPERINGS = {
    "wrong secret": _other_secret,
    "flipped secret": _flip_last_secret_char,
    "truncated": lambda cookie: cookie[:-1],
    "truncated id": lambda cookie: cookie[1:],
    "extended": lambda cookie: cookie + "A",
    "whitespace": lambda cookie: f" {cookie} ",
    "upper-cased": str.upper,
    "swapped halves": lambda cookie: ".".join(reversed(cookie.split("."))),
    "extra dot": lambda cookie: cookie.replace(".", ".."),
}


@pytest.mark.parametrize("cache_seconds", [0.0, 5.0])
@pytest.mark.parametrize("name", sorted(TAMPERINGS))
async def test_tampered_values_are_no_session(
    make_store: StoreFactory, name: str, cache_seconds: float
) -> None:
    store = make_store(cache_seconds=cache_seconds)
    cookie = await store.create(pending_record(state=SessionState.COMPLETE), ttl=60)
    assert await store.load(cookie) is not None  # now cached when the cache is on
    tampered = TAMPERINGS[name](cookie)
    assert tampered != cookie
    assert await store.load(tampered) is None
    record = await store.load(cookie)
    assert record is not None
    assert not await store.save(tampered, record, ttl=60)
    assert await store.rotate(tampered, record, ttl=60) is None
    await store.delete(tampered)
    after = await make_store().load(cookie)  # uncached view of the store
    assert after == record, "the tampered value could neither change, move nor end the session"


async def test_another_sessions_secret_does_not_open_this_id(store: EncryptedSessionStore) -> None:
    alice = await store.create(pending_record(typed_username="alice"), ttl=60)
    mallory = await store.create(pending_record(typed_username="mallory"), ttl=60)
    spliced = alice.split(".")[0] + "." + mallory.split(".")[1]
    assert await store.load(spliced) is None
    spliced_back = mallory.split(".")[0] + "." + alice.split(".")[1]
    assert await store.load(spliced_back) is None


async def test_records_are_bound_to_their_key(store: EncryptedSessionStore) -> None:
    """A blob copied under another session's key (same secret would be needed anyway) does not open."""
    backend = store._backend
    alice = await store.create(pending_record(typed_username="alice"), ttl=60)
    mallory = await store.create(pending_record(typed_username="mallory"), ttl=60)
    mallory_ticket = parse_ticket(mallory)
    assert mallory_ticket is not None
    alice_key = store._session_key(parse_ticket(alice))  # type: ignore[arg-type]
    mallory_key = store._session_key(mallory_ticket)
    stolen = await backend.get(alice_key)
    assert stolen is not None
    assert await backend.compare_and_set(mallory_key, 1, mallory_ticket.proof, stolen.data, 60)
    assert await store.load(mallory) is None


async def test_altered_blob_or_version_is_no_session(store: EncryptedSessionStore) -> None:
    backend = store._backend
    cookie = await store.create(pending_record(), ttl=60)
    key = store._session_key(parse_ticket(cookie))  # type: ignore[arg-type]
    stored = await backend.get(key)
    assert stored is not None
    flipped = bytearray(stored.data)
    flipped[-1] ^= 0x01
    assert await backend.compare_and_set(key, 1, stored.proof, bytes(flipped), 60)
    assert await store.load(cookie) is None

    other = await store.create(pending_record(), ttl=60)
    other_key = store._session_key(parse_ticket(other))  # type: ignore[arg-type]
    original = await backend.get(other_key)
    assert original is not None
    # Same blob, version bumped beside it by someone with write access to the store.
    assert await backend.compare_and_set(other_key, 1, original.proof, original.data, 60)
    assert await store.load(other) is None


# --- server key rotation -------------------------------------------------------------------------------

async def test_previous_key_opens_and_the_next_write_moves_to_the_current_key(make_store: StoreFactory) -> None:
    old_key, new_key = SERVER_KEY, b"the next server key, also long enough to be real"
    before = make_store(server_key=old_key)
    cookie = await before.create(pending_record(), ttl=60)

    only_new = make_store(server_key=new_key)
    assert await only_new.load(cookie) is None, "without the previous key the old record does not open"

    during = make_store(server_key=new_key, previous_keys=[old_key])
    record = await during.load(cookie)
    assert record is not None
    record.failures = 1
    assert await during.save(cookie, record, ttl=60)

    after = await only_new.load(cookie)
    assert after is not None, "the write re-sealed the record with the current key"
    assert after.failures == 1
    assert await before.load(cookie) is None, "the old key alone no longer opens it"


async def test_counters_need_the_same_server_key(make_store: StoreFactory) -> None:
    one = make_store()
    other = make_store(server_key=b"a different server key of sufficient length!!")
    await one.hit("otp-fail-user", "alice", 60)
    assert await make_store().count("otp-fail-user", "alice") == 1
    assert await other.count("otp-fail-user", "alice") == 0


# --- the in-process cache of passed sessions ----------------------------------------------------------

async def test_a_delete_elsewhere_is_seen_within_the_cache_bound(make_store: StoreFactory) -> None:
    bound = 0.4
    here, elsewhere = make_store(cache_seconds=bound), make_store(cache_seconds=bound)
    cookie = await here.create(pending_record(state=SessionState.COMPLETE), ttl=60)
    assert await here.load(cookie) is not None
    await elsewhere.delete(cookie)
    assert await elsewhere.load(cookie) is None, "the replica that deleted sees it at once"
    assert await here.load(cookie) is not None, "within the bound this replica may still use its copy"
    await asyncio.sleep(bound + 0.1)
    assert await here.load(cookie) is None, "past the bound the delete is seen everywhere"


async def test_without_cache_a_delete_elsewhere_is_seen_at_once(make_store: StoreFactory) -> None:
    here, elsewhere = make_store(cache_seconds=0), make_store(cache_seconds=0)
    cookie = await here.create(pending_record(state=SessionState.COMPLETE), ttl=60)
    assert await here.load(cookie) is not None
    await elsewhere.delete(cookie)
    assert await here.load(cookie) is None


async def test_pending_sessions_are_never_cached(make_store: StoreFactory) -> None:
    here, elsewhere = make_store(cache_seconds=30), make_store(cache_seconds=30)
    cookie = await here.create(pending_record(), ttl=60)
    assert await here.load(cookie) is not None
    record = await elsewhere.load(cookie)
    assert record is not None
    record.failures = 4
    assert await elsewhere.save(cookie, record, ttl=60)
    seen = await here.load(cookie)
    assert seen is not None
    assert seen.failures == 4


async def test_cached_records_are_copies(make_store: StoreFactory) -> None:
    store = make_store(cache_seconds=30)
    cookie = await store.create(pending_record(state=SessionState.EXEMPT), ttl=60)
    first = await store.load(cookie)
    assert first is not None
    first.upstream_set_cookies.append("evil=1")
    first.failures = 99
    second = await store.load(cookie)
    assert second is not None
    assert second.failures == 0
    assert "evil=1" not in second.upstream_set_cookies


async def test_cached_answers_only_from_the_cache_and_only_passed_sessions(make_store: StoreFactory) -> None:
    store = make_store(cache_seconds=30)
    passed = await store.create(pending_record(state=SessionState.COMPLETE), ttl=60)
    pending = await store.create(pending_record(), ttl=60)
    assert store.cached(pending) is None
    assert store.cached(passed + "x") is None
    assert store.cached("not a ticket") is None
    cached = store.cached(passed)
    assert cached is not None
    assert cached == await store.load(passed)
    assert make_store(cache_seconds=0).cached(passed) is None
    await store.delete(passed)
    assert store.cached(passed) is None, "a delete here is seen at once"


async def test_own_changes_are_seen_at_once_despite_the_cache(make_store: StoreFactory) -> None:
    store = make_store(cache_seconds=30)
    cookie = await store.create(pending_record(state=SessionState.COMPLETE), ttl=60)
    record = await store.load(cookie)
    assert record is not None
    record.failures = 2
    assert await store.save(cookie, record, ttl=60)
    reloaded = await store.load(cookie)
    assert reloaded is not None
    assert reloaded.failures == 2
    new = await store.rotate(cookie, reloaded, ttl=60)
    assert new is not None
    assert await store.load(cookie) is None
    await store.delete(new)
    assert await store.load(new) is None


async def test_ping(store: EncryptedSessionStore) -> None:
    await store.ping()
    assert await store.readiness_problem() is None
