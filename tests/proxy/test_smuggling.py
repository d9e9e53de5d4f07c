"""Raw-socket framing matrix: the upstream only ever sees what the client sent as well-framed requests.

Each vector goes on a fresh connection to a real gateway in front of a recording upstream. A vector is
either refused (400-class answer, connection closed, the upstream saw nothing) or accepted exactly as
the requests the client framed (the upstream's log lists them, bodies included, nothing more).
Vectors: python-proxy-engineering.md §2.1 (aiohttp, mitmproxy, h11 suites) and more.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from tests.proxy.support import (
    PUBLIC_HOST,
    InProcessGateway,
    Upstream,
    raw_exchange,
    run_gateway,
    status_codes,
)

P = "/Microsoft-Server-ActiveSync/echo"  # forwarded for any method
H = f"Host: {PUBLIC_HOST}\r\n"
SMUGGLED = f"GET {P}?smuggled=1 HTTP/1.1\r\n{H}\r\n"


@pytest.fixture
async def gateway(upstream: Upstream) -> AsyncIterator[InProcessGateway]:
    async with run_gateway(upstream[0].url, gateway_max_header_size=2048, gateway_max_headers=20) as running:
        yield running


REFUSED = {
    "CL+TE": f"POST {P} HTTP/1.1\r\n{H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}",
    "TE+CL": f"POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n{SMUGGLED}",
    "CL+CL differing": f"POST {P} HTTP/1.1\r\n{H}Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    "CL+CL identical": f"POST {P} HTTP/1.1\r\n{H}Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
    "CL list": f"POST {P} HTTP/1.1\r\n{H}Content-Length: 4, 4\r\n\r\nabcd",
    "CL plus sign": f"POST {P} HTTP/1.1\r\n{H}Content-Length: +4\r\n\r\nabcd",
    "CL hex": f"POST {P} HTTP/1.1\r\n{H}Content-Length: 0x4\r\n\r\nabcd",
    "CL negative": f"POST {P} HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\nabcd",
    "CL space before colon": f"POST {P} HTTP/1.1\r\n{H}Content-Length : 4\r\n\r\nabcd",
    "TE xchunked": f"POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "TE chunked, identity": f"POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "TE chunked twice": f"POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "0\r\n\r\n",
    "TE empty then chunked": f"POST {P} HTTP/1.1\r\n{H}Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "0\r\n\r\n",
    "TE kelvin sign": f"POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chun\u212aed\r\n\r\n0\r\n\r\n",
    "TE on HTTP/1.0": f"POST {P} HTTP/1.0\r\n{H}Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    "chunk size plus sign": f"POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n+4\r\nabcd\r\n0\r\n\r\n",
    "chunk extension bare LF": f"POST {P} HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n"
                               "4;a=b\nc\r\nabcd\r\n0\r\n\r\n",
    "obs-fold": f"GET {P} HTTP/1.1\r\n{H}X-Foo: a\r\n b\r\n\r\n",
    "bare LF": f"GET {P} HTTP/1.1\n{H.strip()}\n\n",
    "NUL in header value": f"GET {P} HTTP/1.1\r\n{H}X-Foo: a\x00b\r\n\r\n",
    "CR in header value": f"GET {P} HTTP/1.1\r\n{H}X-Foo: a\rb\r\n\r\n",
    "space in header name": f"GET {P} HTTP/1.1\r\n{H}X Foo: a\r\n\r\n",
    "duplicate Host": f"GET {P} HTTP/1.1\r\n{H}Host: evil.example\r\n\r\n",
    "no Host on HTTP/1.1": f"GET {P} HTTP/1.1\r\n\r\n",
    "no Host on HTTP/1.0": f"GET {P} HTTP/1.0\r\n\r\n",
    "Host with space": f"GET {P} HTTP/1.1\r\nHost: {PUBLIC_HOST} evil\r\n\r\n",
    "Host with userinfo": f"GET {P} HTTP/1.1\r\nHost: {PUBLIC_HOST}:80@evil.example\r\n\r\n",
    "absolute-form": f"GET http://evil.example{P} HTTP/1.1\r\n{H}\r\n",
    "absolute-form same host": f"GET http://{PUBLIC_HOST}{P} HTTP/1.1\r\n{H}\r\n",
    "authority-form": f"CONNECT evil.example:443 HTTP/1.1\r\n{H}\r\n",
    "asterisk-form": f"OPTIONS * HTTP/1.1\r\n{H}\r\n",
    # Outlook Anywhere's methods pass only under /rpc/ (tests/exchange_clients); anywhere else: 400.
    "extension method": f"RPC_IN_DATA /owa/rpcproxy.dll HTTP/1.1\r\n{H}Content-Length: 0\r\n\r\n",
    "unknown method": f"XYZZY_PLUGH {P}?secret-query HTTP/1.1\r\n{H}Content-Length: 0\r\n\r\n",
    "bad version": f"GET {P} HTTP/1.2\r\n{H}\r\n",
    "over-long header": f"GET {P} HTTP/1.1\r\n{H}X-Long: {'a' * 4096}\r\n\r\n",
    "over-long request line": f"GET {P}?{'a' * 4096} HTTP/1.1\r\n{H}\r\n",
    "too many headers": f"GET {P} HTTP/1.1\r\n{H}" + "".join(f"X-H{i}: v\r\n" for i in range(40)) + "\r\n",
    "bad first of pipeline": f"GET {P} HTTP/1.1\r\n{H}Content-Length: 1, 2\r\n\r\n{SMUGGLED}",
}


@pytest.mark.parametrize("name", list(REFUSED))
async def test_refused_vectors_never_reach_the_upstream(gateway: InProcessGateway, upstream: Upstream,
                                                        name: str) -> None:
    response = await raw_exchange(gateway.port, REFUSED[name].encode("utf-8"), timeout=3.0)
    codes = status_codes(response)
    assert codes, f"{name}: no answer"
    assert codes[0] in (400, 413, 417, 431, 501), f"{name}: {codes}"
    assert len(codes) == 1, f"{name}: more than one answer on a refused connection: {codes}"
    assert upstream[1].seen == [], f"{name}: the upstream saw {upstream[1].seen}"


async def test_refusal_reason_does_not_echo_the_request(gateway: InProcessGateway) -> None:
    response = await raw_exchange(gateway.port, REFUSED["unknown method"].encode(), timeout=3.0)
    assert status_codes(response) == [400]
    assert b"secret-query" not in response
    assert b"XYZZY" not in response


def _body_sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def test_pipelined_requests_arrive_one_by_one(gateway: InProcessGateway, upstream: Upstream) -> None:
    raw = (f"GET {P}?n=1 HTTP/1.1\r\n{H}\r\n"
           f"POST {P}?n=2 HTTP/1.1\r\n{H}Content-Length: 5\r\n\r\nhello"
           f"GET {P}?n=3 HTTP/1.1\r\n{H}Connection: close\r\n\r\n")
    response = await raw_exchange(gateway.port, raw.encode(), timeout=3.0)
    assert status_codes(response) == [200, 200, 200]
    seen = upstream[1].seen
    assert [(s.method, s.raw_path) for s in seen] == [("GET", f"{P}?n=1"), ("POST", f"{P}?n=2"), ("GET", f"{P}?n=3")]
    assert seen[1].body_sha256 == _body_sha(b"hello")


async def test_request_inside_a_body_stays_body(gateway: InProcessGateway, upstream: Upstream) -> None:
    body = SMUGGLED.encode()
    raw = f"POST {P} HTTP/1.1\r\n{H}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
    response = await raw_exchange(gateway.port, raw, timeout=3.0)
    assert status_codes(response) == [200]
    assert len(upstream[1].seen) == 1
    assert upstream[1].seen[0].body_sha256 == _body_sha(body)


async def test_chunked_with_trailers_and_tab_ows_is_one_request(gateway: InProcessGateway, upstream: Upstream) -> None:
    raw = (f"POST {P} HTTP/1.1\r\n{H}Transfer-Encoding:\tchunked\r\nConnection: close\r\n\r\n"
           f"4\r\nabcd\r\n0\r\nX-Trailer: {SMUGGLED.splitlines()[0]}\r\n\r\n")
    response = await raw_exchange(gateway.port, raw.encode(), timeout=3.0)
    assert status_codes(response) == [200]
    assert len(upstream[1].seen) == 1
    assert upstream[1].seen[0].body_sha256 == _body_sha(b"abcd")
    assert not upstream[1].seen[0].header("X-Trailer")


async def test_underscore_framing_header_is_dropped(gateway: InProcessGateway, upstream: Upstream) -> None:
    raw = (f"POST {P} HTTP/1.1\r\n{H}Transfer_Encoding: chunked\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
           "abcd")
    response = await raw_exchange(gateway.port, raw.encode(), timeout=3.0)
    assert status_codes(response) == [200]
    seen = upstream[1].seen
    assert len(seen) == 1
    assert not seen[0].header("Transfer_Encoding")
    assert seen[0].header("Content-Length") == ["4"]
    assert seen[0].body_sha256 == _body_sha(b"abcd")


async def test_http10_without_te_is_forwarded(gateway: InProcessGateway, upstream: Upstream) -> None:
    raw = f"POST {P} HTTP/1.0\r\n{H}Content-Length: 4\r\n\r\nabcd"
    response = await raw_exchange(gateway.port, raw.encode(), timeout=3.0)
    assert status_codes(response) == [200]
    assert len(upstream[1].seen) == 1
