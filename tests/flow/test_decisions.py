"""The flow's pure parts, table-tested: access decisions, activity writes, logon redirects, code format,
the gateway cookie, cookie stripping, CSRF origin checks, Set-Cookie hold-back."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.mfa.csrf import cross_site_problem, origin_of, token_matches
from gateway.mfa.decisions import (
    Access,
    decide_access,
    logon_redirect,
    needs_touch,
    normalise_code,
    touch_interval,
)
from gateway.mfa.session_cookie import (
    GATEWAY_COOKIE_NAMES,
    GATEWAY_COOKIE_PREFIXES,
    ROUTING_HINT_PREFIXES,
    SessionCookie,
    hint_prefixes_to_strip,
    strip_request_cookies,
)
from gateway.policy.owa_responses import binding_hash
from gateway.profiles.exchange.cookie_rules import dropping_gateway_cookies, hold_back_cadata
from gateway.sessions.base import SessionRecord, SessionState
from gateway.sessions.lifetime import SessionTimeouts

NOW = 1_800_000_000.0
TIMEOUTS = SessionTimeouts(idle=1800, absolute=43200)
HELD = ["cadata=AAA; path=/", "cadataKey=BBB; path=/"]
BOUND = binding_hash(HELD)
OTHER = binding_hash(["cadata=ZZZ; path=/", "cadataKey=BBB; path=/"])


def record(state: SessionState, *, created: float = NOW - 60, mfa_at: float | None = NOW - 30,
           last: float = NOW - 10, bound: str | None = BOUND) -> SessionRecord:
    return SessionRecord(state=state, created_at=created, mfa_at=mfa_at, last_activity=last, cadata_hash=bound)


@pytest.mark.parametrize(("session", "binding", "expected"), [
    (None, BOUND, Access.NO_SESSION),
    (record(SessionState.COMPLETE), BOUND, Access.PASS),
    (record(SessionState.EXEMPT), BOUND, Access.PASS),
    (record(SessionState.PENDING, mfa_at=None), BOUND, Access.PENDING),
    (record(SessionState.COMPLETE), OTHER, Access.BINDING_MISMATCH),  # another Exchange login
    (record(SessionState.COMPLETE), None, Access.BINDING_MISMATCH),   # no (or ambiguous) cadata sent
    (record(SessionState.COMPLETE, bound=None), BOUND, Access.BINDING_MISMATCH),
    (record(SessionState.COMPLETE, created=NOW - 4000, mfa_at=NOW - 3900, last=NOW - 1800), BOUND, Access.IDLE),
    (record(SessionState.COMPLETE, created=NOW - 4000, mfa_at=NOW - 3900, last=NOW - 1799), BOUND, Access.PASS),
    (record(SessionState.COMPLETE, created=NOW - 50000, mfa_at=NOW - 43200, last=NOW), BOUND, Access.ABSOLUTE),
    # Both timeouts passed: the absolute one is named.
    (record(SessionState.COMPLETE, created=NOW - 50000, mfa_at=NOW - 43300, last=NOW - 2000), BOUND,
     Access.ABSOLUTE),
    (record(SessionState.PENDING, mfa_at=None, created=NOW - 1900, last=NOW - 1900), BOUND, Access.IDLE),
])
def test_decide_access(session: SessionRecord | None, binding: str | None, expected: Access) -> None:
    assert decide_access(session, now=NOW, timeouts=TIMEOUTS, binding=binding) is expected


def test_only_timeouts_and_mismatches_end_a_session() -> None:
    assert {access for access in Access if access.ends_session} == {Access.IDLE, Access.ABSOLUTE,
                                                                     Access.BINDING_MISMATCH}


@pytest.mark.parametrize(("idle", "interval"), [(1800, 60.0), (600, 30.0), (20, 1.0), (86400, 60.0)])
def test_touch_interval(idle: float, interval: float) -> None:
    assert touch_interval(idle) == interval


def test_needs_touch() -> None:
    assert not needs_touch(record(SessionState.COMPLETE, last=NOW - 59), NOW, 60)
    assert needs_touch(record(SessionState.COMPLETE, last=NOW - 60), NOW, 60)


@pytest.mark.parametrize(("target", "reason", "expected"), [
    ("/owa/", 0, "/owa/auth/logon.aspx?url=https%3A%2F%2Fmail.example.com%2Fowa%2F&reason=0"),
    ("/owa/?ae=Item&id=1", 3,
     "/owa/auth/logon.aspx?url=https%3A%2F%2Fmail.example.com%2Fowa%2F%3Fae%3DItem%26id%3D1&reason=3"),
    ("/ecp/", 0, "/owa/auth/logon.aspx?url=https%3A%2F%2Fmail.example.com%2Fecp%2F&reason=0"),
])
def test_logon_redirect_is_relative_and_built_from_the_public_url(target: str, reason: int, expected: str) -> None:
    assert logon_redirect("https://mail.example.com", target, reason=reason) == expected


@pytest.mark.parametrize(("typed", "length", "code"), [
    ("123456", 6, "123456"),
    (" 123456 ", 6, "123456"),
    ("123 456", 6, "123456"),
    ("12 34 56", 6, "123456"),
    ("\t123456\n", 6, "123456"),
    ("123\xa0456", 6, "123456"),      # a pasted no-break space
    ("123\u2009456", 6, "123456"),    # a thin space
    ("12345678", 8, "12345678"),
    ("1234 5678", 8, "12345678"),
    ("0123456", 6, None),             # not a longer spelling of 123456
    ("1234567", 6, None),
    ("12345", 6, None),
    ("123456", 8, None),
    ("00123456", 6, None),
    ("123456a", 6, None),
    ("12345a", 6, None),
    ("+123456", 6, None),
    ("-123456", 6, None),
    ("123-456", 6, None),
    ("123.456", 6, None),
    ("\uff11\uff12\uff13\uff14\uff15\uff16", 6, None),  # fullwidth digits
    ("\u0661\u0662\u0663\u0664\u0665\u0666", 6, None),  # Arabic-Indic digits: str.isdigit() says yes
    ("123\u200b456", 6, None),        # a zero-width space is no white space
    ("", 6, None),
    ("   ", 6, None),
])
def test_normalise_code(typed: str, length: int, code: str | None) -> None:
    assert normalise_code(typed, length) == code


@pytest.mark.parametrize(("secure", "set_cookie", "expired"), [
    (True, "__Host-msgw=T; Path=/; Secure; HttpOnly; SameSite=Lax",
     "__Host-msgw=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Lax"),
    (False, "msgw=T; Path=/; HttpOnly; SameSite=Lax",
     "msgw=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax"),
])
def test_gateway_cookie_attributes(secure: bool, set_cookie: str, expired: str) -> None:
    cookie = SessionCookie(secure=secure)
    assert cookie.set_header("T") == set_cookie
    assert cookie.expire_header() == expired


@pytest.mark.parametrize(("headers", "expected"), [
    ([], None),
    (["a=1; msgw=T"], "T"),
    (["msgw=T", "b=2; msgw=T"], "T"),          # the same value twice is still one session
    (["msgw=T; msgw=U"], None),                # a planted duplicate: trust neither
    (["MSGW=T"], None),                        # browsers send the exact name
    (["msgw="], None),
    (["xmsgw=T; msgwx=U"], None),
])
def test_reading_the_gateway_cookie(headers: list[str], expected: str | None) -> None:
    assert SessionCookie(secure=False).read(headers) == expected


@pytest.mark.parametrize(("secure", "set_cookie", "expired"), [
    (True, "__Secure-msgw-group-corp=T; Path=/; Domain=example.com; Secure; HttpOnly; SameSite=Lax",
     "__Secure-msgw-group-corp=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Domain=example.com; "
     "Secure; HttpOnly; SameSite=Lax"),
    (False, "msgw-group-corp=T; Path=/; Domain=example.com; HttpOnly; SameSite=Lax",
     "msgw-group-corp=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Domain=example.com; HttpOnly; "
     "SameSite=Lax"),
])
def test_a_session_group_s_cookie_names_its_domain(secure: bool, set_cookie: str, expired: str) -> None:
    cookie = SessionCookie(secure=secure, group="corp", domain="example.com")
    assert cookie.set_header("T") == set_cookie
    assert cookie.expire_header() == expired
    # Never the host-only cookie's name: a host may receive both, and each reads only its own.
    assert cookie.read([f"{SessionCookie(secure=secure).name}=H; {cookie.name}=T"]) == "T"
    assert SessionCookie(secure=secure).read([f"{cookie.name}=T"]) is None
    with pytest.raises(ValueError, match="both its group and its domain"):
        SessionCookie(secure=secure, group="corp")


def test_secure_cookie_ignores_the_unprefixed_name() -> None:
    assert SessionCookie(secure=True).read(["msgw=planted; __Host-msgw=real"]) == "real"


@pytest.mark.parametrize(("passed", "cookie", "expected"), [
    (True, "a=1; msgw=T; __Host-msgw=U; X-BEResource=x; b=2", "a=1; X-BEResource=x; b=2"),
    (False, "a=1; msgw=T; X-BEResource=x; x-anonresource=y; b=2", "a=1; b=2"),
    (False, "MsGw=T; x-BeReSoUrCe=localhost~1942062522", None),  # case-insensitive, like ASP.NET
    (False, "X-BackEndCookie=S-1-5-21-1=abc; x-anonresource-backend=y; X-BackEndCookie2=z; b=2", "b=2"),
    (True, "X-BackEndCookie=S-1-5-21-1=abc; b=2", "X-BackEndCookie=S-1-5-21-1=abc; b=2"),
    # Not a cookie-pair (a backslash is no cookie-octet): dropped, OWA's own logondata included.
    (False, "logondata=acc=1&lgn=CORP\\alice; cadata=keep", "cadata=keep"),
    # A session group's cookie reaches Exchange's host (its Domain is the parent's): never Exchange's.
    (True, "a=1; __Secure-msgw-group-corp=G; b=2", "a=1; b=2"),
    (True, "msgw-group-corp=G; cadata=A", "cadata=A"),
    (True, "__SECURE-MSGW-GROUP-corp=G; __secure-msgw-group-corp=H; MSGW-GROUP-x=I; c=3", "c=3"),
    (True, "msgw-signin=s; msgw-device=d; __Host-msgw-device=e; c=3", "c=3"),
    (False, "__Secure-msgw-group-corp=G; X-BEResource=x; b=2", "b=2"),
    (True, "__Secure-msgwx=kept; msgwx=kept", "__Secure-msgwx=kept; msgwx=kept"),
])
def test_cookies_stripped_before_the_upstream(passed: bool, cookie: str, expected: str | None) -> None:
    headers: CIMultiDict[str] = CIMultiDict([("Cookie", cookie), ("Accept", "*/*")])
    strip_request_cookies(headers, GATEWAY_COOKIE_NAMES, prefixes=hint_prefixes_to_strip(session_passed=passed))
    assert headers.getall("Cookie", [None])[0] == expected
    assert headers["Accept"] == "*/*"


class _Answer:
    status = 200
    headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


@pytest.mark.parametrize(("set_cookie", "kept"), [
    ("msgw=x; Path=/", False), ("__Host-msgw=x", False), ("msgw-device=1", False), ("msgw-signin=1", False),
    ("__Secure-msgw-group-corp=x; Domain=example.com; Secure", False), ("msgw-group-corp=x; Domain=example.com", False),
    ("__SECURE-MSGW-GROUP-corp=x", False), (" __Secure-msgw-group-corp =x", False), ("MSGW-GROUP-corp=x", False),
    ("__Secure-msgw-anything=x", False),
    ("cadata=x", True), ("__Secure-app=1", True), ("msgwx=1", True),
])
async def test_exchange_cannot_set_the_gateway_s_cookies(set_cookie: str, kept: bool) -> None:
    """Exchange's host may be under a session group's domain: it must not plant the group's cookie."""
    seen: list[list[str]] = []

    async def inspect(upstream: object, headers: CIMultiDict[str]) -> None:
        seen.append(headers.getall("Set-Cookie", []))

    headers: CIMultiDict[str] = CIMultiDict([("Set-Cookie", set_cookie), ("Set-Cookie", "other=1")])
    await dropping_gateway_cookies(inspect)(_Answer(), headers)  # type: ignore[arg-type]
    assert seen == [[set_cookie, "other=1"] if kept else ["other=1"]]


