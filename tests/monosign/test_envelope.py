"""The envelope decisions, table-tested: what is an envelope, what each code means, what Data must hold."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.monosign.contract import ResultCodes
from gateway.monosign.envelope import (
    Envelope,
    error_for,
    parse_envelope,
    push_request_from_data,
    push_status_from_data,
    user_from_data,
)
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
from gateway.monosign.models import PushStatus

JSON = "application/json; charset=utf-8"


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def envelope(success: bool, code: int, data: Any = None, http_status: int = 200, **extra: Any) -> Envelope:
    return parse_envelope(http_status, JSON, body(Success=success, Code=code, Data=data, **extra))


@pytest.mark.parametrize(
    ("status", "content_type", "raw", "expected", "why"),
    [
        (200, "text/html", b"<html>proxy login</html>", UnexpectedResponse, "content type 'text/html'"),
        (200, None, b'{"Success": true, "Code": 1}', UnexpectedResponse, "content type 'none'"),
        (200, JSON, b'{"Success": true, "Co', UnexpectedResponse, "not valid JSON"),
        (200, JSON, b"\xff\xfe", UnexpectedResponse, "not valid JSON"),
        (200, JSON, b"[1, 2]", UnexpectedResponse, "not a JSON object"),
        (200, JSON, b'{"Code": 1, "Data": {}}', UnexpectedResponse, "no boolean 'Success'"),
        (200, JSON, b'{"Success": "true", "Code": 1}', UnexpectedResponse, "no boolean 'Success'"),
        (200, JSON, b'{"Success": true}', UnexpectedResponse, "no integer 'Code'"),
        (200, JSON, b'{"Success": true, "Code": true}', UnexpectedResponse, "no integer 'Code'"),
        (403, "text/html", b"<h1>Forbidden</h1>", UnexpectedResponse, "HTTP 403"),
        (502, "text/html", b"<h1>502 Bad Gateway</h1>", ErrorPage, "HTTP 502 without a Monosign envelope"),
        (503, JSON, b"", ErrorPage, "HTTP 503 without a Monosign envelope"),
    ],
)
def test_not_an_envelope(status: int, content_type: str | None, raw: bytes, expected: type[MonosignError],
                         why: str) -> None:
    with pytest.raises(expected) as info:
        parse_envelope(status, content_type, raw)
    assert why in str(info.value)
    assert info.value.http_status == status  # type: ignore[attr-defined]


def test_envelope_is_parsed_whatever_the_status() -> None:
    parsed = parse_envelope(403, "application/json", body(Success=False, Code=22, Message="Permission Denied",
                                                          InternalMessage="This user not assigned to this application.",
                                                          Data=None))
    assert (parsed.http_status, parsed.success, parsed.code, parsed.message) == (403, False, 22, "Permission Denied")
    assert parsed.internal_message == "This user not assigned to this application."
    assert parse_envelope(500, "application/problem+json", body(Success=True, Code=1)).ok


@pytest.mark.parametrize(
    ("success", "code", "expected"),
    [
        (True, 1, None),
        (False, 12, InvalidApplicationKey),
        (False, 21, UserNotFound),
        (False, 22, UserNotAssigned),
        (False, 31, InvalidCode),
        (False, 32, UserLocked),
        (False, 33, PushUnknown),
        (False, 99, UnexpectedResponse),
        (False, 1, UnexpectedResponse),  # "no" with the success code: not the contract
        (True, 22, UnexpectedResponse),  # "yes" with a failure code: never a yes
    ],
)
def test_codes(success: bool, code: int, expected: type[MonosignError] | None) -> None:
    error = error_for(envelope(success, code, message="m"), ResultCodes())
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
        assert error is not None
        assert error.code == code


def test_ours_codes_follow_the_settings() -> None:
    codes = ResultCodes(user_not_found=121, invalid_code=131, locked=132, push_unknown=133)
    assert isinstance(error_for(envelope(False, 131), codes), InvalidCode)
    assert isinstance(error_for(envelope(False, 121), codes), UserNotFound)
    assert isinstance(error_for(envelope(False, 31), codes), UnexpectedResponse)
    # The vendor's codes are not settings.
    assert isinstance(error_for(envelope(False, 12), codes), InvalidApplicationKey)


@pytest.mark.parametrize(
    ("data", "header", "retry_after"),
    [({"RetryAfterSeconds": 120}, None, 120.0), (None, "30", 30.0), ({"RetryAfterSeconds": "x"}, "7", 7.0),
     (None, "Wed, 21 Oct 2015 07:28:00 GMT", None), (None, None, None), ({"RetryAfterSeconds": -5}, None, None)],
)
def test_locked_retry_after(data: Any, header: str | None, retry_after: float | None) -> None:
    parsed = parse_envelope(429, JSON, body(Success=False, Code=32, Data=data), retry_after_header=header)
    error = error_for(parsed, ResultCodes())
    assert isinstance(error, UserLocked)
    assert error.retry_after == retry_after


USER = {"Id": "7f1c", "UserName": "john.smith", "Email": "john.smith@monofor.com", "DisplayName": "John Smith",
        "Source": "monofor-ad", "MfaMethods": ["Push", "Totp"]}


def test_user_from_data() -> None:
    user = user_from_data(envelope(True, 1, USER))
    assert (user.id, user.user_name, user.email, user.source) == ("7f1c", "john.smith", "john.smith@monofor.com",
                                                                  "monofor-ad")
    assert user.has_push
    assert user.has_totp
    optional = user_from_data(envelope(True, 1, {"Id": "1", "UserName": "x", "Email": None, "MfaMethods": ["Totp"]}))
    assert (optional.email, optional.display_name, optional.has_push) == (None, None, False)


@pytest.mark.parametrize(
    "data",
    [None, [], {**USER, "Id": ""}, {k: v for k, v in USER.items() if k != "UserName"},
     {**USER, "MfaMethods": "Push"}, {**USER, "MfaMethods": [1]}, {**USER, "Email": 5}],
)
def test_user_data_missing_fields(data: Any) -> None:
    with pytest.raises(UnexpectedResponse, match="Success without"):
        user_from_data(envelope(True, 1, data))


def test_push_readers() -> None:
    push = push_request_from_data(envelope(True, 1, {"RequestId": "b2e0", "ExpiresInSeconds": 60}))
    assert (push.request_id, push.expires_in) == ("b2e0", 60.0)
    for status in ("Pending", "Approved", "Rejected", "Expired"):
        assert push_status_from_data(envelope(True, 1, {"Status": status})) is PushStatus(status.lower())


@pytest.mark.parametrize(
    "data", [{"RequestId": "b2e0"}, {"RequestId": "b2e0", "ExpiresInSeconds": 0},
             {"RequestId": "b2e0", "ExpiresInSeconds": True}, {"ExpiresInSeconds": 60}],
)
def test_push_request_missing_fields(data: Any) -> None:
    with pytest.raises(UnexpectedResponse):
        push_request_from_data(envelope(True, 1, data))


@pytest.mark.parametrize("data", [{}, {"Status": "Maybe"}, {"Status": 1}, None])
def test_push_status_missing_or_unknown(data: Any) -> None:
    with pytest.raises(UnexpectedResponse):
        push_status_from_data(envelope(True, 1, data))
