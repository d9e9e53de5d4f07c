"""The request's Cookie header(s), split once and shared by the session cookie reader, the cadata
binding and the upstream filter: each must read exactly the pairs the others read."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from gateway.mfa.session_cookie import SessionCookie, strip_request_cookies
from gateway.policy.cookies import RequestCookies, cookie_name, request_cookies
from gateway.policy.owa_responses import request_binding

PLAIN = SessionCookie(secure=False)
SECURE = SessionCookie(secure=True)


@pytest.mark.parametrize(("headers", "plain", "secure"), [
    (["msgw=T1"], "T1", None),
    (["__Host-msgw=T2"], None, "T2"),
    (["  msgw=T1 ; other=x"], "T1", None),
    (["  msgw = T1 ; other=x"], None, None),  # spaces around `=`: not a cookie-pair
    (["msgw=T1; msgw=T1"], "T1", None),  # the same value twice is still one session
    (["msgw=T1; msgw=T2"], None, None),  # two values: which is real cannot be told
    (["msgw=T1", "msgw=T2"], None, None),  # ... also across two Cookie headers
    (["msgw=; msgw=T1"], None, None),
    (["msgw="], None, None),
    (["MSGW=T1"], None, None),  # the gateway's own name is exact
    (["__host-msgw=T2"], None, None),
    (["msgw=planted; __Host-msgw=real"], "planted", "real"),
    (["\xa0msgw=T1"], None, None),  # not a token name: neither read nor forwarded
    (["\x0bmsgw=T1"], None, None),
    (["msgw"], None, None),
    ([], None, None),
])
def test_session_cookie_read(headers: list[str], plain: str | None, secure: str | None) -> None:
    assert PLAIN.read(headers) == plain
    assert SECURE.read(headers) == secure
    assert PLAIN.read(RequestCookies(headers)) == plain


@pytest.mark.parametrize("headers", [
    ["cadata=A; cadataKey=K; msgw=T; PBack=0"],
    ["\xa0cadata=EVE; cadata=A; cadataKey=K", "X-BEResource=srv; =x; novalue; ca data=1"],
    [" CADATA=A ;\tcadatakey=K;;", "X-AnonResource=true"],
    ["PBack=0 cadata=EVE; cadata=A; cadataKey=K", "a=1,cadataKey=EVE; b=\"x\\\"; cadata=EVE\""],
    ["cadata=A; cadata=B; cadataKey=K"],
    ["cadata=A", "cadata=A; cadataKey=K"],
    [""],
])
@pytest.mark.parametrize("drop", [frozenset(), frozenset({"msgw", "x-beresource", "x-anonresource"}),
                                  frozenset({"cadata", "cadatakey", "msgw"})])
def test_one_split_serves_binding_and_upstream_alike(headers: list[str], drop: frozenset[str]) -> None:
    cookies = RequestCookies(headers)
    # The upstream header: the token-named pairs not dropped, trimmed, joined into one header.
    expected_pairs = [p.strip() for h in headers for p in h.split(";")
                      if (name := cookie_name(p)) is not None and name not in drop]
    shared: CIMultiDict[str] = CIMultiDict([("Cookie", h) for h in headers])
    strip_request_cookies(shared, drop, cookies)
    alone: CIMultiDict[str] = CIMultiDict([("Cookie", h) for h in headers])
    strip_request_cookies(alone, drop)
    assert shared.getall("Cookie", []) == alone.getall("Cookie", []) == (
        ["; ".join(expected_pairs)] if expected_pairs else [])
    assert request_binding(cookies) == request_binding(headers)


def test_binding_reads_only_token_names_and_refuses_duplicates() -> None:
    bound = request_binding("cadata=A; cadataKey=K")
    assert bound is not None
    assert request_binding(RequestCookies(["\xa0cadata=EVE; cadata=A; cadataKey=K"])) == bound
    assert request_binding(RequestCookies(["cadata=A; CADATA=B; cadataKey=K"])) is None
    assert request_binding(RequestCookies(["cadata=A", "cadataKey=K"])) == bound
    assert request_binding(RequestCookies(["cadata=A"])) is None


def test_no_cookie_header_upstream_stays_without_one() -> None:
    headers: CIMultiDict[str] = CIMultiDict([("Accept", "*/*")])
    strip_request_cookies(headers, frozenset({"msgw"}), RequestCookies(["msgw=T; cadata=A"]))
    assert "Cookie" not in headers


def test_request_cookies_split_once_per_request() -> None:
    request = make_mocked_request("GET", "/owa/", headers=CIMultiDict(
        [("Cookie", "msgw=T; cadata=A"), ("Cookie", "cadataKey=K")]))
    first = request_cookies(request)
    assert request_cookies(request) is first
    assert first.values("cadatakey") == ["K"]
    assert PLAIN.read(first) == "T"
    other = make_mocked_request("GET", "/owa/", headers=CIMultiDict([("Cookie", "msgw=U")]))
    assert PLAIN.read(request_cookies(other)) == "U"


@pytest.mark.parametrize(("headers", "name", "exact", "expected"), [
    (["a=1"], "a", False, "1"),
    (["A=1"], "a", False, "1"),
    (["A=1"], "A", False, "1"),          # compared lower-cased on both sides
    (["A=1"], "a", True, None),          # exact: the name as sent
    (["a=1; a=1"], "a", False, "1"),     # duplicates that agree
    (["a=1; A=2"], "a", False, None),    # duplicates that disagree: no answer
    (["a=1; A=2"], "a", True, "1"),      # exact: only `a` counts
    (["a=1", "a=2"], "a", False, None),  # across headers too
    (["a=; b=2"], "a", False, ""),       # present but empty (callers treat it as absent)
    (["b=2"], "a", False, None),
    (["\xa0a=9; a=1"], "a", False, "1"),  # a padded name is no pair at all
    ([" a=1 "], "a", False, "1"),
    ([" a = 1 "], "a", False, None),
    (['a="1"'], "a", False, '"1"'),      # a quoted value is read with its quotes, as ASP.NET does
])
def test_agreed_value(headers: list[str], name: str, exact: bool, expected: str | None) -> None:
    assert RequestCookies(headers).agreed_value(name, exact=exact) == expected
