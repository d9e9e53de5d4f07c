"""`build_store(config)`: the session store a `StoreConfig` asks for (`gateway.assembly` builds the
config from the settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from gateway.observability.logging import get_logger
from gateway.sessions.base import Backend, SessionStore
from gateway.sessions.crypto import server_key_material
from gateway.sessions.memory import MemoryBackend
from gateway.sessions.store import EncryptedSessionStore, random_server_key
from gateway.settings import StoreKind

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """What the session store needs of the settings (GATEWAY_SESSION_*, GATEWAY_REDIS_*)."""

    kind: StoreKind = StoreKind.MEMORY
    secret: SecretStr | None = None
    previous_secret: SecretStr | None = None
    cache_seconds: float = 2.0
    redis_url: SecretStr | None = None
    redis_timeout: float = 2.0
    redis_ca_file: Path | None = None
    redis_prefix: str = "msgw:"
    memory_max_entries: int = 200_000


def build_store(config: StoreConfig) -> EncryptedSessionStore:
    """Build the configured store (no I/O: the Redis client connects on first use).

    Memory without `GATEWAY_SESSION_SECRET` gets a random key: sessions then last as long as the
    process, which they do anyway in memory. Redis always needs the shared key (the settings
    refuse to start without it).
    """
    secret = config.secret
    previous = config.previous_secret
    backend: Backend
    if config.kind is StoreKind.REDIS:
        # Imported here: a memory-only gateway (and the CLI's light start-up) never loads redis-py.
        from gateway.sessions.redis_backend import connect

        if secret is None or config.redis_url is None:
            raise ValueError("the redis store needs GATEWAY_REDIS_URL and GATEWAY_SESSION_SECRET")
        backend = connect(
            config.redis_url.get_secret_value(),
            timeout=config.redis_timeout,
            ca_file=config.redis_ca_file,
        )
        prefix = config.redis_prefix
    else:
        backend = MemoryBackend(max_entries=config.memory_max_entries)
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
        cache_seconds=config.cache_seconds,
    )


def _check_protocol(store: EncryptedSessionStore) -> SessionStore:
    return store  # mypy proves here that the implementation satisfies the protocol
