"""The Redis backend: shared by every worker and replica.

A record is a hash `{v: version, d: blob, p: proof}` with a TTL; the compare-and-set, the move (session id
rotation) and the counter increment are Lua scripts, so each is one atomic step on the server.
Every Redis or socket error surfaces as `StoreUnavailable`; redis-py reconnects on the next call,
so the store recovers on its own when Redis comes back.

URLs: `redis://[user:password@]host:port/db`, `rediss://…` (TLS; `GATEWAY_REDIS_CA_FILE` for a
private CA), `unix:///path/redis.sock?db=0`, and `redis+sentinel://[user:password@]host:port[,host:port…]/service/db`
(`rediss+sentinel://` with TLS to the Sentinels and the master). Redis Cluster is not supported
(the rotation touches two keys).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as redis_asyncio
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.sessions.base import Stored, StoreUnavailable

T = TypeVar("T")

DEFAULT_SENTINEL_PORT = 26379
# Connections per process. Callers beyond it wait (up to the timeout) for a free one instead of
# failing: a burst of OWA requests queues for a moment rather than seeing the store "down".
MAX_CONNECTIONS = 64

# A session is a hash {v: version, d: sealed blob, p: proof of the session secret}.
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1], 'p', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

_COMPARE_AND_SET = """
local held = redis.call('HMGET', KEYS[1], 'v', 'p')
if held[1] ~= ARGV[1] or held[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'v', tonumber(ARGV[1]) + 1, 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

_MOVE = """
local held = redis.call('HMGET', KEYS[1], 'v', 'p')
if held[1] ~= ARGV[1] or held[2] ~= ARGV[2] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'v', tonumber(ARGV[1]) + 1, 'd', ARGV[3], 'p', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"""

_DELETE_SESSION = """
if redis.call('HGET', KEYS[1], 'p') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""

# The window starts with the first hit; a counter that somehow lost its TTL gets one back.
_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _milliseconds(ttl: float) -> int:
    if ttl <= 0:
        raise ValueError("a TTL must be positive")
    return max(1, round(ttl * 1000))


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """What a `redis+sentinel://` URL names."""

    sentinels: list[tuple[str, int]]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    tls: bool = False


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.partition(":")
    if not host or (port_text and not port_text.isdigit()):
        raise ValueError("a Sentinel address is HOST:PORT")
    return host, int(port_text) if port_text else default_port


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Parse `redis+sentinel://[user:password@]host:port[,host:port…]/service_name[/db]`.

    Credentials in the URL are for the master; `?sentinel_username=…&sentinel_password=…` are
    for the Sentinels themselves when they require authentication.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis+sentinel", "rediss+sentinel"):
        raise ValueError("expected a redis+sentinel:// URL")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user_text, colon, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if colon else None
    sentinels = [_host_port(item.strip(), DEFAULT_SENTINEL_PORT) for item in hosts.split(",") if item.strip()]
    path = [segment for segment in parts.path.split("/") if segment]
    if not sentinels or not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError("expected redis+sentinel://HOST:PORT[,HOST:PORT]/SERVICE_NAME[/DB]")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = query.keys() - {"sentinel_username", "sentinel_password"}
    if unknown:
        raise ValueError(f"unknown redis+sentinel:// parameter(s): {', '.join(sorted(unknown))}")
    return SentinelTarget(
        sentinels=sentinels,
        service_name=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=username,
        password=password,
        sentinel_username=query.pop("sentinel_username", None),
        sentinel_password=query.pop("sentinel_password", None),
        tls=parts.scheme == "rediss+sentinel",
    )


def connect(url: str, *, timeout: float, ca_file: Path | None = None) -> RedisBackend:
    """A backend for `url` (no I/O yet: connections open on first use)."""
    common: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        # One immediate retry: enough to replace a connection Redis closed (restart, failover)
        # without stretching an outage into seconds of backoff per request.
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 30,
        "decode_responses": False,
        "max_connections": MAX_CONNECTIONS,
    }
    scheme = urlsplit(url).scheme
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        target = parse_sentinel_url(url)
        tls: dict[str, Any] = {}
        if target.tls:
            tls = {"ssl": True, **({"ssl_ca_certs": str(ca_file)} if ca_file else {})}
        sentinel_kwargs = {
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "username": target.sentinel_username,
            "password": target.sentinel_password,
            **tls,
        }
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves Sentinel untyped
            target.sentinels, sentinel_kwargs=sentinel_kwargs, **common
        )
        master: redis_asyncio.Redis = sentinel.master_for(
            target.service_name,
            db=target.db,
            username=target.username,
            password=target.password,
            **tls,
        )
        # The Sentinel clients are ours to close too (master_for's client closes only its pool).
        return RedisBackend(master, timeout=timeout, also_close=sentinel.sentinels)
    if scheme == "rediss" and ca_file is not None:
        common["ssl_ca_certs"] = str(ca_file)
    return RedisBackend(redis_asyncio.from_url(url, **common), timeout=timeout)


class RedisBackend:
    def __init__(
        self,
        client: redis_asyncio.Redis,
        *,
        timeout: float = 2.0,
        max_connections: int = MAX_CONNECTIONS,
        also_close: Sequence[redis_asyncio.Redis] = (),
    ) -> None:
        self._client = client
        self._also_close = list(also_close)
        self._timeout = timeout
        # redis-py's pool raises at its limit rather than waiting; the semaphore makes callers
        # queue for a connection (bounded by the timeout) and keeps the pool within its limit.
        self._slots = asyncio.Semaphore(max_connections)
        self._add = client.register_script(_ADD)
        self._compare_and_set = client.register_script(_COMPARE_AND_SET)
        self._move = client.register_script(_MOVE)
        self._delete_session = client.register_script(_DELETE_SESSION)
        self._incr = client.register_script(_INCR)

    def __repr__(self) -> str:  # the URL may hold a password: never shown
        return "RedisBackend()"

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation` within GATEWAY_REDIS_TIMEOUT, all included: the wait for a free connection,
        connecting, redis-py's socket timeouts and its retry. A frozen Redis costs a request that
        long, not a multiple of it."""
        acquired = False
        try:
            async with asyncio.timeout(self._timeout):
                await self._slots.acquire()
                acquired = True
                return await operation()
        except TimeoutError:
            raise StoreUnavailable("redis: no answer in time" if acquired else "redis: no free connection") from None
        except (RedisError, OSError) as exc:
            # The class name says enough (ConnectionError, ...); messages may echo addresses or
            # credentials, so they stay out.
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None
        finally:
            if acquired:
                self._slots.release()

    async def get(self, key: str) -> Stored | None:
        version, data, proof = await self._call(lambda: self._client.hmget(key, ["v", "d", "p"]))
        if version is None or data is None or proof is None:
            return None
        return Stored(int(version), _as_bytes(data), _as_bytes(proof))

    async def add(self, key: str, data: bytes, proof: bytes, ttl: float) -> bool:
        ms = _milliseconds(ttl)
        return bool(await self._call(lambda: self._add(keys=[key], args=[data, proof, ms])))

    async def compare_and_set(self, key: str, expected_version: int, proof: bytes, data: bytes, ttl: float) -> bool:
        ms = _milliseconds(ttl)
        result = await self._call(
            lambda: self._compare_and_set(keys=[key], args=[str(expected_version), proof, data, ms])
        )
        return bool(result)

    async def move(
        self, old_key: str, expected_version: int, proof: bytes,
        new_key: str, data: bytes, new_proof: bytes, ttl: float,
    ) -> bool:
        ms = _milliseconds(ttl)
        result = await self._call(
            lambda: self._move(
                keys=[old_key, new_key], args=[str(expected_version), proof, data, new_proof, ms]
            )
        )
        return bool(result)

    async def delete_session(self, key: str, proof: bytes) -> None:
        await self._call(lambda: self._delete_session(keys=[key], args=[proof]))

    async def delete(self, key: str) -> None:
        await self._call(lambda: self._client.delete(key))

    async def incr(self, key: str, window: float) -> int:
        ms = _milliseconds(window)
        return int(await self._call(lambda: self._incr(keys=[key], args=[ms])))

    async def get_count(self, key: str) -> int:
        value = await self._call(lambda: self._client.get(key))
        return 0 if value is None else int(value)

    async def set_nx(self, key: str, ttl: float) -> bool:
        ms = _milliseconds(ttl)
        return bool(await self._call(lambda: self._client.set(key, b"1", nx=True, px=ms)))

    async def ping(self) -> None:
        await self._call(self._client.ping)

    async def aclose(self) -> None:
        try:
            for client in (self._client, *self._also_close):
                await client.aclose()
        except (TimeoutError, RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None
