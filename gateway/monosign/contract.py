"""The Monosign API contract as data: header names, paths and result codes (docs/monosign-api.md).

The client and the simulator both read these, so they cannot drift apart. Codes 1, 12 and 22 are the
vendor's; the paths and the other codes are ours and can be overridden by settings.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER_APP_ID = "MonoSign-AppId"
HEADER_APP_KEY = "MonoSign-AppKey"

CODE_SUCCESS = 1
CODE_INVALID_APPLICATION_KEY = 12
CODE_USER_NOT_ASSIGNED = 22

PUSH_APPLICATION = "Exchange OWA"


@dataclass(frozen=True, slots=True)
class ApiPaths:
    user_lookup: str = "/api/v1.4/users/by-username"
    push_start: str = "/api/v1.4/mfa/push"
    push_status: str = "/api/v1.4/mfa/push/{request_id}"
    verify: str = "/api/v1.4/mfa/verify"


@dataclass(frozen=True, slots=True)
class ResultCodes:
    """The `Code` values of the envelope; the [ours] ones are settings."""

    user_not_found: int = 21
    invalid_code: int = 31
    locked: int = 32
    push_unknown: int = 33
    success: int = CODE_SUCCESS
    invalid_application_key: int = CODE_INVALID_APPLICATION_KEY
    user_not_assigned: int = CODE_USER_NOT_ASSIGNED


