"""Exchange's expired-password page: which requests are it, how its form is read, whose name it takes."""

from __future__ import annotations

import pytest

from gateway.policy.login_form import LoginFormRefused, RefusalReason, parse_password_change_form
from gateway.policy.paths import canonicalize
from gateway.policy.users import parse_username
from gateway.profiles.exchange.identity import SessionUserCheck, named_form, names_exempt_user
from gateway.profiles.exchange.password_change import is_password_change

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(("method", "target", "expected"), [
    ("POST", "/owa/auth/expiredpassword.aspx", True),
    ("POST", "/OWA/AUTH/ExpiredPassword.ASPX", True),
    ("POST", "/owa/auth/expiredpassword.aspx?url=x", True),
    ("POST", "/owa/auth/expiredpassword.aspx/x", True),       # path info: the same page to IIS
    ("POST", "/owa/auth/expiredpassword.aspx;x", True),
    ("POST", "/owa/auth/expiredpassword%2Easpx", True),       # an unreserved escape, decoded when canonical
    ("POST", "/owa/auth/expiredpasswor%64.aspx", True),
    ("POST", "/ecp/auth/expiredpassword.aspx", True),
    ("POST", "/owa/x/expiredpassword.aspx", True),
    ("PUT", "/owa/auth/expiredpassword.aspx", True),           # ASP.NET reads a form from any method
    ("PATCH", "/owa/auth/expiredpassword.aspx", True),
    ("post", "/owa/auth/expiredpassword.aspx", True),
    ("GET", "/owa/auth/expiredpassword.aspx", False),
    ("HEAD", "/owa/auth/expiredpassword.aspx", False),
    ("POST", "/owa/auth/expiredpassword.aspxx", False),
    ("POST", "/owa/auth/logon.aspx", False),
    ("POST", "/owa/service.svc?action=x&expiredpassword.aspx", False),
])
def test_is_password_change(method: str, target: str, expected: bool) -> None:
    assert is_password_change(method, canonicalize(target)) is expected


@pytest.mark.parametrize(("body", "query", "username"), [
    ("username=alice&oldPwd=a&newPwd=b&conf=b", "", "alice"),
    ("USERNAME=alice&OLDPWD=a", "", "alice"),
    ("user%6Eame=CORP%5Calice", "", "CORP\\alice"),
    ("username=alice%40corp.example&destination=x&x=1&x=2", "url=https%3A%2F%2Fmail%2Fowa%2F", "alice@corp.example"),
    ("username=a+b", "", "a b"),
])
def test_password_change_form(body: str, query: str, username: str) -> None:
    assert parse_password_change_form(FORM, body.encode(), query) == username


@pytest.mark.parametrize(("content_type", "body", "query", "reason"), [
    (FORM, "username=bob&username=alice", "", RefusalReason.DUPLICATE_FIELD),
    (FORM, "username=bob&USERNAME=alice", "", RefusalReason.DUPLICATE_FIELD),
    (FORM, "username=bob&u%C5%BFername=alice", "", RefusalReason.DUPLICATE_FIELD),  # long s upper-cases to S
    (FORM, "username=bob&oldPwd=a&oldpwd=b", "", RefusalReason.DUPLICATE_FIELD),
    (FORM, "username=bob&conf=a&CONF=b", "", RefusalReason.DUPLICATE_FIELD),
    (FORM, "username=bob", "username=alice", RefusalReason.CREDENTIALS_IN_QUERY),
    (FORM, "username=bob", "oldPwd=x", RefusalReason.CREDENTIALS_IN_QUERY),
    (FORM, "username=bob", "%u006EewPwd=x", RefusalReason.CREDENTIALS_IN_QUERY),
    (FORM, "username=%u0061lice", "", RefusalReason.MALFORMED),
    (FORM, "username=ali%ce", "", RefusalReason.MALFORMED),
    (FORM, "username", "", RefusalReason.MALFORMED),
    (FORM, "username=%FFalice", "", RefusalReason.MALFORMED),
    (FORM, "oldPwd=a&newPwd=b", "", RefusalReason.MISSING_USERNAME),
    (FORM, "username=+", "", RefusalReason.MISSING_USERNAME),
    (FORM, "username=ali%E2%80%8Bce", "", RefusalReason.BAD_USERNAME),
    ("multipart/form-data; boundary=x", "username=alice", "", RefusalReason.CONTENT_TYPE),
    (None, "username=alice", "", RefusalReason.CONTENT_TYPE),
    (FORM + "; charset=utf-16", "username=alice", "", RefusalReason.CONTENT_TYPE),
    (FORM, "username=" + "a" * 20000, "", RefusalReason.TOO_LARGE),
])
def test_password_change_form_refused(content_type: str | None, body: str, query: str,
                                      reason: RefusalReason) -> None:
    with pytest.raises(LoginFormRefused) as refused:
        parse_password_change_form(content_type, body.encode(), query)
    assert refused.value.reason is reason


# The forms a session keeps for a user who signed in as `CORP\erin` (an exception: no Monosign user).
ERIN = sorted(parse_username("CORP\\erin").forms)


@pytest.mark.parametrize(("typed", "expected"), [
    ("CORP\\erin", SessionUserCheck.SAME),
    ("corp\\ERIN", SessionUserCheck.SAME),
    ("corp/erin", SessionUserCheck.SAME),
    (" CORP\\erin ", SessionUserCheck.SAME),
    ("erin", SessionUserCheck.SAME),
    ("OTHER\\erin", SessionUserCheck.OTHER_USER),    # another domain's erin
    ("erin@other.example", SessionUserCheck.OTHER_USER),
    ("erin@corp.example", SessionUserCheck.OTHER_USER),  # not a form she signed in with: not guessed
    ("alice", SessionUserCheck.OTHER_USER),
    ("CORP\\alice", SessionUserCheck.OTHER_USER),
    ("er\u0131n", SessionUserCheck.UNREADABLE),       # dotless i: Exchange's best fit reads `erin`
    ("\uff45rin", SessionUserCheck.UNREADABLE),       # fullwidth e
    ("erin\u00a0", SessionUserCheck.UNREADABLE),
    ("CORP\\\\erin", SessionUserCheck.UNREADABLE),
    ("", SessionUserCheck.UNREADABLE),
])
def test_names_exempt_user(typed: str, expected: SessionUserCheck) -> None:
    assert names_exempt_user(typed, ERIN) is expected


@pytest.mark.parametrize(("typed", "form"), [
    ("alice", "alice"), ("ALICE", "alice"), ("CORP\\Alice", "corp\\alice"), ("corp/alice", "corp\\alice"),
    ("Alice@Corp.Example", "alice@corp.example"),
])
def test_named_form(typed: str, form: str) -> None:
    assert named_form(parse_username(typed)) == form
