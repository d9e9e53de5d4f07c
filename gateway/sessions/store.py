"""The session store: tickets, encryption and caching above a raw `Backend` (memory or Redis).

Both backends hold only what this layer gives them: opaque keys (hashes) and sealed blobs. Key
names: `<prefix>s:<sha256(id)>` for sessions, `<prefix>c:<counter>:<hmac(key)>` for counters,
`<prefix>o:<hmac(key)>` for one-time claims.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Sequence

from gateway.observability.logging import get_logger
from gateway.sessions.base import Backend, SessionRecord, StoreUnavailable
from gateway.sessions.cache import DEFAULT_MAX_ENTRIES, PassedSessionCache
from gateway.sessions.crypto import RecordCipher
from gateway.sessions.ticket import Ticket, parse_ticket

log = get_logger(__name__)

_COUNTER_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_CREATE_ATTEMPTS = 3


class EncryptedSessionStore:
    """Implements `gateway.sessions.base.SessionStore` over any `Backend`.

    `server_key` is the current server key (bytes of `GATEWAY_SESSION_SECRET`); `previous_keys`
    open records sealed before a key rotation, which are sealed again with the current key at
    their next write. `cache_seconds` bounds the in-process cache of passed sessions (0: off).
    """

    def __init__(
        self,
        backend: Backend,
        server_key: bytes,
        *,
        previous_keys: Sequence[bytes] = (),
        prefix: str = "",
        cache_seconds: float = 0.0,
        cache_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._backend = backend
        self._cipher = RecordCipher(server_key, previous_keys)
        self._prefix = prefix
        self._cache = PassedSessionCache(cache_seconds, cache_entries)

    def __repr__(self) -> str:
        return f"EncryptedSessionStore({self._backend!r}, prefix={self._prefix!r})"

    # --- key names ------------------------------------------------------------------------------
    def _session_key(self, ticket: Ticket) -> str:
        return f"{self._prefix}s:{ticket.storage_id}"

    def _counter_key(self, counter: str, key: str) -> str:
        if not _COUNTER_NAME.fullmatch(counter):
            raise ValueError("a counter name is lower-case letters, digits, '-', '_' or '.'")
        return f"{self._prefix}c:{counter}:{self._cipher.name_hash('counter', counter, key)}"

    def _claim_key(self, key: str) -> str:
        return f"{self._prefix}o:{self._cipher.name_hash('claim', key)}"

    # --- sealing --------------------------------------------------------------------------------
    def _seal(self, record: SessionRecord, version: int, ticket: Ticket) -> bytes:
        data = record.to_dict()
        data["version"] = version
        plaintext = SessionRecord.from_dict(data).to_json()
        return self._cipher.seal(plaintext, ticket.secret, self._session_key(ticket))

    # --- sessions -------------------------------------------------------------------------------
    async def create(self, record: SessionRecord, ttl: float) -> str:
        _check_ttl(ttl)
        for _ in range(_CREATE_ATTEMPTS):
            ticket = Ticket.new()
            if await self._backend.add(self._session_key(ticket), self._seal(record, 1, ticket), ticket.proof, ttl):
                record.version = 1
                self._cache.put(ticket.value, record)
                return ticket.value
        # 128 random bits colliding three times means the randomness or the backend is broken.
        raise StoreUnavailable("could not allocate a session id")

    def cached(self, cookie_value: str) -> SessionRecord | None:
        return self._cache.peek(cookie_value)

    async def load(self, cookie_value: str) -> SessionRecord | None:
        # The cache is asked first: it only ever holds values that parsed as tickets (every `put`
        # follows a successful parse_ticket), so a hit needs no second parse, on every passed request.
        cached = self._cache.get(cookie_value)
        if cached is not None:
            return cached
        ticket = parse_ticket(cookie_value)
        if ticket is None:
            return None
        key = self._session_key(ticket)
        epoch = self._cache.epoch
        stored = await self._backend.get(key)
        if stored is None:
            return None
        opened = self._cipher.open(stored.data, ticket.secret, key)
        if opened is None:
            # Wrong secret for this id, or an altered blob: no session. Nothing identifying logged.
            log.debug("session_record_rejected", reason="does not open with this cookie")
            return None
        try:
            record = SessionRecord.from_json(opened)
        except (ValueError, TypeError, KeyError):
            log.warning("session_record_rejected", reason="opened but unreadable")
            return None
        if record.version != stored.version:
            # The clear-text version beside the blob was changed by someone other than us.
            log.warning("session_record_rejected", reason="version mismatch")
            return None
        self._cache.put(cookie_value, record, since=epoch)
        return record

    async def save(self, cookie_value: str, record: SessionRecord, ttl: float) -> bool:
        _check_ttl(ttl)
        ticket = parse_ticket(cookie_value)
        if ticket is None:
            return False
        new_version = record.version + 1
        epoch = self._cache.epoch
        saved = await self._backend.compare_and_set(
            self._session_key(ticket), record.version, ticket.proof, self._seal(record, new_version, ticket), ttl
        )
        if not saved:
            # Someone else changed it (or this cookie does not own it): the caller reloads, and
            # must then see the store's copy.
            self._cache.forget(cookie_value)
            return False
        record.version = new_version
        self._cache.put(cookie_value, record, since=epoch)
        return True

    async def rotate(self, cookie_value: str, record: SessionRecord, ttl: float) -> str | None:
        _check_ttl(ttl)
        old = parse_ticket(cookie_value)
        if old is None:
            return None
        self._cache.forget(cookie_value)
        new_version = record.version + 1
        for _ in range(_CREATE_ATTEMPTS):
            new = Ticket.new()
            moved = await self._backend.move(
                self._session_key(old), record.version, old.proof,
                self._session_key(new), self._seal(record, new_version, new), new.proof, ttl,
            )
            if moved:
                record.version = new_version
                self._cache.put(new.value, record)
                return new.value
            # Either the session changed or is gone (the usual case), or the new id collided.
            current = await self._backend.get(self._session_key(old))
            if (
                current is None
                or current.version != record.version
                or not hmac.compare_digest(current.proof, old.proof)
            ):
                return None
        raise StoreUnavailable("could not allocate a session id")

    async def delete(self, cookie_value: str) -> None:
        ticket = parse_ticket(cookie_value)
        if ticket is not None:
            self._cache.forget(cookie_value)
            await self._backend.delete_session(self._session_key(ticket), ticket.proof)

    # --- counters and one-time claims -----------------------------------------------------------
    async def hit(self, counter: str, key: str, window_seconds: float) -> int:
        _check_ttl(window_seconds)
        return await self._backend.incr(self._counter_key(counter, key), window_seconds)

    async def count(self, counter: str, key: str) -> int:
        return await self._backend.get_count(self._counter_key(counter, key))

    async def clear(self, counter: str, key: str) -> None:
        await self._backend.delete(self._counter_key(counter, key))

    async def claim_once(self, key: str, ttl: float) -> bool:
        _check_ttl(ttl)
        return await self._backend.set_nx(self._claim_key(key), ttl)

    async def release(self, key: str) -> None:
        await self._backend.delete(self._claim_key(key))

    # --- lifecycle ------------------------------------------------------------------------------
    async def ping(self) -> None:
        await self._backend.ping()

    async def aclose(self) -> None:
        await self._backend.aclose()

    async def readiness_problem(self) -> str | None:
        """For the readiness registry: None when the store answers, else a short explanation."""
        try:
            await self.ping()
        except StoreUnavailable as exc:
            return f"session store unavailable ({exc})"
        return None


def _check_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError("a TTL must be positive (an ended session is deleted, not saved)")


def random_server_key() -> bytes:
    """A key for one process's memory store when no `GATEWAY_SESSION_SECRET` is set."""
    return secrets.token_bytes(32)
