"""Typed results of the Monosign calls."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MfaMethod(StrEnum):
    PUSH = "Push"
    TOTP = "Totp"


class PushStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self is not PushStatus.PENDING


@dataclass(frozen=True, slots=True)
class MonosignUser:
    id: str
    user_name: str
    email: str | None
    display_name: str | None
    source: str | None
    # As Monosign reports them; names the gateway does not know are kept, and ignored by has_*.
    mfa_methods: tuple[str, ...]

    @property
    def has_push(self) -> bool:
        return any(method.lower() == MfaMethod.PUSH.lower() for method in self.mfa_methods)

    @property
    def has_totp(self) -> bool:
        return any(method.lower() == MfaMethod.TOTP.lower() for method in self.mfa_methods)


@dataclass(frozen=True, slots=True)
class PushRequest:
    request_id: str
    expires_in: float
