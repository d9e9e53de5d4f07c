"""Sessions: the record, the store interface and its memory and Redis backends (see docs/sessions.md)."""

from gateway.sessions.base import (
    Backend,
    SessionRecord,
    SessionState,
    SessionStore,
    StoreError,
    StoreUnavailable,
)
from gateway.sessions.factory import build_store
from gateway.sessions.lifetime import SessionTimeouts, session_ttl
from gateway.sessions.store import EncryptedSessionStore

__all__ = [
    "Backend",
    "EncryptedSessionStore",
    "SessionRecord",
    "SessionState",
    "SessionStore",
    "SessionTimeouts",
    "StoreError",
    "StoreUnavailable",
    "build_store",
    "session_ttl",
]
