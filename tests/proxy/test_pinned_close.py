"""A pinned upstream connection (EWS, MAPI, OAB...) that the upstream closes after an answer: the client
is told (`Connection: close` on that answer) and no request it sent is ever left without an answer.

The upstream here closes every N-th answer on a connection, as IIS's or a load balancer's keep-alive
limit does: saying so (`Connection: close`, as nginx's `keepalive_requests` and IIS do), or silently.
Clients: pipelined (every request in one write, raw socket) and sequential (the next request sent
the moment an answer arrives, reconnecting when told to).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.attacks.raw_http import RawResponse, parse_responses, request
from tests.proxy.support import PUBLIC_HOST, InProcessGateway, read_request_head, read_until_quiet, run_gateway

EWS = "/EWS/Exchange.asmx"  # the windows-auth route class: always pinned
READ_TIMEOUT = 10.0


@dataclass
class ClosingUpstream:
    """An HTTP/1.1 upstream that closes its connection after every `every`-th answer on it."""

    every: int
    announce: bool  # say `Connection: close` on that answer
    port: int = 0
    seen: list[str] = field(default_factory=list)  # request targets, in the order they arrived
    connections: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                received = await read_request_head(reader)
                if received is None:
                    return
                lines, length = received
                await reader.readexactly(length)
                self.seen.append(lines[0].split(" ")[1])
                answered += 1
                last = answered % self.every == 0
                body = f"answer {answered}".encode()
                close = "Connection: close\r\n" if last and self.announce else ""
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                             f"{close}\r\n".encode() + body)
                await writer.drain()
                if last:
                    return
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def closing_upstream(*, every: int, announce: bool) -> AsyncIterator[ClosingUpstream]:
    upstream = ClosingUpstream(every, announce)
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    upstream.port = server.sockets[0].getsockname()[1]
    try:
        yield upstream
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def stack(*, every: int, announce: bool) -> AsyncIterator[tuple[ClosingUpstream, InProcessGateway]]:
    async with (closing_upstream(every=every, announce=announce) as upstream,
                run_gateway(f"http://127.0.0.1:{upstream.port}") as gateway):
        yield upstream, gateway


def post(index: int) -> bytes:
    """An EWS CreateItem-like POST: not safe to send twice."""
    return request("POST", f"{EWS}?n={index}", host=PUBLIC_HOST, close=False, body=f"item {index}".encode(),
                   headers=[("Content-Type", "text/xml")])


def says_close(response: RawResponse) -> bool:
    return (response.header("Connection") or "").lower() == "close"


def check_answers(responses: list[RawResponse], sent: int) -> None:
    """Every request is answered, except those pipelined behind an answer that said `Connection: close`
    (never processed, RFC 9112 section 9.6); only the last answer says close; a 502 names its request."""
    assert responses, "no answer at all"
    for response in responses[:-1]:
        assert not says_close(response)
    assert len(responses) == sent or says_close(responses[-1]), (len(responses), sent)
    for response in responses:
        assert response.status in (200, 502), response.status
        if response.status == 502:
            assert response.header("X-Request-Id")
            assert says_close(response)


@pytest.mark.parametrize("announce", [True, False], ids=["connection-close", "silent-close"])
async def test_pipelined_requests_are_answered_or_refused_with_connection_close(announce: bool) -> None:
    async with stack(every=2, announce=announce) as (upstream, gateway):
        sent = 5
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        try:
            writer.write(b"".join(post(index) for index in range(sent)))
            await writer.drain()
            # A reset (ConnectionResetError) fails the test: the connection must end with a FIN.
            data = await read_until_quiet(reader, READ_TIMEOUT)
        finally:
            writer.close()
        responses = parse_responses(data, ["POST"] * sent)
        check_answers(responses, sent)
        assert says_close(responses[-1])
        assert len(responses) <= 3  # the upstream connection served two; at most one more gets its 502
        assert [response.status for response in responses[:2]] == [200, 200]
        # Nothing went upstream after the pinned connection ended: no request was sent twice, or on
        # a fresh (unauthenticated) connection.
        assert upstream.connections == 1
        assert upstream.seen == [f"{EWS}?n=0", f"{EWS}?n=1"]


async def read_one(reader: asyncio.StreamReader) -> RawResponse:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)
    [response] = parse_responses(head + body, ["POST"])
    return response


@pytest.mark.parametrize("announce", [True, False], ids=["connection-close", "silent-close"])
async def test_sequential_client_gets_an_answer_to_every_request(announce: bool) -> None:
    """The next request goes out the moment an answer arrives, as the upstream closes: each one is
    answered, and the client learns to reconnect from the answers, never from a dropped connection."""
    async with stack(every=3, announce=announce) as (upstream, gateway):
        statuses: list[int] = []
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            for index in range(12):
                if connection is None:
                    connection = await asyncio.open_connection("127.0.0.1", gateway.port)
                reader, writer = connection
                writer.write(post(index))
                await writer.drain()
                # An IncompleteReadError or a reset here is the bug: the request was dropped unanswered.
                response = await read_one(reader)
                statuses.append(response.status)
                if response.status == 502:
                    assert response.header("X-Request-Id")
                if says_close(response):
                    assert await reader.read() == b""  # the gateway ends the connection, cleanly
                    writer.close()
                    connection = None
        finally:
            if connection is not None:
                connection[1].close()
        assert set(statuses) <= {200, 502}
        if announce:
            # Told in time: nothing is refused, every third answer carries the close.
            assert statuses == [200] * 12
            assert upstream.connections == 4
        # Whatever was refused never reached the upstream; whatever reached it was answered 200.
        assert len(upstream.seen) == statuses.count(200)


async def test_an_idle_client_connection_closes_after_its_upstream_did() -> None:
    """The upstream closed silently after an answer and no request followed: the client connection is
    closed after a grace period (the client's next request may have been on its way), with a FIN."""
    async with stack(every=1, announce=False) as (upstream, gateway):
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        try:
            writer.write(post(0))
            await writer.drain()
            first = await read_one(reader)
            assert first.status == 200
            assert await asyncio.wait_for(reader.read(), READ_TIMEOUT) == b""
        finally:
            writer.close()
        assert upstream.seen == [f"{EWS}?n=0"]
