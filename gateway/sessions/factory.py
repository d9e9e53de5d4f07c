"""`build_store(settings)`: the session store the settings ask for."""

from __future__ import annotations

from gateway.observability.logging import get_logger
from gateway.sessions.base import Backend, SessionStore
from gateway.sessions.crypto import server_key_material
from gateway.sessions.memory import MemoryBackend
from gateway.sessions.store import EncryptedSessionStore, random_server_key
from gateway.settings import Settings, StoreKind

log = get_logger(__name__)


def build_store(settings: Settings) -> EncryptedSessionStore:
    """Build the configured store (no I/O: the Redis client connects on first use).

    Memory without `GATEWAY_SESSION_SECRET` gets a random key: sessions then last as long as the
    process, which they do anyway in memory. Redis always needs the shared key (the settings
    refuse to start without it).
    """
    secret = settings.gateway_session_secret
    previous = settings.gateway_session_secret_previous
    backend: Backend
    if settings.gateway_session_store is StoreKind.REDIS:
        # Imported here: a memory-only gateway (and the CLI's light start-up) never loads redis-py.
        from gateway.sessions.redis_backend import connect

        if secret is None or settings.gateway_redis_url is None:
            raise ValueError("the redis store needs GATEWAY_REDIS_URL and GATEWAY_SESSION_SECRET")
        backend = connect(
            settings.gateway_redis_url.get_secret_value(),
            timeout=settings.gateway_redis_timeout,
            ca_file=settings.gateway_redis_ca_file,
        )
        prefix = settings.gateway_redis_prefix
    else:
        backend = MemoryBackend()
        prefix = ""
    if secret is None:
        log.info("session_secret_generated", reason="GATEWAY_SESSION_SECRET is not set; sessions end at restart")
        key = random_server_key()
    else:
        key = server_key_material(secret.get_secret_value())
    return EncryptedSessionStore(
        backend,
        key,
        previous_keys=[server_key_material(previous.get_secret_value())] if previous is not None else [],
        prefix=prefix,
        cache_seconds=settings.gateway_session_cache_seconds,
    )


def _check_protocol(store: EncryptedSessionStore) -> SessionStore:
    return store  # mypy proves here that the implementation satisfies the protocol
