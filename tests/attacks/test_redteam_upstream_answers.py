"""Red team: what an upstream answer could do to the client connection or to the next user.

The gateway's lean upstream client parses answers with aiohttp's response parser (lenient where
llhttp allows it) and re-frames them for the client. Answers whose framing is ambiguous must never
be relayed (a client, or a cache in front, would split them differently: response splitting), an
upgrade must never turn the connection into a raw tunnel, and bytes beyond one answer must never
become the answer to the next request on a pooled connection (another user's response).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.proxy.support import PUBLIC_HOST, raw_exchange, run_gateway, status_codes

STRAY = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nSMUGGLED!"
HONEST = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhonest"

AMBIGUOUS_ANSWERS = {
    "content-length and chunked": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"a\r\n0123456789\r\n0\r\n\r\n",
    "two content-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 10\r\n\r\n0123456789",
    "CR inside a header value": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: a\rSet-Cookie: cadata=x\r\n\r\nabc",
    "bare LF line ends": b"HTTP/1.1 200 OK\nContent-Length: 3\nX-A: a\rSet-Cookie: cadata=x\n\nabc",
    "transfer-encoding identity": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc",
    "300 header fields": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(300))
                         + b"Content-Length: 2\r\n\r\nok",
    "101 switching protocols": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                               + STRAY,
    "HEAD answered with a body": b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nSMUGGLED!",
}


@asynccontextmanager
async def scripted_upstream(first_answer: bytes, *, stray_delay: float | None = None) -> AsyncIterator[str]:
    """An upstream that answers requests for `/owa/auth/first` with `first_answer` (then, after
    `stray_delay`, with stray bytes), and everything else honestly, on kept-alive connections."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if b"/first " in head.split(b"\r\n", 1)[0]:
                    writer.write(first_answer)
                    if stray_delay is not None:
                        await writer.drain()
                        await asyncio.sleep(stray_delay)
                        writer.write(STRAY)
                else:
                    writer.write(HONEST)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


def request(method: str, name: str) -> bytes:
    return f"{method} /owa/auth/{name} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nConnection: close\r\n\r\n".encode()


@pytest.mark.parametrize("name", list(AMBIGUOUS_ANSWERS))
async def test_an_ambiguous_upstream_answer_is_never_relayed(name: str) -> None:
    method = "HEAD" if name.startswith("HEAD") else "GET"
    async with scripted_upstream(AMBIGUOUS_ANSWERS[name]) as upstream, run_gateway(upstream) as gateway:
        first = await raw_exchange(gateway.port, request(method, "first"))
        assert status_codes(first) == [502], first[:300]
        assert b"SMUGGLED" not in first
        assert b"cadata" not in first
        # The connection it came on is gone: the next user gets their own answer.
        second = await raw_exchange(gateway.port, request("GET", "second"))
        assert status_codes(second) == [200]
        assert second.endswith(b"honest")


@pytest.mark.parametrize("stray_delay", [None, 0.2])
async def test_bytes_after_an_answer_never_answer_the_next_request(stray_delay: float | None) -> None:
    """Extra bytes after a complete answer, in the same segment or a later one while the pooled
    connection is idle: the connection must be dropped, not handed to the next request."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + (STRAY if stray_delay is None else b"")
    async with scripted_upstream(answer, stray_delay=stray_delay) as upstream, run_gateway(upstream) as gateway:
        first = await raw_exchange(gateway.port, request("GET", "first"))
        assert first.endswith(b"ok")
        await asyncio.sleep(0.5)
        second = await raw_exchange(gateway.port, request("GET", "second"))
        assert b"SMUGGLED" not in second
        assert second.endswith(b"honest")


async def test_an_upgrade_request_is_not_passed_on() -> None:
    """No WebSocket (or h2c) tunnel through the gateway: Upgrade and Connection are hop-by-hop."""
    async with scripted_upstream(b"") as upstream, run_gateway(upstream) as gateway:
        sent = (f"GET /owa/auth/second HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade, close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        answer = await raw_exchange(gateway.port, sent)
        assert status_codes(answer) == [200]
        assert b"101" not in answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("target", ["/owa/auth/first", "/EWS/first", "/Microsoft-Server-ActiveSync/first"])
async def test_an_upstream_never_hands_out_the_gateways_cookie(target: str) -> None:
    """Only the gateway issues its session cookie: one from upstream could plant a session of
    somebody else's choosing (fixation) or shadow the browser's own."""
    answer = (b"HTTP/1.1 200 OK\r\nSet-Cookie: msgw=planted; Path=/\r\n"
              b"Set-Cookie: __Host-msgw=planted; Path=/; Secure\r\nSet-Cookie: MSGW=planted; Path=/owa\r\n"
              b"Set-Cookie: ClientId=kept; Path=/\r\nContent-Length: 2\r\n\r\nok")
    async with scripted_upstream(answer) as upstream, run_gateway(upstream) as gateway:
        sent = f"GET {target} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nConnection: close\r\n\r\n".encode()
        received = await raw_exchange(gateway.port, sent)
        assert status_codes(received) == [200]
        assert b"planted" not in received
        assert b"Set-Cookie: ClientId=kept; Path=/" in received
