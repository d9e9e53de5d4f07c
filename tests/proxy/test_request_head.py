"""The upstream request head (gateway.proxy.upstream.serialize_request_head): aiohttp's bytes, with
long Cookie lines done apart, and never a CR or LF from a name or value."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway._compat import serialize_headers
from gateway.proxy.upstream import serialize_request_head

LINE = "GET /owa/ HTTP/1.1"
CADATA = "cadata=" + "A" * 1400


def headers(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


@pytest.mark.parametrize("given", [
    headers(),
    headers(("Host", "mail.example.com"), ("Accept", "*/*")),
    headers(("Host", "h"), ("Cookie", "a=1; b=2")),  # short cookies: aiohttp does all of it
    headers(("Host", "h"), ("X-Long", "x" * 5000)),  # only Cookie is done apart
])
def test_same_bytes_as_aiohttp_without_long_cookies(given: CIMultiDict[str]) -> None:
    assert serialize_request_head(LINE, given) == serialize_headers(LINE, given)


def test_long_cookie_lines_come_last_in_their_order() -> None:
    given = headers(("Host", "h"), ("Cookie", CADATA), ("Accept", "*/*"), ("Cookie", "b=2"))
    assert serialize_request_head(LINE, given) == (
        f"{LINE}\r\nHost: h\r\nAccept: */*\r\nCookie: {CADATA}\r\nCookie: b=2\r\n\r\n".encode())
    assert given.getall("Cookie") == [CADATA, "b=2"]  # the caller's headers are left as they were


def test_cookie_bytes_go_out_as_the_client_sent_them() -> None:
    # The request parser decodes header bytes with surrogateescape; they are encoded back the same way.
    raw = b"x=\xff\xfe; " + CADATA.encode()
    head = serialize_request_head(LINE, headers(("Cookie", raw.decode("utf-8", "surrogateescape"))))
    assert head.endswith(b"\r\nCookie: " + raw + b"\r\n\r\n")
    utf8 = "name=J\u00fcrgen; " + CADATA
    assert serialize_request_head(LINE, headers(("Cookie", utf8))).endswith(f"Cookie: {utf8}\r\n\r\n".encode())


@pytest.mark.parametrize("given", [
    headers(("Cookie", CADATA + "\r\nX-Injected: 1")),
    headers(("Cookie", CADATA + "\nX-Injected: 1")),
    headers(("Cookie", CADATA + "\r")),
    headers(("Cookie", CADATA), ("X-Other", "a\r\nb")),
    headers(("Cookie", "a=1\r\nX: y")),
    headers(("X\r\nY", "1"), ("Cookie", CADATA)),
])
def test_cr_or_lf_anywhere_is_refused(given: CIMultiDict[str]) -> None:
    with pytest.raises(ValueError, match="Forbidden control character"):
        serialize_request_head(LINE, given)


def test_cr_or_lf_in_the_request_line_is_refused() -> None:
    with pytest.raises(ValueError, match="Forbidden control character"):
        serialize_request_head("GET /\r\nX: y HTTP/1.1", headers(("Cookie", CADATA)))
