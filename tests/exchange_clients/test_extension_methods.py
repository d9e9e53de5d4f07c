"""Extension methods (RPC_IN_DATA / RPC_OUT_DATA): the framer's table, and raw sockets against a real
aiohttp server that uses the mechanism. Everything the framer does not accept must end as a 400."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress

import pytest
from aiohttp import web

from gateway.proxy.extension_methods import (
    PLACEHOLDER_METHOD,
    ExtensionFramer,
    ExtensionMethodsRunner,
    first_bytes_decision,
)
from tests.proxy.support import read_until_quiet, status_codes

IN_HEAD = (b"RPC_IN_DATA /rpc/rpcproxy.dll?SIMCAS01:6001 HTTP/1.1\r\nHost: mail\r\n"
           b"Content-Length: 1073741824\r\nUser-Agent: MSRPC\r\n\r\n")


@pytest.mark.parametrize(("data", "expected"), [
    (b"", None), (b"R", None), (b"RPC_", None), (b"RPC_IN_DATA", None), (b"RPC_OUT_DATA", None),
    (b"RPC_IN_DATA ", True), (b"RPC_OUT_DATA /rpc/", True), (b"GET / HTTP/1.1", False),
    (b"RPC_IN_DATAX", False), (b"rpc_in_data ", False), (b"RPC_INX", False), (b"\x16\x03\x01", False),
])
def test_first_bytes_decision(data: bytes, expected: bool | None) -> None:
    assert first_bytes_decision(data) is expected


def test_framer_rewrites_method_and_counts_the_body() -> None:
    framer = ExtensionFramer()
    out, methods, error = framer.feed(IN_HEAD[:20])
    assert (out, methods, error) == (b"", [], None)
    out, methods, error = framer.feed(IN_HEAD[20:] + b"body")
    assert error is None
    assert methods == ["RPC_IN_DATA"]
    assert out == PLACEHOLDER_METHOD.encode() + IN_HEAD[len(b"RPC_IN_DATA"):] + b"body"
    # Body bytes that look like a request line are body bytes, passed untouched.
    out, methods, error = framer.feed(b"GET / HTTP/1.1\r\n\r\n")
    assert (out, methods, error) == (b"GET / HTTP/1.1\r\n\r\n", [], None)


def test_framer_splits_pipelined_requests() -> None:
    framer = ExtensionFramer()
    first = b"RPC_OUT_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    second = b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
    out, methods, error = framer.feed(first + second)
    assert error is None
    assert methods == ["RPC_OUT_DATA", "RPC_IN_DATA"]
    assert out.count(PLACEHOLDER_METHOD.encode()) == 2


def _head(request_line: bytes, *headers: bytes) -> bytes:
    return request_line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


REFUSED_HEADS = {
    "other method": _head(b"GET /rpc/rpcproxy.dll HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    "placeholder itself": _head(b"MKACTIVITY /rpc/rpcproxy.dll HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    "lower-case token": _head(b"rpc_in_data /rpc/rpcproxy.dll HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    "other path": _head(b"RPC_IN_DATA /owa/auth.owa HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    "rpc without slash": _head(b"RPC_IN_DATA /rpc HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    "rpc prefix": _head(b"RPC_IN_DATA /rpcx/rpcproxy.dll HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    "dot segments out of rpc": _head(b"RPC_IN_DATA /rpc/../owa/ HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    "encoded traversal": _head(b"RPC_IN_DATA /rpc/..%2fowa/ HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    "absolute form": _head(b"RPC_IN_DATA http://evil/rpc/x HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    "http/1.0": _head(b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.0", b"Host: a", b"Content-Length: 0"),
    "two spaces": _head(b"RPC_IN_DATA  /rpc/rpcproxy.dll HTTP/1.1", b"Host: a", b"Content-Length: 0"),
    "no content-length": _head(b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1", b"Host: a"),
    "two content-lengths": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", b"Content-Length: 4",
                                 b"Content-Length: 4"),
    "cl and te": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", b"Content-Length: 4",
                       b"Transfer-Encoding: chunked"),
    "te only": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked"),
    "plus sign": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", b"Content-Length: +4"),
    "hex length": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", b"Content-Length: 0x4"),
    "list length": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", b"Content-Length: 4, 4"),
    "space before colon": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", b"Content-Length : 4"),
    "obs-fold": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", b"Content-Length: 0", b"X-A: a", b" b"),
    "nul in value": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", b"Content-Length: 0", b"X-A: a\x00b"),
    "upgrade": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", b"Content-Length: 0", b"Upgrade: websocket"),
    "connection upgrade": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", b"Content-Length: 0",
                                b"Connection: Upgrade"),
    "bare lf": b"RPC_IN_DATA /rpc/x HTTP/1.1\r\nHost: a\nContent-Length: 0\r\n\r\n",
    "kelvin length": _head(b"RPC_IN_DATA /rpc/x HTTP/1.1", b"Host: a", "Content-Length: \u0661".encode()),
}


@pytest.mark.parametrize("name", sorted(REFUSED_HEADS))
def test_framer_refuses(name: str) -> None:
    framer = ExtensionFramer()
    out, methods, error = framer.feed(REFUSED_HEADS[name])
    assert error is not None, name
    assert (out, methods) == (b"", [])
    assert framer.failed
    assert framer.feed(b"RPC_IN_DATA /rpc/x HTTP/1.1\r\n\r\n") == (b"", [], None)


def test_framer_refuses_an_endless_head() -> None:
    framer = ExtensionFramer(max_head_bytes=1024)
    _out, _methods, error = framer.feed(b"RPC_IN_DATA /rpc/x HTTP/1.1\r\nX-A: " + b"a" * 2000)
    assert error is not None


# --- A real aiohttp server using the mechanism -------------------------------------------------------


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def handle(request: web.Request) -> web.StreamResponse:
        first = await request.content.read(5) if request.body_exists else b""
        return web.Response(text=f"{request.method} {request.path} {first.decode()!r}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = ExtensionMethodsRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def exchange(port: int, data: bytes, *, then: bytes = b"", timeout: float = 1.0) -> bytes:
    """Send `data` (split inside the method token), then, a moment later, `then`; read until quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for piece in (data[:7], data[7:], then):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)
        return await read_until_quiet(reader, timeout)
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()


