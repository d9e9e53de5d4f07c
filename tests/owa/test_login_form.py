"""The login form parser: what Exchange would read, or a refusal; never the password."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policy.login_form import (
    MAX_LOGIN_BODY,
    LoginForm,
    LoginFormRefused,
    RefusalReason,
    aspnet_key,
    is_form_content_type,
    parse_login_form,
)

FORM = "application/x-www-form-urlencoded"
# The body Exchange 2016's logon.aspx posts (field order as on the page), password "S3cret+pa%ss".
EXCHANGE_BODY = (
    b"destination=https%3A%2F%2Fmail.contoso.com%2Fowa%2F&flags=4&forcedownlevel=0"
    b"&username=CONTOSO%5Calice&password=S3cret%2Bpa%25ss&passwordText=&isUtf8=1"
)


def test_exchange_logon_page_body() -> None:
    form = parse_login_form(FORM, EXCHANGE_BODY, "")
    assert form == LoginForm(username="CONTOSO\\alice", destination="https://mail.contoso.com/owa/", flags=4)


def test_password_is_never_kept_or_returned() -> None:
    form = parse_login_form(FORM, EXCHANGE_BODY, "")
    assert "S3cret" not in repr(form)
    assert not hasattr(form, "password")


@pytest.mark.parametrize(
    ("body", "username"),
    [
        (b"username=alice%40contoso.com&password=x", "alice@contoso.com"),
        # ASP.NET: "+" is a space, "%2B" a literal plus.
        (b"username=first+last&password=x", "first last"),
        (b"username=a%2Bb&password=x", "a+b"),
        (b"username=a%20b&password=x", "a b"),
        # UTF-8, percent-encoded as browsers send it.
        (b"username=%C3%A7a%C4%9Flar&password=x", "çağlar"),
        # Names are decoded and compared case-insensitively, like ASP.NET's form collection.
        (b"user%6Eame=bob&password=x", "bob"),
        (b"UserName=bob&password=x", "bob"),
        ("u\u017fername=bob&password=x".encode().replace("\u017f".encode(), b"%C5%BF"), "bob"),
        # The first "=" splits name and value; the rest belongs to the value.
        (b"username=a=b&password=x", "a=b"),
        # Empty pieces (a trailing or doubled "&") are harmless.
        (b"username=bob&&password=x&", "bob"),
        # Spaces around the name are kept as they are typed (normalising is the user policy's job).
        (b"username=+bob+&password=x", " bob "),
    ],
)
def test_username_decoding_follows_aspnet(body: bytes, username: str) -> None:
    assert parse_login_form(FORM, body, "").username == username


def test_a_field_that_is_not_username_does_not_count_as_one() -> None:
    # "paßword" is not "password" to ASP.NET (per-character upper-casing), nor "username " with a space.
    form = parse_login_form(FORM, b"username=bob&pa%C3%9Fword=1&pa%C3%9Fword=2&username+=x&username+=y", "")
    assert form.username == "bob"


@pytest.mark.parametrize(
    ("content_type", "body", "query", "reason"),
    [
        (None, b"username=bob", "", RefusalReason.CONTENT_TYPE),
        ("multipart/form-data; boundary=x", b"--x\r\n", "", RefusalReason.CONTENT_TYPE),
        ("application/json", b'{"username":"bob"}', "", RefusalReason.CONTENT_TYPE),
        ("text/plain", b"username=bob", "", RefusalReason.CONTENT_TYPE),
        (f"{FORM}; charset=iso-8859-1", b"username=bob", "", RefusalReason.CONTENT_TYPE),
        (f"{FORM}; boundary=x", b"username=bob", "", RefusalReason.CONTENT_TYPE),
        (FORM, b"username=" + b"a" * MAX_LOGIN_BODY, "", RefusalReason.TOO_LARGE),
        (FORM, b"username=bob&username=eve&password=x", "", RefusalReason.DUPLICATE_FIELD),
        (FORM, b"username=bob&USERNAME=eve", "", RefusalReason.DUPLICATE_FIELD),
        (FORM, b"username=bob&user%6eame=eve", "", RefusalReason.DUPLICATE_FIELD),
        (FORM, b"username=bob&password=x&password=y", "", RefusalReason.DUPLICATE_FIELD),
        (FORM, b"username=bob&destination=/a&destination=/b", "", RefusalReason.DUPLICATE_FIELD),
        (FORM, b"username=bob&flags=4&flags=0", "", RefusalReason.DUPLICATE_FIELD),
        (FORM, b"username=bob&forcedownlevel=0&forcedownlevel=1", "", RefusalReason.DUPLICATE_FIELD),
        (FORM, b"username=bob&passwordText=&passwordText=", "", RefusalReason.DUPLICATE_FIELD),
        (FORM, b"username=bob&isUtf8=1&isutf8=1", "", RefusalReason.DUPLICATE_FIELD),
        (FORM, b"username=bob&password", "", RefusalReason.MALFORMED),
        (FORM, b"username=bob%&password=x", "", RefusalReason.MALFORMED),
        (FORM, b"username=bob%4&password=x", "", RefusalReason.MALFORMED),
        (FORM, b"username=bob%zz&password=x", "", RefusalReason.MALFORMED),
        (FORM, b"username=%u0062ob&password=x", "", RefusalReason.MALFORMED),
        (FORM, b"username=%C3%28&password=x", "", RefusalReason.MALFORMED),  # invalid UTF-8
        (FORM, b"username=%ED%A0%80&password=x", "", RefusalReason.MALFORMED),  # UTF-8 surrogate
        (FORM, "username=çağlar".encode(), "", RefusalReason.MALFORMED),  # raw, not percent-encoded
        (FORM, b"username=bob&password=%FF", "", RefusalReason.MALFORMED),  # bad encoding anywhere
        (FORM, b"password=x&destination=%2Fowa%2F", "", RefusalReason.MISSING_USERNAME),
        (FORM, b"username=&password=x", "", RefusalReason.MISSING_USERNAME),
        (FORM, b"username=+++&password=x", "", RefusalReason.MISSING_USERNAME),
        (FORM, b"username=bob%0A&password=x", "", RefusalReason.BAD_USERNAME),
        (FORM, b"username=bob%00&password=x", "", RefusalReason.BAD_USERNAME),
        (FORM, b"username=bob%09x&password=x", "", RefusalReason.BAD_USERNAME),
        (FORM, b"username=bob%E2%80%8B&password=x", "", RefusalReason.BAD_USERNAME),  # zero-width space
        (FORM, b"username=%E2%80%AEbob&password=x", "", RefusalReason.BAD_USERNAME),  # right-to-left override
        (FORM, b"username=" + b"a" * 257 + b"&password=x", "", RefusalReason.BAD_USERNAME),
        (FORM, b"password=x", "username=bob", RefusalReason.CREDENTIALS_IN_QUERY),
        (FORM, b"username=bob", "password=hunter2", RefusalReason.CREDENTIALS_IN_QUERY),
        (FORM, b"username=bob", "a=1&PassWord=x", RefusalReason.CREDENTIALS_IN_QUERY),
        (FORM, b"username=bob", "pass%77ord=x", RefusalReason.CREDENTIALS_IN_QUERY),
        (FORM, b"username=bob", "%u0070assword=x", RefusalReason.CREDENTIALS_IN_QUERY),
        (FORM, b"username=bob", "passwordText", RefusalReason.CREDENTIALS_IN_QUERY),
    ],
)
def test_refusals(content_type: str | None, body: bytes, query: str, reason: RefusalReason) -> None:
    with pytest.raises(LoginFormRefused) as info:
        parse_login_form(content_type, body, query)
    assert info.value.reason is reason


def test_refusal_never_carries_a_value() -> None:
    for body in (b"username=bob&password=hunter2&password=hunter3", b"username=bob&password=hunter2%FF"):
        with pytest.raises(LoginFormRefused) as info:
            parse_login_form(FORM, body, "")
        assert "hunter" not in str(info.value)
        assert "hunter" not in repr(info.value.args)
        assert info.value.__cause__ is None
        assert info.value.__context__ is None


@pytest.mark.parametrize(
    ("query"),
    ["", "replaceCurrent=1", "url=https%3a%2f%2fmail.contoso.com%2fowa%2f&reason=2", "usernameHint=x", "%zz=1"],
)
def test_queries_without_credentials_pass(query: str) -> None:
    assert parse_login_form(FORM, b"username=bob&password=x", query).username == "bob"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [(b"4", 4), (b"0", 0), (b"5", 5), (b"", 0), (b"abc", 0), (b"+4", 4), (b"99999999999", 0)],
)
def test_flags_read_as_exchange_does(flags: bytes, expected: int) -> None:
    assert parse_login_form(FORM, b"username=bob&password=x&flags=" + flags, "").flags == expected


def test_destination_missing_is_left_to_exchange() -> None:
    form = parse_login_form(FORM, b"username=bob&password=x", "")
    assert form.destination is None
    assert form.flags == 0


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        (FORM, True),
        ("Application/X-WWW-Form-URLEncoded", True),
        (f"{FORM};charset=UTF-8", True),
        (f'{FORM}; charset="utf-8"', True),
        (f"{FORM}; charset=utf8", True),
        (f"{FORM};", True),
        (f"{FORM}; charset=utf-8; foo=bar", False),
        (f"{FORM}; charset=utf-16", False),
        (f"{FORM}x", False),
        ("", False),
    ],
)
def test_content_type(content_type: str, ok: bool) -> None:
    assert is_form_content_type(content_type) is ok


@pytest.mark.parametrize(
    ("name", "key"), [("username", "USERNAME"), ("u\u017fername", "USERNAME"), ("pa\u00dfword", "PA\u00dfWORD")]
)
def test_aspnet_key(name: str, key: str) -> None:
    assert aspnet_key(name) == key


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Zl", "Zp", "Cs")),
               min_size=1, max_size=64).filter(lambda s: s.strip()))
def test_any_encoded_username_round_trips(username: str) -> None:
    from urllib.parse import urlencode

    body = urlencode({"destination": "https://mail.contoso.com/owa/", "username": username, "password": "p"}).encode()
    assert parse_login_form(FORM, body, "").username == username
