"""The MFA flow's decisions, without I/O: may this session reach Exchange, when to record activity,
where a refused navigation goes, what a one-time code looks like.

Table-tested in tests/flow/test_decisions.py; the handlers only fetch the inputs and act on the answer.
"""

from __future__ import annotations

import hmac
import re
import secrets
from enum import StrEnum
from urllib.parse import quote

from gateway.policy.owa_responses import LOGON_PAGE_PATH, LogonReason
from gateway.sessions.base import SessionRecord, SessionState
from gateway.sessions.lifetime import SessionTimeouts

# Monosign's one-time codes are ASCII digits (str.isdigit would also accept other scripts' digits).
_DIGITS = re.compile(r"[0-9]+")
# Upper bound on how often a busy session writes its last activity to the store.
MAX_TOUCH_INTERVAL = 60.0


class Access(StrEnum):
    """What a request's session allows on a protected route."""

    PASS = "pass"  # noqa: S105 - not a password; complete (or exempt) and bound to this Exchange session
    NO_SESSION = "no_session"              # no gateway session: Exchange's password comes first
    PENDING = "pending"                    # password accepted, second factor not yet passed
    IDLE = "idle"                          # ended: no user activity for the idle timeout
    ABSOLUTE = "absolute"                  # ended: the absolute timeout since the second factor
    BINDING_MISMATCH = "binding_mismatch"  # passed, but the request carries another Exchange session

    @property
    def ends_session(self) -> bool:
        return self in (Access.IDLE, Access.ABSOLUTE, Access.BINDING_MISMATCH)


def decide_access(record: SessionRecord | None, *, now: float, timeouts: SessionTimeouts,
                  binding: str | None) -> Access:
    """`binding` is `request_binding(Cookie)`: the hash of the cadata + cadataKey the request carries."""
    if record is None:
        return Access.NO_SESSION
    if timeouts.expired(record, now):
        return expiry_reason(record, now, timeouts)
    if not record.passed:
        # Pending, or a state this version does not know: never a pass.
        return Access.PENDING if record.state is SessionState.PENDING else Access.NO_SESSION
    if record.cadata_hash is None or binding is None or not hmac.compare_digest(record.cadata_hash, binding):
        return Access.BINDING_MISMATCH
    return Access.PASS


def expiry_reason(record: SessionRecord, now: float, timeouts: SessionTimeouts) -> Access:
    """Which of the two timeouts ended an expired session (the absolute one when both did)."""
    started = record.mfa_at if record.mfa_at is not None else record.created_at
    if started + timeouts.absolute <= now:
        return Access.ABSOLUTE
    return Access.IDLE


def touch_interval(idle_timeout: float) -> float:
    """How stale `last_activity` may get before a request writes it: a twentieth of the idle timeout,
    at most a minute. The idle timeout is then exact to within this much, and a busy OWA tab costs
    one store write a minute instead of one per request."""
    return min(idle_timeout / 20, MAX_TOUCH_INTERVAL)


def needs_touch(record: SessionRecord, now: float, interval: float) -> bool:
    return now - record.last_activity >= interval


def logon_redirect(public_url: str, target: str, *, reason: int = LogonReason.NONE) -> str:
    """Location of Exchange's logon page for a refused navigation to `target` (path and query).

    The `url=` parameter is built from GATEWAY_PUBLIC_URL, never from the request's Host, and the
    Location is relative, so nothing the client sent can choose where the browser goes.
    """
    original = public_url.rstrip("/") + target
    return f"{LOGON_PAGE_PATH}?url={quote(original, safe='')}&reason={reason}"


def normalise_code(typed: str, length: int) -> str | None:
    """The one-time code in what the user typed or pasted, or None when it is not one.

    White space goes, inside too (`123 456`, a pasted NBSP or thin space); what is left must be
    exactly `length` ASCII digits. A code is one string from here on, for Monosign and for the
    single-use claim alike: ` 123456 `, `123 456` and `123456` are the same use of one code, and
    `0123456`, `１２３４５６` or `123456x` are no code at all (never sent to Monosign, which might read
    a number where the gateway reads a new string).
    """
    code = "".join(typed.split())
    if len(code) != length or _DIGITS.fullmatch(code) is None:
        return None
    return code


def new_number_challenge() -> str:
    """Two random digits for number matching ("Enter 42 in the Monofor Identity app"), 00 to 99."""
    return f"{secrets.randbelow(100):02d}"
