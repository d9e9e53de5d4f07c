"""An upstream that answers before it has read the request body (IIS's 401 to a POST's first NTLM
leg): the client goes on sending the body, the gateway goes on forwarding it, and the pinned upstream
connection, on which the handshake is bound, stays in use for the next request.

Before the fix, the answer arriving first made the exchange look unclean: the pinned connection was
closed and the client's next leg got a 502 (exchangelib: ErrorServerBusy, on a loaded machine).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tests.attacks.raw_http import parse_responses, request
from tests.proxy.support import PUBLIC_HOST, read_request_head, run_gateway

EWS = "/EWS/Exchange.asmx"  # the windows-auth route class: always pinned
BODY = b"<soap>" + b"x" * 4000 + b"</soap>"
TIMEOUT = 10.0


@dataclass
class EarlyAnswerUpstream:
    """Answers 401 the moment a head arrives, then reads (and drops) that request's body; answers the
    next request on the same connection 200. Counts its connections."""

    port: int = 0
    connections: int = 0
    bodies: list[int] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                received = await read_request_head(reader)
                if received is None:
                    return
                _, length = received
                answered += 1
                if answered == 1:
                    writer.write(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    self.bodies.append(len(await reader.readexactly(length)))
                    continue
                self.bodies.append(len(await reader.readexactly(length)))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def early_answer_upstream() -> AsyncIterator[EarlyAnswerUpstream]:
    upstream = EarlyAnswerUpstream()
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    upstream.port = server.sockets[0].getsockname()[1]
    try:
        yield upstream
    finally:
        server.close()
        await server.wait_closed()


async def test_the_pinned_connection_survives_an_answer_that_comes_before_the_body() -> None:
    async with early_answer_upstream() as upstream, run_gateway(f"http://127.0.0.1:{upstream.port}") as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        try:
            first = request("POST", EWS, host=PUBLIC_HOST, close=False, body=BODY,
                            headers=[("Content-Type", "text/xml")])
            head_and_some = first[: first.index(b"\r\n\r\n") + 4 + 100]
            writer.write(head_and_some)  # the head and a little of the body: the upstream answers now
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            assert answer.startswith(b"HTTP/1.1 401 ")
            await asyncio.sleep(0.3)  # the rest of the body comes later, as from a slow client
            writer.write(first[len(head_and_some):])
            writer.write(request("POST", EWS, host=PUBLIC_HOST, close=True, body=b"leg 2",
                                 headers=[("Content-Type", "text/xml"), ("Authorization", "NTLM TlRMTVNTUAAB")]))
            await writer.drain()
            rest = await asyncio.wait_for(reader.read(), TIMEOUT)
        finally:
            writer.close()
    responses = parse_responses(rest, ["POST"])
    assert [response.status for response in responses] == [200]
    assert upstream.connections == 1  # the same (pinned) upstream connection served both
    assert upstream.bodies == [len(BODY), len(b"leg 2")]
