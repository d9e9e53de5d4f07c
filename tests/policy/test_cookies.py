"""Table test: which Cookie pairs count (and go upstream), read alike by the gateway and Exchange."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.mfa.session_cookie import strip_request_cookies
from gateway.policy.cookies import cookie_name
from gateway.policy.owa_responses import request_binding


@pytest.mark.parametrize(("pair", "expected"), [
    ("cadata=abc", "cadata"),
    (" cadataKey=abc", "cadatakey"),
    ("\tCADATA=abc ", "cadata"),
    ("X-BackEndCookie=S-1-5-21=x", "x-backendcookie"),
    ('a="quoted"', "a"),
    ("a=", "a"),
    # not a cookie-pair: no reader may see a name in it
    ("\tCADATA =abc", None),
    ("logondata=acc=1&lgn=CORP\\alice", None),
    ("a=b c", None),
    # no name every reader agrees on
    ("cadata", None),
    ("=abc", None),
    ("\xa0cadata=abc", None),
    ("\x85cadata=abc", None),
    ("\udca0cadata=abc", None),
    ("\x0bcadata=abc", None),
    ("\x1ccadata=abc", None),
    ("cad ata=abc", None),
    ("cadat\u0430=abc", None),  # Cyrillic a
    ("\uff43adata=abc", None),  # fullwidth c
    ("ca\"data\"=abc", None),
])
def test_cookie_name(pair: str, expected: str | None) -> None:
    assert cookie_name(pair) == expected


def test_binding_and_upstream_header_agree_on_padded_names() -> None:
    header = "\xa0cadata=ALICE; \xa0cadataKey=ALICEKEY; cadata=BOB; cadataKey=BOBKEY; PBack=0"
    assert request_binding(header) == request_binding("cadata=BOB; cadataKey=BOBKEY")
    headers: CIMultiDict[str] = CIMultiDict([("Cookie", header)])
    strip_request_cookies(headers, frozenset({"msgw"}))
    assert headers.getall("Cookie") == ["cadata=BOB; cadataKey=BOBKEY; PBack=0"]
