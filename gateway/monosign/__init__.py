"""The Monosign API client (see docs/monosign-api.md).

    client = gateway.assembly.monosign_client(settings)  # one per process
    user = await client.lookup_user("CORP\\alice")       # MonosignUser
    push = await client.start_push(user.id, client_ip, parse_user_agent(user_agent))
    status = await client.push_status(push.request_id)   # PushStatus
    await client.verify_code(user.id, code)              # raises InvalidCode, UserLocked, ...
    await client.aclose()

Errors: gateway.monosign.errors (MonosignError and its subclasses). Metrics:
gateway.monosign.metrics.register_monosign_metrics(client, registry).
"""

from gateway.monosign.breaker import BreakerState, CircuitBreaker
from gateway.monosign.client import MonosignClient
from gateway.monosign.errors import (
    CircuitOpen,
    ErrorPage,
    InputRefused,
    InvalidApplicationKey,
    InvalidCode,
    MonosignError,
    MonosignUnreachable,
    PushUnknown,
    UnexpectedResponse,
    UserLocked,
    UserNotAssigned,
    UserNotFound,
)
from gateway.monosign.models import MfaMethod, MonosignUser, PushRequest, PushStatus

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "ErrorPage",
    "InputRefused",
    "InvalidApplicationKey",
    "InvalidCode",
    "MfaMethod",
    "MonosignClient",
    "MonosignError",
    "MonosignUnreachable",
    "MonosignUser",
    "PushRequest",
    "PushStatus",
    "PushUnknown",
    "UnexpectedResponse",
    "UserLocked",
    "UserNotAssigned",
    "UserNotFound",
]
