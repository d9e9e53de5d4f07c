"""What only Redis has: a dump to read, an outage to survive, TLS, Sentinel, URLs and settings."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest

from gateway.assembly import store_config
from gateway.sessions.base import SessionRecord, SessionState, StoreUnavailable
from gateway.sessions.factory import build_store
from gateway.sessions.redis_backend import MAX_CONNECTIONS, SentinelTarget, connect, parse_sentinel_url
from gateway.sessions.store import EncryptedSessionStore
from gateway.sessions.ticket import parse_ticket
from gateway.settings import Settings
from tests.flow.conftest import flow_environment
from tests.redis_server import RedisServer, free_port, make_tls_files
from tests.sessions.conftest import PREFIX, SERVER_KEY
from tests.settings_env import without_settings

SECRET = "a-session-secret-of-at-least-32-characters-for-tests"


def redis_store(url: str, *, timeout: float = 1.0, ca_file: Path | None = None) -> EncryptedSessionStore:
    backend = connect(url, timeout=timeout, ca_file=ca_file)
    return EncryptedSessionStore(backend, SERVER_KEY, prefix=PREFIX)


def dump(server: RedisServer) -> dict[bytes, bytes]:
    """Every key and every raw value (hash fields and values concatenated) a plain client sees."""
    found: dict[bytes, bytes] = {}
    with server.client() as plain:
        for key in plain.scan_iter(count=1000):
            kind = plain.type(key)
            if kind == b"hash":
                found[key] = b"|".join(part for pair in plain.hgetall(key).items() for part in pair)
            else:
                found[key] = plain.get(key) or b""
    return found


@pytest.mark.redis
async def test_a_dump_reveals_no_user_no_exchange_cookie_and_no_session(redis_server: RedisServer) -> None:
    with redis_server.client() as plain:
        plain.flushall()
    store = redis_store(redis_server.url)
    try:
        cadata = "cadata=\"Zx9QmSECRETEXCHANGECOOKIEVALUE==\"; path=/; secure; HttpOnly"
        record = SessionRecord(
            state=SessionState.COMPLETE,
            typed_username="CORP\\wonderland",
            normalised_usernames=["wonderland", "alice.wonderland@corp.example"],
            user_id="user-guid-5f1e2d",
            user_name="wonderland",
            email="alice.wonderland@corp.example",
            display_name="Alice Wonderland",
            upstream_set_cookies=[cadata],
            destination="/owa/?path=/calendar",
            csrf_token="csrf-token-value-0123456789",
            push_request_id="push-request-77aa",
            cadata_hash="cadatahash-deadbeef",
            client_ip="203.0.113.99",
        )
        cookie = await store.create(record, ttl=60)
        await store.hit("otp-fail-user", "user-guid-5f1e2d", 60)
        await store.hit("otp-fail-ip", "203.0.113.99", 60)
        await store.claim_once("push-request-77aa", 60)
        ticket = parse_ticket(cookie)
        assert ticket is not None
        session_id_text, secret_text = cookie.split(".")

        raw = dump(redis_server)
        assert len(raw) == 4
        assert all(key.startswith(PREFIX.encode()) for key in raw)
        everything = b"\n".join(key + b"=" + value for key, value in raw.items())
        for needle in (
            "wonderland", "Wonderland", "user-guid-5f1e2d", "SECRETEXCHANGECOOKIEVALUE", "cadata", "calendar",
            "csrf-token-value", "push-request-77aa", "cadatahash", "203.0.113.99", "complete",
            cookie, session_id_text, secret_text,
        ):
            assert needle.encode() not in everything, f"{needle!r} is readable in the store"
        assert ticket.id not in everything
        assert ticket.secret not in everything

        # With the dump and the server key, but not the cookie, nothing opens: the storage key
        # does not give the id back, and the id without its secret opens nothing.
        same_key_store = redis_store(redis_server.url)
        try:
            forged = f"{session_id_text}.{'A' * 43}"
            assert await same_key_store.load(forged) is None
            assert await same_key_store.load(cookie) is not None  # the cookie itself does open it
        finally:
            await same_key_store.aclose()
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_redis_outage_is_store_unavailable_and_recovery_is_automatic(fresh_redis: RedisServer) -> None:
    store = redis_store(fresh_redis.url, timeout=1.0)
    try:
        cookie = await store.create(SessionRecord(state=SessionState.PENDING), ttl=60)
        assert await store.load(cookie) is not None

        fresh_redis.stop()
        operations = {
            "ping": store.ping(),
            "create": store.create(SessionRecord(state=SessionState.PENDING), ttl=60),
            "load": store.load(cookie),
            "hit": store.hit("otp-fail-ip", "192.0.2.1", 60),
            "count": store.count("otp-fail-ip", "192.0.2.1"),
            "claim": store.claim_once("push-1", 60),
            "delete": store.delete(cookie),
        }
        for name, operation in operations.items():
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as info:
                await operation
            assert time.monotonic() - started < 5, f"{name} took too long to fail"
            assert "127.0.0.1" not in str(info.value)
        assert await store.readiness_problem() is not None

        fresh_redis.start()  # same port, empty (no persistence): a restarted Redis
        await store.ping()
        assert await store.readiness_problem() is None
        assert await store.load(cookie) is None, "the restarted Redis has no sessions"
        again = await store.create(SessionRecord(state=SessionState.PENDING), ttl=60)
        assert await store.load(again) is not None
        assert await store.hit("otp-fail-ip", "192.0.2.1", 60) == 1
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_a_frozen_redis_times_out_and_recovers(fresh_redis: RedisServer) -> None:
    """Redis accepts but never answers (SIGSTOP): the short timeouts turn that into StoreUnavailable."""
    store = redis_store(fresh_redis.url, timeout=0.5)
    assert fresh_redis.process is not None
    pid = fresh_redis.process.pid
    try:
        await store.ping()
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.load("A" * 22 + "." + "A" * 43)
            assert time.monotonic() - started < 3
        finally:
            os.kill(pid, signal.SIGCONT)
        await store.ping()
        cookie = await store.create(SessionRecord(state=SessionState.PENDING), ttl=60)
        assert await store.load(cookie) is not None
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_a_frozen_redis_costs_each_operation_the_timeout_and_no_more(fresh_redis: RedisServer) -> None:
    """GATEWAY_REDIS_TIMEOUT bounds a store operation as a whole: with more callers than connections,
    neither the queue for a connection nor redis-py's socket timeout and retry add to it."""
    timeout = 1.0
    store = redis_store(fresh_redis.url, timeout=timeout)
    ticket = "A" * 22 + "." + "A" * 43

    async def duration(operation: Awaitable[object]) -> float:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await operation
        return time.monotonic() - started

    try:
        await store.ping()
        with fresh_redis.frozen():
            callers = MAX_CONNECTIONS + 16  # some queue for a connection
            durations = await asyncio.gather(
                *(duration(store.load(ticket)) for _ in range(callers // 2)),
                *(duration(store.hit("otp-fail-ip", "192.0.2.1", 60)) for _ in range(callers - callers // 2)),
            )
            durations.append(await duration(store.create(SessionRecord(state=SessionState.PENDING), ttl=60)))
        # Before: up to twice the timeout with a connection (socket timeout, then the retry's), and
        # the queue's wait on top of that.
        assert max(durations) < timeout * 1.5, sorted(durations)[-5:]
        await store.ping()  # thawed: the same client works again
        cookie = await store.create(SessionRecord(state=SessionState.PENDING), ttl=60)
        assert await store.load(cookie) is not None
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_a_signed_in_user_waits_at_most_the_timeout_for_a_frozen_redis(fresh_redis: RedisServer) -> None:
    timeout = 1.0
    async with flow_environment(gateway_session_store="redis", gateway_redis_url=fresh_redis.url,
                                gateway_session_secret=SECRET, gateway_redis_timeout=timeout,
                                gateway_session_cache_seconds=0) as env:
        browser = env.browser()
        await browser.sign_in("alice")
        assert (await browser.get("/owa/")).status == 200
        with fresh_redis.frozen():
            started = time.monotonic()
            page = await browser.get("/owa/", headers={"Accept-Language": "tr"})
            waited = time.monotonic() - started
        assert page.status == 503
        assert "Giriş hizmeti geçici olarak kullanılamıyor" in page.text
        assert page.headers["X-Request-Id"] in page.text  # the reference to quote to the help desk
        assert waited < timeout * 1.5, waited
        metrics = await env.metrics()
        assert 'gateway_authn_refusals_total{reason="session_store_unavailable"} 1.0' in metrics
        assert (await browser.get("/owa/")).status == 200  # thawed: the session is still there


# The ACL documented in docs/sessions.md: the least a gateway needs.
DOCUMENTED_ACL = (
    "on >gw-password-for-tests ~msgw-test:* resetchannels -@all "
    "+ping +get +set +del +exists +incr +pttl +pexpire +hget +hmget +hset +evalsha +script|load"
)


@pytest.mark.redis
async def test_the_documented_acl_is_enough(fresh_redis: RedisServer) -> None:
    with fresh_redis.client() as plain:
        plain.execute_command("ACL", "SETUSER", "gateway", *DOCUMENTED_ACL.split())
    store = redis_store(f"redis://gateway:gw-password-for-tests@127.0.0.1:{fresh_redis.port}/0")
    wrong_password = redis_store(f"redis://gateway:wrong@127.0.0.1:{fresh_redis.port}/0")
    try:
        cookie = await store.create(SessionRecord(state=SessionState.PENDING), ttl=60)
        record = await store.load(cookie)
        assert record is not None
        assert await store.save(cookie, record, ttl=60)
        new = await store.rotate(cookie, record, ttl=60)
        assert new is not None
        await store.delete(new)
        assert await store.hit("otp-fail-ip", "192.0.2.1", 60) == 1
        assert await store.count("otp-fail-ip", "192.0.2.1") == 1
        await store.clear("otp-fail-ip", "192.0.2.1")
        assert await store.claim_once("push-1", 60)
        await store.ping()
        with pytest.raises(StoreUnavailable) as info:
            await wrong_password.ping()
        assert "wrong" not in str(info.value)
    finally:
        await store.aclose()
        await wrong_password.aclose()


@pytest.mark.redis
async def test_unix_socket_url_with_password(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    args = ["--unixsocket", str(socket_path), "--unixsocketperm", "700", "--requirepass", "unix-pass"]
    with RedisServer.running(tmp_path / "redis", extra_args=args):
        store = redis_store(f"unix://{socket_path}?db=3&password=unix-pass")
        try:
            cookie = await store.create(SessionRecord(state=SessionState.PENDING), ttl=60)
            assert await store.load(cookie) is not None
        finally:
            await store.aclose()


async def test_unreachable_redis_fails_fast_and_closed() -> None:
    store = redis_store(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.load("A" * 22 + "." + "A" * 43)
        assert await store.load("garbage") is None, "a malformed cookie needs no store at all"
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_rediss_with_a_private_ca(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    with RedisServer.running(tmp_path / "redis", tls=tls) as server:
        assert server.url.startswith("rediss://")
        trusted = redis_store(server.url, ca_file=tls.ca)
        untrusted = redis_store(server.url, timeout=1.0)
        try:
            cookie = await trusted.create(SessionRecord(state=SessionState.PENDING), ttl=60)
            assert await trusted.load(cookie) is not None
            with pytest.raises(StoreUnavailable):  # the system CAs do not know this certificate
                await untrusted.ping()
        finally:
            await trusted.aclose()
            await untrusted.aclose()


@pytest.mark.redis
async def test_sentinel_url_reaches_the_master(tmp_path: Path) -> None:
    with (
        RedisServer.running(tmp_path / "master") as master,
        RedisServer.running(tmp_path / "sentinel", sentinel_for=("127.0.0.1", master.port)) as sentinel,
    ):
        url = f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster/0"
        store = redis_store(url, timeout=2.0)
        try:
            cookie = None
            deadline = time.monotonic() + 10
            while cookie is None:  # the Sentinel needs a moment to learn about its master
                try:
                    cookie = await store.create(SessionRecord(state=SessionState.PENDING), ttl=60)
                except StoreUnavailable:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            assert await store.load(cookie) is not None
            with master.client() as plain:
                assert any(key.startswith(PREFIX.encode()) for key in plain.scan_iter())
        finally:
            await store.aclose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+sentinel://10.0.0.1:26379/mymaster", SentinelTarget([("10.0.0.1", 26379)], "mymaster")),
        (
            "redis+sentinel://user:p%40ss@s1:1,s2,[::1]:3/svc/2?sentinel_password=spw",
            SentinelTarget([("s1", 1), ("s2", 26379), ("::1", 3)], "svc", db=2, username="user",
                           password="p@ss", sentinel_password="spw"),
        ),
        (
            "rediss+sentinel://:only-password@s1:26380/svc/0",
            SentinelTarget([("s1", 26380)], "svc", password="only-password", tls=True),
        ),
    ],
)
def test_parse_sentinel_url(url: str, expected: SentinelTarget) -> None:
    assert parse_sentinel_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://s1:26379",                 # no service name
        "redis+sentinel:///svc",                     # no Sentinel
        "redis+sentinel://s1:port/svc",              # bad port
        "redis+sentinel://s1/svc/notanumber",        # bad db
        "redis+sentinel://s1/svc/0/extra",
        "redis+sentinel://s1/svc?tls=yes",           # unknown parameter
        "redis://s1/svc",
    ],
)
def test_parse_sentinel_url_rejects(url: str) -> None:
    with pytest.raises(ValueError, match=r"redis\+sentinel|Sentinel address|unknown"):
        parse_sentinel_url(url)


@pytest.fixture
def base_settings(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    without_settings(monkeypatch)
    return {
        "monosign_api_url": "http://127.0.0.1:9001",
        "monosign_api_key": "app-id",
        "monosign_api_secret": "api-secret",
        "gateway_public_url": "https://mail.example.com",
        "gateway_upstream_url": "http://127.0.0.1:9002",
    }


async def test_build_store_memory_without_secret(base_settings: dict[str, object]) -> None:
    store = build_store(store_config(Settings(_env_file=None, **base_settings)))  # type: ignore[arg-type]
    other = build_store(store_config(Settings(_env_file=None, **base_settings)))  # type: ignore[arg-type]
    try:
        cookie = await store.create(SessionRecord(state=SessionState.PENDING), ttl=60)
        assert await store.load(cookie) is not None
        assert await other.load(cookie) is None, "each memory store is its own"
    finally:
        await store.aclose()
        await other.aclose()


@pytest.mark.redis
async def test_build_store_redis_from_settings(
    base_settings: dict[str, object], redis_server: RedisServer
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        **base_settings,
        gateway_session_store="redis",
        gateway_redis_url=redis_server.url,
        gateway_session_secret=SECRET,
        gateway_redis_prefix="gw-a:",
        gateway_session_cache_seconds=0,
    )
    one, two = build_store(store_config(settings)), build_store(store_config(settings))
    try:
        cookie = await one.create(SessionRecord(state=SessionState.PENDING), ttl=60)
        assert await two.load(cookie) is not None, "two replicas with the same settings share sessions"
        with redis_server.client() as plain:
            assert any(key.startswith(b"gw-a:s:") for key in plain.scan_iter())
        await two.delete(cookie)
        assert await one.load(cookie) is None
    finally:
        await one.aclose()
        await two.aclose()
