"""How long a session may live: pure arithmetic on a record, the clock and the two timeouts.

A session ends at whichever comes first: `idle` seconds after the last user activity, or
`absolute` seconds after the second factor (for a pending session: after its creation). The store
TTL is that remaining time, so an abandoned session disappears from the store on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.sessions.base import SessionRecord


@dataclass(frozen=True, slots=True)
class SessionTimeouts:
    idle: float
    absolute: float

    def remaining(self, record: SessionRecord, now: float) -> float:
        """Seconds this session has left (zero or less: it has ended)."""
        # Conditional expressions, not max()/min(): this runs on every request of a signed-in browser.
        last, created = record.last_activity, record.created_at
        idle_end = (last if last > created else created) + self.idle
        absolute_end = (record.mfa_at if record.mfa_at is not None else created) + self.absolute
        return (idle_end if idle_end < absolute_end else absolute_end) - now

    def expired(self, record: SessionRecord, now: float) -> bool:
        return self.remaining(record, now) <= 0


def session_ttl(record: SessionRecord, now: float, *, idle: float, absolute: float) -> float:
    """The store TTL for `record` at `now` (zero or less means: delete it instead of saving)."""
    return SessionTimeouts(idle=idle, absolute=absolute).remaining(record, now)