async def test_extension_methods_reach_the_application(echo_port: int) -> None:
    response = await exchange(echo_port, b"RPC_OUT_DATA /rpc/rpcproxy.dll?a:6001 HTTP/1.1\r\nHost: a\r\n"
                              b"Content-Length: 5\r\n\r\nhello"
                              b"RPC_IN_DATA /RPC/rpcproxy.dll HTTP/1.1\r\nHost: a\r\nContent-Length: 1073741824\r\n"
                              b"\r\nfirst")
    assert status_codes(response) == [200, 200]
    assert b"RPC_OUT_DATA /rpc/rpcproxy.dll 'hello'" in response
    assert b"RPC_IN_DATA /RPC/rpcproxy.dll 'first'" in response


async def test_plain_connections_keep_the_strict_parser(echo_port: int) -> None:
    response = await exchange(echo_port, b"GET /rpc/x HTTP/1.1\r\nHost: a\r\n\r\n",
                              then=b"RPC_IN_DATA /rpc/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
    assert status_codes(response) == [200, 400]
    response = await exchange(echo_port, b"MKACTIVITY /rpc/x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert b"MKACTIVITY /rpc/x" in response  # a plain connection's placeholder is just that method


@pytest.mark.parametrize("name", sorted(set(REFUSED_HEADS) - {"other method", "placeholder itself",
                                                               "lower-case token"}))
async def test_refused_heads_get_400(echo_port: int, name: str) -> None:
    response = await exchange(echo_port, REFUSED_HEADS[name])
    assert status_codes(response) == [400], response


@pytest.mark.parametrize("method", [b"FOO", b"RPC_IN_DATAX", b"RPC_OUT", b"rpc_out_data", b"RPC_IN_DATA\t"])
async def test_other_odd_methods_get_400(echo_port: int, method: bytes) -> None:
    response = await exchange(echo_port, method + b" /rpc/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
    assert status_codes(response) == [400], response


async def test_a_refused_request_is_answered_after_the_ones_before_it(echo_port: int) -> None:
    response = await exchange(echo_port, b"RPC_OUT_DATA /rpc/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok"
                              b"GET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_codes(response) == [200, 400]
    assert b"RPC_OUT_DATA /rpc/x 'ok'" in response
