"""Sessions: the record, the store interface and its memory and Redis backends (see docs/sessions.md)."""

from gateway.sessions.base import (
    Backend,
    SessionRecord,
    SessionState,
    SessionStore,
    StoreError,
    StoreUnavailable,
)
from gateway.sessions.lifetime import SessionTimeouts, session_ttl

__all__ = [
    "Backend",
    "SessionRecord",
    "SessionState",
    "SessionStore",
    "SessionTimeouts",
    "StoreError",
    "StoreUnavailable",
    "session_ttl",
]
