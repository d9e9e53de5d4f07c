"""A raw HTTP/1.1 client (h11 over one TCP connection) and the NTLM handshake, for the Exchange client tests.

Which TCP connection a request travels on is the whole point of NTLM pinning, so these tests do
not use a pooled client: each `HttpConnection` is exactly one socket, opened and closed by the test.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass

import h11
import spnego

from tests.demo_users import demo_password


def basic(user: str, password: str | None = None) -> str:
    secret = password if password is not None else demo_password(user)
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class HttpConnection:
    """One client TCP connection speaking HTTP/1.1 through h11."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host
        self.h11 = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int, *, host: str = "mail.corp.example") -> HttpConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, host)

    async def _send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def send_head(self, method: str, target: str, headers: Sequence[tuple[str, str]] = (),
                        *, content_length: int | None = None) -> None:
        all_headers = [("Host", self.host), *headers]
        if content_length is not None:
            all_headers.append(("Content-Length", str(content_length)))
        await self._send(h11.Request(method=method, target=target, headers=all_headers))

    async def send_body(self, data: bytes) -> None:
        await self._send(h11.Data(data=data))

    async def end_body(self) -> None:
        await self._send(h11.EndOfMessage())

    async def _next_event(self, timeout: float) -> h11.Event:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            self.h11.receive_data(data)

    async def read_head(self, timeout: float = 10.0) -> h11.Response:
        while True:
            event = await self._next_event(timeout)
            if isinstance(event, h11.Response):
                return event
            if isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed before a response")

    async def read_chunk(self, timeout: float = 10.0) -> bytes | None:
        """The next piece of the response body as it arrives; None at its end."""
        event = await self._next_event(timeout)
        if isinstance(event, h11.Data):
            return bytes(event.data)
        if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return None
        raise AssertionError(f"unexpected {event!r}")

    async def read_answer(self, timeout: float = 10.0) -> Answer:
        head = await self.read_head(timeout)
        body = b""
        while (chunk := await self.read_chunk(timeout)) is not None:
            body += chunk
        return Answer(head.status_code, [(k.decode(), v.decode()) for k, v in head.headers], body)

    def next_cycle(self) -> None:
        """Ready for the next request on this connection (after a complete exchange)."""
        self.h11.start_next_cycle()

    async def request(self, method: str, target: str, headers: Sequence[tuple[str, str]] = (),
                      body: bytes = b"", *, timeout: float = 10.0) -> Answer:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.next_cycle()
        await self.send_head(method, target, headers, content_length=len(body))
        if body:
            await self.send_body(body)
        await self.end_body()
        return await self.read_answer(timeout)

    async def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the other side closes this connection within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), deadline - time.monotonic())
            except TimeoutError:
                return False
            except ConnectionError:
                return True
            if not data:
                return True
        return False

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


def _token(answer: Answer, scheme: str) -> bytes:
    for value in answer.header("WWW-Authenticate"):
        name, _, token = value.partition(" ")
        if name.lower() == scheme.lower() and token:
            return base64.b64decode(token)
    raise AssertionError(f"no {scheme} challenge in {answer.headers}")


class NtlmClient:
    """The three legs of NTLM, driven step by step so a test can put each leg where it likes."""

    def __init__(self, user: str, password: str | None = None, *, scheme: str = "NTLM") -> None:
        secret = password if password is not None else demo_password(user)
        self.scheme = scheme
        self.context = spnego.client(user, secret, protocol="negotiate" if scheme == "Negotiate" else "ntlm",
                                     hostname="mail.corp.example")

    def negotiate(self) -> tuple[str, str]:
        token = self.context.step()
        assert token is not None
        return "Authorization", f"{self.scheme} {base64.b64encode(token).decode()}"

    def authenticate(self, challenge: Answer) -> tuple[str, str]:
        token = self.context.step(_token(challenge, self.scheme))
        assert token is not None
        return "Authorization", f"{self.scheme} {base64.b64encode(token).decode()}"


async def ntlm_login(connection: HttpConnection, method: str, target: str, user: str, *,
                     scheme: str = "NTLM", body: bytes = b"", extra: Sequence[tuple[str, str]] = ()) -> Answer:
    """Legs 1 and 3 on `connection`; returns the answer to the authenticated request."""
    client = NtlmClient(user, scheme=scheme)
    challenge = await connection.request(method, target, [*extra, client.negotiate()])
    assert challenge.status == 401, challenge
    return await connection.request(method, target, [*extra, client.authenticate(challenge)], body)
