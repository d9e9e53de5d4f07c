"""`MfaConfig`: what the second-factor flow and the sign-ins built on it need of the settings.

`gateway.assembly.mfa_config` builds it from `Settings`; the flow and its handlers read nothing else
of the settings, so a test (or another profile) can give them exactly the values it means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.mfa.lockout import LockoutPolicy
from gateway.settings import FailMode

__all__ = ["MfaConfig"]


@dataclass(frozen=True, slots=True)
class MfaConfig:
    public_url: str  # GATEWAY_PUBLIC_URL: the Exchange site's origin and the assertion's issuer
    idle_timeout: float  # GATEWAY_SESSION_IDLE_TIMEOUT
    absolute_timeout: float  # GATEWAY_SESSION_ABSOLUTE_TIMEOUT
    lockout: LockoutPolicy  # GATEWAY_MFA_MAX_FAILURES*, GATEWAY_MFA_NETWORK_PREFIX_*
    lockout_seconds: float  # GATEWAY_MFA_LOCKOUT_SECONDS
    max_pushes: int  # GATEWAY_MFA_MAX_PUSHES
    fail_mode: FailMode  # GATEWAY_FAIL_MODE
    form_timeout: float  # GATEWAY_HEADER_TIMEOUT: a small form gets as long as a request head
    login_max_body: int  # GATEWAY_LOGIN_MAX_BODY
    code_length: int  # GATEWAY_MFA_CODE_LENGTH
    number_matching: bool  # GATEWAY_MFA_NUMBER_MATCHING
    monosign_timeout: float  # MONOSIGN_TIMEOUT
    store_timeout: float  # GATEWAY_REDIS_TIMEOUT
    user_exceptions: Sequence[str]  # MONOSIGN_USER_EXCEPTIONS
