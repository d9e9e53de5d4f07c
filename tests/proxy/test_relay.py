"""The relay's response head: one write with a body already at hand, never held back for a body
that has not arrived."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.http_writer import StreamWriter
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from gateway.proxy.forwarder import RelayResponse
from tests.proxy.support import PUBLIC_HOST, run_gateway, run_upstream


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class _Protocol:
    _paused = False  # never asks the writer to wait

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport


def _request(transport: RecordingTransport) -> Any:
    writer = StreamWriter(_Protocol(transport), asyncio.get_running_loop())  # type: ignore[arg-type]
    return make_mocked_request("GET", "/owa/auth/x", headers={"Host": PUBLIC_HOST}, writer=writer,
                               transport=transport)


@pytest.mark.parametrize("length", [0, 5])
async def test_a_complete_small_answer_is_one_write(length: int) -> None:
    transport = RecordingTransport()
    body = b"hello"[:length]
    response = RelayResponse(status=200, reason="OK", headers=CIMultiDict({"Content-Length": str(length)}),
                             head_with_body=True)
    await response.prepare(_request(transport))
    assert transport.writes == []
    await response.write_eof(body)
    assert len(transport.writes) == 1
    head, _, sent = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert sent == body


async def test_without_a_body_at_hand_the_head_leaves_at_prepare() -> None:
    transport = RecordingTransport()
    response = RelayResponse(status=200, reason="OK", headers=CIMultiDict({"Content-Length": "5"}),
                             head_with_body=False)
    await response.prepare(_request(transport))
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")


@pytest.fixture
async def late_body_upstream() -> AsyncIterator[str]:
    """Answers with its head at once and the body a second later (a long poll, a slow download)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(1.0)
            writer.write(b"later")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_the_head_is_not_held_back_for_a_late_body(late_body_upstream: str) -> None:
    async with run_gateway(late_body_upstream) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        try:
            writer.write(f"GET /owa/auth/poll HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.6)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert await asyncio.wait_for(reader.readexactly(5), 3) == b"later"
        finally:
            writer.close()
            await writer.wait_closed()


async def test_one_upstream_connection_serves_answers_with_and_without_bodies() -> None:
    # The response parser is kept per upstream connection: a HEAD answer (Content-Length, no body)
    # between GETs must not shift the next answer on the same connection.
    async with run_upstream() as (upstream, state), run_gateway(upstream.url) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        try:
            for method in ("GET", "HEAD", "GET", "HEAD", "HEAD", "GET"):
                writer.write(f"{method} /owa/auth/status?code=200 HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
                assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
                length = int(re.search(rb"\r\nContent-Length: (\d+)\r\n", head).group(1))  # type: ignore[union-attr]
                assert length == len(b"status body")
                if method == "GET":
                    assert await asyncio.wait_for(reader.readexactly(length), 3) == b"status body"
        finally:
            writer.close()
            await writer.wait_closed()
        assert [seen.method for seen in state.seen] == ["GET", "HEAD", "GET", "HEAD", "HEAD", "GET"]
        assert len({seen.peer for seen in state.seen}) == 1  # all over one pooled upstream connection
