"""Pure decisions on Monosign's answers: is it the envelope, what does it mean, what are the Data.

No I/O here: `parse_envelope` turns status, content type and body into an `Envelope` (or raises),
`error_for` maps a failed envelope to the error tree, and the `*_from_data` functions read `Data`.
A body that is not the envelope is never a "yes".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from gateway.monosign.contract import CODE_SUCCESS, ResultCodes
from gateway.monosign.errors import (
    ErrorPage,
    InvalidApplicationKey,
    InvalidCode,
    MonosignError,
    PushUnknown,
    UnexpectedResponse,
    UserLocked,
    UserNotAssigned,
    UserNotFound,
)
from gateway.monosign.models import MonosignUser, PushRequest, PushStatus


@dataclass(frozen=True, slots=True)
class Envelope:
    http_status: int
    success: bool
    code: int
    message: str | None
    internal_message: str | None
    data: Any
    retry_after_header: str | None = None

    @property
    def ok(self) -> bool:
        return self.success and self.code == CODE_SUCCESS


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) else None


def parse_envelope(http_status: int, content_type: str | None, body: bytes,
                   retry_after_header: str | None = None) -> Envelope:
    """The envelope, or an error saying why not.

    A 5xx without an envelope is an error page (a proxy's, or Monosign failing on this request);
    any other non-envelope body is an unexpected response. Both are HTTP answers: they fail closed
    and never count as "unreachable" (gateway.monosign.errors).
    """
    def not_envelope(why: str) -> MonosignError:
        if http_status >= 500:
            return ErrorPage(f"HTTP {http_status} without a Monosign envelope ({why})", http_status=http_status)
        return UnexpectedResponse(f"HTTP {http_status}: {why}", http_status=http_status)

    if not _is_json(content_type):
        shown = (content_type or "none").split(";", 1)[0].strip()[:60]
        raise not_envelope(f"content type {shown!r} is not application/json")
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise not_envelope("the body is not valid JSON") from None
    if not isinstance(decoded, dict):
        raise not_envelope("the body is not a JSON object")
    success = decoded.get("Success")
    code = decoded.get("Code")
    if not isinstance(success, bool):
        raise not_envelope("no boolean 'Success' in the body")
    if not isinstance(code, int) or isinstance(code, bool):
        raise not_envelope("no integer 'Code' in the body")
    return Envelope(
        http_status=http_status,
        success=success,
        code=code,
        message=_optional_text(decoded, "Message"),
        internal_message=_optional_text(decoded, "InternalMessage"),
        data=decoded.get("Data"),
        retry_after_header=retry_after_header,
    )


def _retry_after(envelope: Envelope) -> float | None:
    """Seconds until a locked user may retry: `Data.RetryAfterSeconds`, else the Retry-After header."""
    candidates: list[object] = []
    if isinstance(envelope.data, dict):
        candidates.append(envelope.data.get("RetryAfterSeconds"))
    candidates.append(envelope.retry_after_header)
    for value in candidates:
        try:
            seconds = float(value) if isinstance(value, int | float | str) and not isinstance(value, bool) else None
        except ValueError:
            seconds = None
        if seconds is not None and math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def error_for(envelope: Envelope, codes: ResultCodes) -> MonosignError | None:
    """None when the envelope says success; otherwise the error it stands for."""
    if envelope.ok:
        return None
    message, internal = envelope.message, envelope.internal_message
    described = f"Code {envelope.code}: {message or internal or 'no message'}"
    if envelope.success:
        # "Success": true with a failure code is not something to act on.
        return UnexpectedResponse(f"Success true with {described}", http_status=envelope.http_status,
                                  code=envelope.code, message=message, internal_message=internal)
    error: MonosignError
    if envelope.code == codes.locked:
        error = UserLocked(described, retry_after=_retry_after(envelope), message=message, internal_message=internal)
    else:
        by_code: dict[int, type[MonosignError]] = {
            codes.invalid_application_key: InvalidApplicationKey,
            codes.user_not_assigned: UserNotAssigned,
            codes.user_not_found: UserNotFound,
            codes.invalid_code: InvalidCode,
            codes.push_unknown: PushUnknown,
        }
        kind = by_code.get(envelope.code)
        if kind is None:
            # Also "Success": false with code 1: not the contract.
            return UnexpectedResponse(f"unknown failure {described}", http_status=envelope.http_status,
                                      code=envelope.code, message=message, internal_message=internal)
        error = kind(described, message=message, internal_message=internal)
    error.code = envelope.code
    return error


def _missing(envelope: Envelope, what: str) -> UnexpectedResponse:
    return UnexpectedResponse(f"Success without {what} in Data", http_status=envelope.http_status,
                              code=envelope.code)


def _data(envelope: Envelope) -> dict[str, Any]:
    if not isinstance(envelope.data, dict):
        raise _missing(envelope, "an object")
    return envelope.data


def _text(envelope: Envelope, key: str) -> str:
    value = _data(envelope).get(key)
    if not isinstance(value, str) or not value:
        raise _missing(envelope, repr(key))
    return value


def _optional(envelope: Envelope, key: str) -> str | None:
    value = _data(envelope).get(key)
    if value is not None and not isinstance(value, str):
        raise _missing(envelope, f"a text {key!r}")
    return value or None


def user_from_data(envelope: Envelope) -> MonosignUser:
    methods = _data(envelope).get("MfaMethods")
    if not isinstance(methods, list) or not all(isinstance(method, str) for method in methods):
        raise _missing(envelope, "a list 'MfaMethods'")
    return MonosignUser(
        id=_text(envelope, "Id"),
        user_name=_text(envelope, "UserName"),
        email=_optional(envelope, "Email"),
        display_name=_optional(envelope, "DisplayName"),
        source=_optional(envelope, "Source"),
        mfa_methods=tuple(methods),
    )


def push_request_from_data(envelope: Envelope) -> PushRequest:
    expires = _data(envelope).get("ExpiresInSeconds")
    if not isinstance(expires, int | float) or isinstance(expires, bool) or not 0 < expires < math.inf:
        raise _missing(envelope, "a positive 'ExpiresInSeconds'")
    return PushRequest(request_id=_text(envelope, "RequestId"), expires_in=float(expires))


def push_status_from_data(envelope: Envelope) -> PushStatus:
    status = _text(envelope, "Status")
    try:
        return PushStatus(status.lower())
    except ValueError:
        raise _missing(envelope, "a known 'Status'") from None