def test_several_cookie_headers_go_upstream_as_one() -> None:
    headers: CIMultiDict[str] = CIMultiDict([("Cookie", "a=1; msgw=T"), ("Accept", "*/*"), ("Cookie", "cadata=A; b=2")])
    strip_request_cookies(headers, GATEWAY_COOKIE_NAMES, prefixes=hint_prefixes_to_strip(session_passed=True))
    assert headers.getall("Cookie") == ["a=1; cadata=A; b=2"]


def test_strip_sets() -> None:
    assert hint_prefixes_to_strip(session_passed=True) == GATEWAY_COOKIE_PREFIXES
    assert hint_prefixes_to_strip(session_passed=False) == GATEWAY_COOKIE_PREFIXES + ROUTING_HINT_PREFIXES


@pytest.mark.parametrize(("url", "origin"), [
    ("https://Mail.Example.com", "https://mail.example.com"),
    ("https://mail.example.com:443/owa/", "https://mail.example.com"),
    ("http://mail.example.com:8080", "http://mail.example.com:8080"),
    ("http://[::1]:80", "http://[::1]"),
    ("ftp://mail.example.com", None),
    ("null", None),
    ("https://user@mail.example.com", None),
    ("https://mail.example.com:99999", None),
])
def test_origin_of(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(("headers", "problem"), [
    ({}, None),  # a script: the token alone decides
    ({"Origin": "https://mail.example.com", "Sec-Fetch-Site": "same-origin"}, None),
    ({"Origin": "https://MAIL.example.com:443"}, None),
    ({"Sec-Fetch-Site": "none"}, None),
    ({"Origin": "https://evil.example"}, "foreign_origin"),
    ({"Origin": "null"}, "foreign_origin"),
    ({"Origin": "http://mail.example.com"}, "foreign_origin"),  # another scheme is another origin
    ({"Origin": "https://mail.example.com.evil.example"}, "foreign_origin"),
    ({"Sec-Fetch-Site": "cross-site"}, "cross_site_fetch"),
    ({"Sec-Fetch-Site": "same-site"}, "cross_site_fetch"),
    ({"Origin": "https://mail.example.com", "Sec-Fetch-Site": "cross-site"}, "cross_site_fetch"),
])
def test_cross_site_problem(headers: dict[str, str], problem: str | None) -> None:
    assert cross_site_problem(headers, "https://mail.example.com") == problem


def test_token_matches() -> None:
    assert token_matches("abc", "abc")
    assert not token_matches("abc", "abd")
    assert not token_matches("abc", None)
    assert not token_matches("", "")
    assert not token_matches("abc", "ab\udcff")


def test_hold_back_removes_live_cadata_only() -> None:
    headers: CIMultiDict[str] = CIMultiDict([
        ("Set-Cookie", "cadata=AAA; path=/;SameSite=None; HttpOnly"),
        ("Set-Cookie", "X-OWA-CANARY=c; path=/"),
        ("Set-Cookie", "CADATAKEY=BBB; path=/"),
        ("Set-Cookie", "cadataSig=; expires=Sat, 01-Jan-1994 00:00:00 GMT; path=/"),
        ("Location", "/owa/"),
    ])
    assert hold_back_cadata(headers, now=NOW)
    assert headers.getall("Set-Cookie") == ["X-OWA-CANARY=c; path=/",
                                            "cadataSig=; expires=Sat, 01-Jan-1994 00:00:00 GMT; path=/"]
    assert not hold_back_cadata(headers, now=NOW)
