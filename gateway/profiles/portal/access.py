"""What a session opens on a portal site, and the identity it hands upstream (pure, no I/O).

A portal site's rules ask for `one_factor` (the first factor passed: a pending session will do) or
`two_factor` (the second factor passed too: complete, or exempt). A session counts only on the site
whose sign-in made it, or on the other sites of that site's session group: a session of another
site, Exchange's ("") among them, is no session here, and is left alone (it is that site's).

Timeouts are Exchange's guard's: idle and absolute (`SessionTimeouts`), and a pending session lives
at most `pending_max` seconds after its creation.
"""

from __future__ import annotations

from enum import StrEnum

from gateway.config.model import Action
from gateway.policy.identity_headers import IdentityClaims
from gateway.policy.rules import Identity
from gateway.policy.users import parse_username
from gateway.sessions.base import SessionRecord, SessionState
from gateway.sessions.lifetime import SessionTimeouts

__all__ = ["PROVING_FIRST_FACTORS", "PortalAccess", "amr", "claims", "identity", "opens", "portal_access"]

# First factors whose pending session is worth `one_factor`: a password was checked.
PROVING_FIRST_FACTORS = frozenset({"ldap", "file"})


class PortalAccess(StrEnum):
    PASSED = "passed"  # second factor passed (or exempt)
    FIRST_FACTOR = "first_factor"  # pending: the first factor passed, the second not yet
    NO_SESSION = "no_session"  # none, unknown, or of a state this version does not know
    OTHER_SITE = "other_site"  # a session of another site: no session here
    IDLE = "idle"  # ended: no activity for the idle timeout
    ABSOLUTE = "absolute"  # ended: the absolute timeout (or a pending session's own limit)

    @property
    def ends_session(self) -> bool:
        return self in (PortalAccess.IDLE, PortalAccess.ABSOLUTE)


def portal_access(record: SessionRecord | None, *, sites: frozenset[str], now: float, timeouts: SessionTimeouts,
                  pending_max: float) -> PortalAccess:
    """`sites`: the names of the sites whose sessions count here (the site's own, and its group's)."""
    if record is None:
        return PortalAccess.NO_SESSION
    if record.site not in sites:
        return PortalAccess.OTHER_SITE
    remaining = timeouts.remaining(record, now)
    if remaining <= 0:
        started = record.mfa_at if record.mfa_at is not None else record.created_at
        return PortalAccess.ABSOLUTE if started + timeouts.absolute <= now else PortalAccess.IDLE
    if record.passed:
        return PortalAccess.PASSED
    if record.state is SessionState.PENDING:
        if record.created_at + pending_max <= now:
            return PortalAccess.ABSOLUTE
        # Only a first factor that proved something: `monosign`'s is a typed name, and a session
        # waiting for its push has proven nothing yet.
        return PortalAccess.FIRST_FACTOR if record.first_factor in PROVING_FIRST_FACTORS else PortalAccess.NO_SESSION
    return PortalAccess.NO_SESSION


def opens(action: Action | None, access: PortalAccess) -> bool:
    """Whether a session with `access` may pass a rule with `action` (bypass needs none; deny never)."""
    if action is Action.BYPASS:
        return True
    if action is Action.ONE_FACTOR:
        return access in (PortalAccess.PASSED, PortalAccess.FIRST_FACTOR)
    if action is Action.TWO_FACTOR:
        return access is PortalAccess.PASSED
    return False


def user_name(record: SessionRecord) -> str:
    """The name the upstream gets: Monosign's UserName (one spelling per account, whatever was typed),
    else the name the first factor accepted."""
    return record.user_name or record.typed_username


def identity(record: SessionRecord) -> Identity | None:
    """The session's user for rules with `users:` or `groups:` (None when the name does not parse:
    such a user is in no list, and only rules without a subject can admit them)."""
    try:
        name = parse_username(user_name(record))
    except ValueError:
        return None
    return Identity(name, frozenset(group.lower() for group in record.groups))


def claims(record: SessionRecord) -> IdentityClaims:
    return IdentityClaims(user=user_name(record), email=record.email or None, name=record.display_name or None,
                          groups=tuple(record.groups))


# RFC 8176 values. A password first factor is `pwd`; Monosign alone (no password) adds none of its own.
_FIRST_FACTOR_AMR = {"exchange": "pwd", "ldap": "pwd", "file": "pwd"}
# The push approves on the user's enrolled device, proving its key (`swk`); a code is `otp`. Fail-open
# and user exceptions passed no second factor, so they add nothing.
_SECOND_FACTOR_AMR = {"totp": "otp", "push": "swk"}


def amr(record: SessionRecord) -> list[str]:
    """The factors the session used (the assertion's `amr`), with `mfa` when there were two."""
    methods = [method for method in (_FIRST_FACTOR_AMR.get(record.first_factor),) if method]
    if record.passed:
        second = _SECOND_FACTOR_AMR.get(record.second_factor)
        if second is not None:
            methods.append(second)
    if len(methods) > 1:
        methods.append("mfa")
    return methods
