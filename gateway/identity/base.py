"""What every first factor answers: an Identity, or one Failure out of a small closed set.

Why a closed set: the sign-in page shows one message for "no such user" and "wrong password", so a
backend must never let its caller tell them apart. `FailureKind` therefore has no "unknown user";
the reason an operator needs (user not found, wrong password, AD sub-code 775, ...) travels in
`Failure.reason`, a short fixed phrase for the audit log that never contains the password.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Failure", "FailureKind", "FirstFactor", "Identity", "Outcome"]


@dataclass(frozen=True, slots=True)
class Identity:
    """A user whose first factor passed.

    `username` is the canonical name the directory (or the users file) holds, not what was typed;
    `directory_id` is the directory's handle on the account (an LDAP DN, the users file's entry name).
    """

    username: str
    display_name: str | None
    email: str | None
    groups: tuple[str, ...]
    directory_id: str | None


class FailureKind(enum.Enum):
    """Why the first factor failed, as much as a sign-in page may know.

    BAD_CREDENTIALS: unknown user, wrong or empty password, a name that does not validate, an account
    the directory refuses without saying whether the password was right (AD's lock-out).
    ACCOUNT_DISABLED: the password was right but the account is disabled or locked (only reported
    after the password was proven, so it does not reveal that a name exists to someone guessing).
    DIRECTORY_UNREACHABLE: the directory did not answer (connect, TLS handshake refused, time-out).
    DIRECTORY_MISCONFIGURED: the directory answered, but the gateway's settings do not work with it
    (service account refused, certificate not trusted, a filter that matches several entries).
    """

    BAD_CREDENTIALS = "bad_credentials"
    ACCOUNT_DISABLED = "account_disabled"
    DIRECTORY_UNREACHABLE = "directory_unreachable"
    DIRECTORY_MISCONFIGURED = "directory_misconfigured"


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed first factor. `reason` is for the audit log and the operator, never for the page."""

    kind: FailureKind
    reason: str


Outcome = Identity | Failure


@runtime_checkable
class FirstFactor(Protocol):
    """One first-factor backend (`file`, `ldap`, `monosign`)."""

    async def authenticate(self, username: str, password: str) -> Outcome:
        """Check the typed name and password. Never raises for a wrong input or a directory fault:
        every failure is a `Failure`. Takes about the same time whether or not the user exists."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...
