"""Red team, fourth pass: an answer that Monosign (or something in front of it) began and did not
finish is an answer, never "unreachable".

Only "unreachable" opens the circuit breaker and, with `GATEWAY_FAIL_MODE=open`, lets users in
without a second factor. A status line that arrived proves the far side reachable; a body that is
then cut off, stalls, or breaks its framing (a proxy's reset on an odd request, a large answer) was
counted as a transport failure, and so as a reason to fail open. Each shape below is served by a
real socket server on 127.0.0.1; the lookup must fail closed (`UnexpectedResponse`) and leave the
breaker closed, while a server that answers nothing at all is still unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from gateway.monosign import BreakerState, CircuitBreaker, MonosignClient, MonosignUnreachable, UnexpectedResponse

JSON_200 = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
CHUNKED_200 = JSON_200 + b"Transfer-Encoding: chunked\r\n\r\n"
ENVELOPE = b'{"Success": true, "Code": 1, "Data": {"Id": "7f1c", "UserName": "john.smith"'

# (what the server sends, then: "close", "reset" or "stall")
CUT: list[tuple[str, bytes, str]] = [
    ("length, short body, close", JSON_200 + b"Content-Length: 100\r\n\r\n" + ENVELOPE[:10], "close"),
    ("length, short body, reset", JSON_200 + b"Content-Length: 100\r\n\r\n" + ENVELOPE[:10], "reset"),
    ("length, short body, stall", JSON_200 + b"Content-Length: 100\r\n\r\n" + ENVELOPE[:10], "stall"),
    ("length, no body, stall", JSON_200 + b"Content-Length: 100\r\n\r\n", "stall"),
    ("envelope cut mid-JSON", JSON_200 + b"Content-Length: 400\r\n\r\n" + ENVELOPE, "close"),
    ("chunked, bad size", CHUNKED_200 + b"zz\r\nabc\r\n", "close"),
    ("chunked, no last chunk", CHUNKED_200 + b"5\r\n{\"Suc\r\n", "close"),
    ("chunked, stall after a chunk", CHUNKED_200 + b"5\r\n{\"Suc\r\n", "stall"),
    ("chunked, reset", CHUNKED_200 + b"5\r\n{\"Suc\r\n", "reset"),
    ("500 page cut", b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\n"
                     b"Content-Length: 500\r\n\r\n<html>", "close"),
    ("502 page stalls", b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 50\r\n\r\n", "stall"),
    ("401 cut", b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 80\r\n\r\n{\"Success\"", "reset"),
]
# No status line at all: these are still "unreachable" (nothing answered).
NOTHING: list[tuple[str, bytes, str]] = [
    ("closed at once", b"", "close"),
    ("reset at once", b"", "reset"),
    ("silent", b"", "stall"),
    ("half a status line", b"HTTP/1.1 20", "close"),
]


async def _serve(payload: bytes, ending: str) -> AsyncIterator[str]:
    handlers: set[asyncio.Task[None]] = set()
    release = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(payload)
            await writer.drain()
            if ending == "stall":
                await release.wait()
            elif ending == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        release.set()
        server.close()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def _lookup(payload: bytes, ending: str) -> tuple[BaseException, BreakerState]:
    served = _serve(payload, ending)
    url = await anext(served)
    breaker = CircuitBreaker(threshold=1, cooldown=60)
    client = MonosignClient(base_url=url, api_key="id", api_secret="key", connect_timeout=1.0, timeout=0.5,
                            breaker=breaker)
    try:
        with pytest.raises(Exception) as info:  # noqa: PT011 - the class is what the test asserts
            await client.lookup_user("john.smith")
        return info.value, breaker.state
    finally:
        await client.aclose()
        await served.aclose()


@pytest.mark.parametrize(("name", "payload", "ending"), CUT, ids=[name for name, _payload, _ending in CUT])
async def test_an_answer_cut_short_fails_closed_and_keeps_the_breaker_closed(
        name: str, payload: bytes, ending: str) -> None:
    error, state = await _lookup(payload, ending)
    assert isinstance(error, UnexpectedResponse), (name, type(error), error)
    assert not isinstance(error, MonosignUnreachable)
    assert error.http_status == int(payload.split(b" ", 2)[1])
    assert state is BreakerState.CLOSED


@pytest.mark.parametrize(("name", "payload", "ending"), NOTHING, ids=[name for name, _payload, _ending in NOTHING])
async def test_no_status_line_is_still_unreachable(name: str, payload: bytes, ending: str) -> None:
    error, state = await _lookup(payload, ending)
    assert isinstance(error, MonosignUnreachable), (name, type(error), error)
    assert state is BreakerState.OPEN
