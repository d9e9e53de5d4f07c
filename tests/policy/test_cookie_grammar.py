"""The Cookie header is read as RFC 6265 cookie-pairs, and what goes upstream is rebuilt from them:
whatever parser reads the forwarded header (strict, lenient, .NET's trim) reads the pairs the
binding check read."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.mfa.session_cookie import strip_request_cookies
from gateway.policy.cookies import PARSED_MAX_ENTRIES, CookieDrop, RequestCookies, parse_cookie_headers
from gateway.policy.owa_responses import request_binding

OWN = "cadata=A; cadataKey=K"
BOUND = request_binding(OWN)


def lenient_reader(header: str) -> dict[str, list[str]]:
    """A parser that ends pairs at every byte outside cookie-octet (`=` aside) and trims .NET's
    white space: the loosest reading a proxy, WAF or older Exchange build might make."""
    found: dict[str, list[str]] = {}
    for piece in re.split(r'[\x00-\x20\x7f-\uffff",;\\]+', header):
        name, sep, value = piece.partition("=")
        if sep and name:
            found.setdefault(name.lower(), []).append(value)
    return found


def strict_view(cookies: RequestCookies) -> dict[str, list[str]]:
    forwarded = cookies.forwarded(frozenset())
    found: dict[str, list[str]] = {}
    for pair in (forwarded or "").split("; ") if forwarded else []:
        name, _, value = pair.partition("=")
        found.setdefault(name.lower(), []).append(value)
    return found


# Another user's pairs hidden inside a pair of one's own, each way some reader might split there.
HIDDEN = [
    ("PBack=0 cadata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ("PBack=0\tcadata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ("PBack=0,cadata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ("PBack=0, cadata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ("PBack=0\\cadata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ('PBack="0 cadata=EVE"; ' + OWN, CookieDrop.HIDDEN_PAIR),
    ('PBack="0\\"cadata=EVE"; ' + OWN, CookieDrop.HIDDEN_PAIR),
    ("PBack=0\xa0cadata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ("PBack=0\x85cadata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ("PBack=0\x0bcadata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ("PBack=0\u3000cadata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ("PBack=0\udca0cadata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),  # a raw 0xA0 byte, as aiohttp decodes it
    ("\xa0cadata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ("x=1 cadata = EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ("cadata =EVE; " + OWN, CookieDrop.BAD_NAME),
    ("cadata= EVE; " + OWN, CookieDrop.BAD_VALUE),
    ('cadata="EVE; ' + OWN, CookieDrop.BAD_VALUE),
    ("cad ata=EVE; " + OWN, CookieDrop.HIDDEN_PAIR),
    ("cadat\u0430=EVE; " + OWN, CookieDrop.BAD_NAME),
    ("logondata=acc=1&lgn=CORP\\alice; " + OWN, CookieDrop.BAD_VALUE),
    ("cadata; " + OWN, CookieDrop.NO_VALUE),
]


@pytest.mark.parametrize(("header", "reason"), HIDDEN, ids=[repr(h[:20]) for h, _ in HIDDEN])
def test_a_pair_outside_the_grammar_is_dropped_for_every_reader(header: str, reason: CookieDrop) -> None:
    cookies = RequestCookies([header])
    assert cookies.dropped == (reason,)
    assert request_binding(cookies) == BOUND
    headers: CIMultiDict[str] = CIMultiDict([("Cookie", header)])
    strip_request_cookies(headers, frozenset(), cookies)
    assert headers.getall("Cookie") == [OWN]
    read = lenient_reader(headers["Cookie"])
    assert read["cadata"] == ["A"]
    assert read["cadatakey"] == ["K"]


@pytest.mark.parametrize(("header", "forwarded"), [
    ("a=1; b=2", "a=1; b=2"),
    ("a=1;b=2", "a=1; b=2"),                      # `;` without the space
    (" a=1 ;\tb=2\t; ", "a=1; b=2"),              # spaces and tabs around pairs are no part of them
    ("a=1;; ;b=2;", "a=1; b=2"),                  # empty pieces
    ('a=""; b="x"', 'a=""; b="x"'),               # DQUOTE-quoted values, quotes kept
    ("a=; b==", "a=; b=="),                       # empty value, `=` in a value
    ("X-BackEndCookie=S-1-5-21-1=u56L+/x==", "X-BackEndCookie=S-1-5-21-1=u56L+/x=="),
    ("a=!#$%&'()*+-./:<=>?@[]^_`{|}~", "a=!#$%&'()*+-./:<=>?@[]^_`{|}~"),
    ("~!#$%&'*+-.^_`|=1", "~!#$%&'*+-.^_`|=1"),   # every token character in a name
    ("a=1, b=2", None),                           # a comma: one piece, not a pair
    ('a="1', None),
    ('a=1"', None),
    ("=1", None),
    ("a=\x7f", None),
    ("a=caf\xe9", None),
])
def test_forwarded_pairs(header: str, forwarded: str | None) -> None:
    assert RequestCookies([header]).forwarded(frozenset()) == forwarded


def test_routing_hints_go_by_prefix_and_case() -> None:
    cookies = RequestCookies(["X-BEResource=a; x-anonresource-backend=b; X-BACKENDCOOKIE2=c; X-BE=d; e=f"])
    prefixes = ("x-beresource", "x-anonresource", "x-backendcookie")
    assert cookies.forwarded(frozenset(), prefixes) == "X-BE=d; e=f"
    assert cookies.forwarded(frozenset()) == "X-BEResource=a; x-anonresource-backend=b; X-BACKENDCOOKIE2=c; X-BE=d; e=f"


@pytest.mark.parametrize(("header", "reason"), [
    ("a=1; b=2", None),
    ("logondata=acc=1&lgn=CORP\\alice; flag", None),        # routine: dropped without an event
    ("cadata =x; logondata=CORP\\alice", "bad_name"),
    ("cadata =x; PBack=0 cadata=y", "hidden_pair"),          # the most telling one
])
def test_audit_reason(header: str, reason: str | None) -> None:
    assert RequestCookies([header]).audit_reason() == reason
    assert {drop for drop in CookieDrop if drop.audited} == {CookieDrop.HIDDEN_PAIR, CookieDrop.BAD_NAME}


# Headers built from pieces that sit on every boundary of the grammar.
_pieces = st.sampled_from(["cadata", "cadataKey", "a", "=", "A", "K", "EVE", " ", "\t", ",", ";", "; ", '"', "\\",
                           "\xa0", "\x85", "\x0b", "+/=", "é", "X-BEResource"])
_headers = st.lists(st.lists(_pieces, max_size=12).map("".join), min_size=1, max_size=3)


@given(_headers)
def test_every_reader_reads_the_forwarded_header_as_the_gateway_did(headers: list[str]) -> None:
    cookies = RequestCookies(headers)
    forwarded = cookies.forwarded(frozenset())
    if forwarded is None:
        assert cookies.agreed_value("cadata") is None
        return
    assert lenient_reader(forwarded) == strict_view(cookies)
    again = RequestCookies([forwarded])
    assert again.forwarded(frozenset()) == forwarded
    assert again.dropped == ()
    assert request_binding(again) == request_binding(cookies)


def test_parses_are_remembered_per_exact_header_and_bounded() -> None:
    header = "cadata=A; cadataKey=K; x=1 y=2"
    first = parse_cookie_headers([header])
    assert parse_cookie_headers([(header + " ")[:-1]]) is first  # an equal header, another object
    assert parse_cookie_headers([header + " "]).dropped == first.dropped  # not equal: parsed afresh
    assert parse_cookie_headers([header + " "]) is not first
    assert parse_cookie_headers([header, "a=1"]).values("a") == ["1"]  # several headers: not remembered
    for number in range(PARSED_MAX_ENTRIES + 1):
        parse_cookie_headers([f"n={number}"])
    assert parse_cookie_headers([header]) is not first  # pushed out by newer headers
